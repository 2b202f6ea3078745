import json

from gan_lab import bench


def test_bench_seeds_writes_a_result_with_provenance(tmp_path, capsys):
    bench.main(["seeds", "--seeds", "2", "--steps", "3", "--repeats", "1", "--device", "cpu", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "bench-seeds-cpu.json").read_text())
    assert record["provenance"]["device"] == "cpu"
    (run,) = record["runs"]
    assert run["config"]["seeds"] == 2
    assert run["seconds_batched"] > 0 and run["seconds_single_seed"] > 0
    assert abs(run["seconds_separate_total"] - 2 * run["seconds_single_seed"]) < 1e-12
    assert "2 seeds batched" in capsys.readouterr().out


def test_bench_chapters_times_a_notebook_in_a_fresh_kernel(tmp_path, capsys):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(f\"demo: wall time 0.5 s (profile {os.environ['GAN_LAB_PROFILE']})\")")]
    path = tmp_path / "ch99_demo.ipynb"
    nbformat.write(nb, path)
    bench.main(["chapters", "--chapter", str(path), "--profile", "full", "--device", "cpu", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "bench-chapters-full-cpu.json").read_text())
    chapter = record["chapters"]["ch99_demo"]
    assert chapter["chapter_clock_seconds"] == 0.5 and chapter["seconds"] > 0
    assert record["profile"] == "full" and record["provenance"]["device"] == "cpu"
    assert "ch99_demo" in capsys.readouterr().out


def test_bench_rejects_bad_arguments():
    import pytest

    with pytest.raises(ValueError, match="seeds must be a positive int"):
        bench.bench_seeds(0)
    with pytest.raises(ValueError, match="profile_name must be one of"):
        bench.bench_chapters("fast")
