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
