"""gan_lab.chapter_times: the chapters benchmark workload (chapters timed from clean kernels)."""

import json

import pytest

from gan_lab import bench, chapter_times


def test_bad_profile_is_refused():
    with pytest.raises(ValueError, match="profile_name must be one of"):
        chapter_times.bench_chapters("fast")


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
