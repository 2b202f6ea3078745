import json
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from gan_lab import baselines, bench


def _ratio_from_timings(row, engine, key="seed_steps_per_second"):
    """One ratio per timed round, each positive (their values: the known-answer test below)."""
    fit, plain = row["fit"][engine][key]["all"], row["plain"]["seed_steps_per_second"]["all"]
    ratio = row["ratio"]["compiled_warm" if engine == "compiled" else engine]
    assert len(fit) == len(plain) == len(ratio["all"])
    assert ratio["min"] == min(ratio["all"]) > 0
    assert ratio["median"] > 0


def test_compare_ratios_on_known_timings():
    """Stand-in clocks with known seconds: every rate and ratio is known in advance, by hand."""
    plain_seconds = iter([2.0, 4.0, 1.0])  # 20 seed-steps a round: 10, 5 and 20 per second

    def fit_fn(compile=False):  # 10 seed-steps in 0.5 s (eager) or 2.5 s of which 2 compile
        if compile:
            return SimpleNamespace(seconds=2.5, compile_seconds=2.0)
        return SimpleNamespace(seconds=0.5)

    def plain_fn():  # the plain loop's own clock: PlainRun.seconds
        return baselines.PlainRun(None, None, seconds=next(plain_seconds))

    row = bench.compare(fit_fn, 10, plain_fn, 20, repeats=3, device="cpu", threads=1, clock="loop")
    assert row["plain"]["seed_steps_per_second"]["all"] == pytest.approx([10, 5, 20])
    assert row["fit"]["eager"]["seed_steps_per_second"]["all"] == pytest.approx([20, 20, 20])
    assert row["ratio"]["eager"]["all"] == pytest.approx([2, 4, 1])
    assert (row["ratio"]["eager"]["min"], row["ratio"]["eager"]["median"]) == pytest.approx((1, 2))
    assert row["ratio"]["compiled_warm"]["all"] == pytest.approx([2, 4, 1])  # 10 / 0.5 s warm
    assert row["ratio"]["compiled_total"]["all"] == pytest.approx([0.4, 0.8, 0.2])  # 10 / 2.5 s


def test_compare_takes_each_ratio_from_two_timings_of_the_same_round():
    def fit_fn(compile=False):
        time.sleep(0.02 if compile else 0.01)
        return SimpleNamespace(seconds=0.01, compile_seconds=0.01 if compile else 0.0)

    row = bench.compare(fit_fn, 10, lambda: time.sleep(0.02), 10, repeats=3, device="cpu", threads=1)
    assert set(row) == {"clock", "plain", "fit", "ratio"}
    assert set(row["ratio"]) == {"eager", "compiled_warm", "compiled_total"}
    for engine, key in (("eager", "seed_steps_per_second"), ("compiled", "warm_seed_steps_per_second")):
        _ratio_from_timings(row, engine, key)
    compiled = row["fit"]["compiled"]
    assert compiled["compile_seconds"] == [0.01] * 3
    # the total (compilation included) is slower than the warm rate, and both beat the 20 ms plain round
    assert compiled["total_seed_steps_per_second"]["median"] < compiled["warm_seed_steps_per_second"]["median"]
    assert 1 < row["ratio"]["eager"]["median"] < 3


def test_compare_skips_the_compiled_rows_of_an_engine_without_a_compile_option():
    def fit_fn():  # an engine from before TrainConfig.compile: compile=... is a TypeError
        return SimpleNamespace(seconds=0.001)

    row = bench.compare(fit_fn, 5, lambda: None, 5, repeats=2, device="cpu", threads=None)
    assert "compile option" in row["fit"]["compiled"]["skipped"]
    assert "note" in row["fit"]["eager"] and set(row["ratio"]) == {"eager"}
    _ratio_from_timings(row, "eager")


def test_bench_seeds_writes_rows_for_one_and_k_seeds_with_provenance(tmp_path, capsys):
    record = bench.main(["seeds", "--seeds", "1", "3", "--steps", "3", "--seq-steps", "2", "--repeats", "2",
                         "--engines", "eager", "--device", "cpu", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "bench-seeds-cpu.json").read_text()) == json.loads(json.dumps(record))
    assert record["provenance"]["device"] == "cpu" and record["cpu_threads"] == 1
    one, three = record["seeds"]["rows"]
    assert (one["seeds"], one["plain_runs"], one["plain_steps_each"], one["plain"]["seed_steps"]) == (1, 1, 2, 2)
    assert (three["seeds"], three["plain_runs"], three["fit"]["eager"]["seed_steps"]) == (3, 3, 9)
    assert three["plain"]["seed_steps"] == 3 * 2  # three plain runs actually made, two steps each
    for row in (one, three):
        _ratio_from_timings(row, "eager")
        assert set(row["fit"]) == {"eager"}  # the compiled engine is timed only when asked for
    out = capsys.readouterr().out
    assert "2-D GAN, 3 seed(s)" in out and "bench-seeds-cpu.json" in out


def test_bench_pacgan_and_mnist_on_tiny_budgets():
    pac = bench.bench_pacgan(seeds=(1, 2), steps=2, seq_steps=1, repeats=1, device="cpu", engines=("eager",))
    assert pac["config"]["g_arch"] == "batchnorm" and pac["config"]["d_arch"] == "maxout"
    assert [r["plain_runs"] for r in pac["rows"]] == [1, 2]
    _ratio_from_timings(pac["rows"][1], "eager")
    images = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mnist = bench.bench_mnist(images, steps=2, repeats=1, batch_size=8, width=4, device="cpu", engines=("eager",))
    assert mnist["clock"] == "loop" and mnist["config"]["n_train"] == 40 and mnist["config"]["ema"] is None
    _ratio_from_timings(mnist, "eager")


def test_jax_peer_skips_cleanly_without_jax(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError, installed or not
    assert "jax" in baselines.jax_available()
    result = bench.bench_jax(steps=2, repeats=1, device="cpu")
    assert set(result) == {"skipped"} and "not installed" in result["skipped"]
    assert "JAX peer: skipped" in capsys.readouterr().out


def test_jax_peer_rows_compare_fit_with_the_peers_own_clock(monkeypatch):
    calls = []

    def fake_jax(steps, seeds=1):  # stands in for the jitted JAX step where jax is not installed
        calls.append((steps, seeds))
        return {"seconds": 0.5, "compile_seconds": 2.0, "seed_steps_per_second": steps * seeds / 0.5}

    monkeypatch.setattr(baselines, "jax_available", lambda: None)
    monkeypatch.setattr(baselines, "jax_mlp_gan", fake_jax)
    result = bench.bench_jax(seeds=(1, 2), steps=3, repeats=2, device="cpu", engines=("eager",))
    assert calls == [(3, 1), (3, 1), (3, 2), (3, 2)]  # the peer runs in every round, beside fit
    for k, row in zip((1, 2), result["rows"]):
        assert row["seeds"] == k and "plain" not in row and row["jax"]["compile_seconds"] == [2.0, 2.0]
        assert row["jax"]["seed_steps_per_second"]["all"] == [3 * k / 0.5] * 2  # its own clock, not the wall
        fit = row["fit"]["eager"]["seed_steps_per_second"]["all"]
        assert row["ratio"]["eager"]["all"] == pytest.approx([f / (3 * k / 0.5) for f in fit])


def test_bench_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        bench.bench_seeds(seeds=(1, 0), steps=2)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        bench.bench_seeds(steps=0)
    with pytest.raises(ValueError, match="threads must be None or a positive int"):
        bench.bench_pacgan(threads=0, steps=1)
    with pytest.raises(ValueError, match="repeats must be a positive int"):
        bench.compare(lambda **kw: None, 1, lambda: None, 1, repeats=0, device="cpu", threads=1)
    with pytest.raises(ValueError, match="engines must be"):
        bench.compare(lambda **kw: None, 1, lambda: None, 1, repeats=1, device="cpu", threads=1, engines=("jit",))
    with pytest.raises(ValueError, match="clock must be"):
        bench.compare(lambda **kw: None, 1, lambda: None, 1, repeats=1, device="cpu", threads=1, clock="cpu")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        baselines.plain_mlp_gan(0)
    with pytest.raises(TypeError, match="images must be a uint8 tensor"):
        baselines.plain_dcgan(torch.zeros(4, 28, 28), 1)
    with pytest.raises(ValueError, match="N >= batch_size"):
        baselines.plain_dcgan(torch.zeros(4, 28, 28, dtype=torch.uint8), 1, batch_size=8)
    with pytest.raises(SystemExit):
        bench.main(["fastest"])


def test_suite_writes_one_record_with_every_workload(tmp_path, monkeypatch):
    seen = {}

    def stand_in(name):  # the suite's own budgets take minutes: record the call instead
        def run(**kw):
            seen[name] = kw
            return {"w": name}
        return run

    for name in ("seeds", "pacgan", "mnist", "jax"):
        monkeypatch.setattr(bench, f"bench_{name}", stand_in(name))
    record = bench.main(["--no-chapters", "--repeats", "2", "--engines", "eager", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / f"bench-{record['provenance']['device']}.json").read_text())
    assert saved["workload"] == "suite" and "chapters" not in saved and saved["cpu_threads"] == 1
    assert {k: saved[k]["w"] for k in seen} == {k: k for k in ("seeds", "pacgan", "mnist", "jax")}
    assert all(kw["repeats"] == 2 and kw["engines"] == ("eager",) and kw["threads"] == 1 for kw in seen.values())


def test_bench_refuses_options_its_workload_would_ignore(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--steps", "10"])  # the suite runs each workload's own budget
    assert "--steps applies to the workload(s) seeds pacgan mnist jax, not suite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["mnist", "--seeds", "2"])
    assert "--seeds applies to" in capsys.readouterr().err


def test_plain_mlp_loop_trains_its_samples_toward_the_ring():
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))

    def ring_distance(run):  # mean distance of the generated points from the unit circle
        with torch.no_grad():
            return (run.generator(z).norm(dim=1) - 1).abs().mean().item()

    start, trained = baselines.plain_mlp_gan(1), baselines.plain_mlp_gan(200)
    assert len(trained.d_loss) == len(trained.g_loss) == 200 and trained.seconds > 0
    assert all(isinstance(v, float) for v in trained.g_loss[:3])  # logged with .item()
    assert ring_distance(trained) < 0.5 * ring_distance(start)


def test_plain_pacgan_and_dcgan_loops_train():
    pac = baselines.plain_pacgan(8, pack=2)
    assert pac.discriminator[0].linear.in_features == 4  # packs of two 2-D points
    assert len(pac.d_loss) == 8 and pac.d_loss[-1] != pac.d_loss[0] and pac.g_loss[-1] != pac.g_loss[0]
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dc = baselines.plain_dcgan(images, 5, batch_size=8, width=4)  # 2 batches per epoch: the loader restarts
    assert len(dc.g_loss) == 5 and dc.d_loss[-1] != dc.d_loss[0]
