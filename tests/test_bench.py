import json

from gan_lab import bench


def test_bench_seeds_writes_a_result_with_provenance(tmp_path, capsys):
    bench.main(["seeds", "--seeds", "2", "--steps", "3", "--repeats", "1", "--device", "cpu", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "bench-seeds-cpu.json").read_text())
    assert record["provenance"]["device"] == "cpu"
    assert record["config"]["seeds"] == 2
    assert record["seconds_batched"] > 0 and record["seconds_single_seed"] > 0
    assert abs(record["seconds_separate_total"] - 2 * record["seconds_single_seed"]) < 1e-12
    assert "2 seeds batched" in capsys.readouterr().out
