import json

import numpy as np
import pytest
import scipy.stats
import torch

from gan_lab import data, profile, records, reproduce, results, train


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory):
    path = tmp_path_factory.mktemp("rep") / "pacgan.json"
    record = reproduce.run("pacgan", "quick", trials=2, steps=3, out=path, device="cpu", progress=False)
    return record, path


def test_quick_end_to_end_writes_the_json_schema(tiny_record):
    record, path = tiny_record
    on_disk = results.load_json(path)
    assert on_disk == record
    assert on_disk["complete"] is True and on_disk["reproduction"] == "pacgan" and on_disk["cite"] == "lin2018pacgan"
    for key in ("device", "device_name", "date", "torch", "numpy", "git_commit"):
        assert key in on_disk["provenance"]
    assert on_disk["budget"] == {"steps": 3, "trials": 2, "eval_samples": 2500}
    assert on_disk["seeds"] == on_disk["trials"] == [0, 1] and on_disk["blocks"] == [[0, 2]]
    assert "shard" not in on_disk and on_disk["wall_seconds"] > 0
    assert on_disk["config"]["budget"] == on_disk["budget"] and on_disk["config"]["blocks"] == 1
    assert on_disk["config_hash"] == records.config_hash(on_disk["config"])
    assert set(on_disk["code"]) == {"gan_lab", "git_commit", "source_sha256"}
    rows = on_disk["rows"]
    assert [(r["dataset"], r["method"], r["pack"]) for r in rows] == list(reproduce.PACGAN_ROWS)
    for row in rows:
        cfg = row["train_config"]
        assert cfg["pack"] == row["pack"] and cfg["steps"] == 3 and cfg["seeds"] == 2
        assert cfg["g_arch"] == "batchnorm" and cfg["d_arch"] == "maxout" and cfg["update"] == "simultaneous"
        assert cfg["betas"] == [0.8, 0.999] and cfg["lr_g"] == cfg["lr_d"] == 1e-4 and cfg["batch_size"] == 100
        assert len(row["trials"]) == 2 and row["paper"] == reproduce.PACGAN_TABLE1[row["dataset"]][row["method"]]
        n_modes = 8 if row["dataset"] == "ring" else 25
        assert [t["trial"] for t in row["trials"]] == [0, 1]
        for t in row["trials"]:
            assert len(t["counts"]) == n_modes and 0 <= t["modes"] <= n_modes
            assert 0 <= t["high_quality"] <= 1 and sum(t["counts"]) == round(t["high_quality"] * 2500)
        for metric in ("modes", "high_quality", "reverse_kl"):
            vals = [t[metric] for t in row["trials"]]
            assert row["summary"][metric]["mean"] == pytest.approx(np.mean(vals))
            assert row["summary"][metric]["stderr"] == pytest.approx(scipy.stats.sem(vals), abs=1e-12)


def test_table_lists_ours_beside_the_paper(tiny_record):
    text = reproduce.table(tiny_record[0])
    assert "PacGAN2" in text and "23.8" in text and "98.2" in text
    assert len(text.splitlines()) == 2 + 4


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli.json"
    reproduce.main(["pacgan", "--profile", "quick", "--trials", "1", "--steps", "2", "--out", str(out)])
    assert results.load_json(out)["budget"]["trials"] == 1
    assert "PacGAN2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        reproduce.main(["pacgan", "--profile", "fast"])
    with pytest.raises(SystemExit):
        reproduce.main(["pacgan", "--trials", "0"])


def test_bad_arguments_and_registry():
    with pytest.raises(ValueError, match="profile must be one of"):
        reproduce.run("pacgan", "fast")
    with pytest.raises(ValueError, match="name must be one of"):
        reproduce.run("wgan", "quick")
    with pytest.raises(ValueError, match="trials"):
        reproduce.run("pacgan", "quick", trials=0)
    with pytest.raises(ValueError, match="already registered"):
        reproduce.register(reproduce.REGISTRY["pacgan"])
    rep = reproduce.Reproduction("x", "t", "k", {}, {"quick": {}}, lambda *a: [])
    with pytest.raises(ValueError, match="no budget"):
        reproduce.register(rep)
    assert reproduce.REGISTRY["pacgan"].budgets["paper"]["steps"] == 400_000


def test_summarize_against_scipy():
    v = [3.0, 5.0, 8.0, 8.0]
    s = reproduce.summarize(v)
    assert s["mean"] == pytest.approx(6.0) and s["stderr"] == pytest.approx(scipy.stats.sem(v))
    assert reproduce.summarize([2.0]) == {"mean": 2.0, "stderr": 0.0}
    with pytest.raises(ValueError):
        reproduce.summarize([])


def test_checkpoints_resume_a_reproduction_to_the_same_record(tmp_path):
    """Rows that finished are not re-trained: re-running with the same checkpoint_dir loads
    each run's final checkpoint (resumed at its last step) and reports the same metrics."""
    kw = dict(trials=2, steps=4, device="cpu", progress=False)
    first = reproduce.run("pacgan", "quick", checkpoint_dir=tmp_path / "ck", **kw)
    assert len(list((tmp_path / "ck").glob("*.ckpt"))) == len(reproduce.PACGAN_ROWS)
    again = reproduce.run("pacgan", "quick", checkpoint_dir=tmp_path / "ck", **kw)
    for a, b in zip(first["rows"], again["rows"]):
        assert a["trials"] == b["trials"]


# --- shards and merging ------------------------------------------------------------------------


def _tiny_rows(budget, device, progress, on_row=None, checkpoint=lambda key: None, blocks=None):
    """A test reproduction with continuous metrics, so bit-equality of merged shards means something."""
    trials = []
    for a, b in blocks:
        run_ = train.fit(data.ring(), steps=budget["steps"], seeds=b - a, seed=a, batch_size=16, g_hidden=(8,),
                         d_hidden=(8,), device=device, progress=progress)
        x = run_.sample(32, rng=torch.Generator().manual_seed(7))
        trials += [{"trial": a + i, "seed": run_.first_seed + i, "x_mean": float(x[i].mean()),
                    "d_loss": float(run_.history["d_loss"][-1, i])} for i in range(b - a)]
    rows = [{"name": "ring", "seconds": 0.5, "trials": trials, "summary": records.summarize_trials(trials)}]
    if on_row is not None:
        on_row(rows)
    return rows


@pytest.fixture(scope="module")
def tiny():
    rep = reproduce.register(reproduce.Reproduction(
        "tiny-test", "a test", "none", {}, {p: {"steps": 4, "trials": 4} for p in reproduce.PROFILES},
        _tiny_rows, setup={"hidden": 8}))
    yield rep.name
    del reproduce.REGISTRY[rep.name]


def _content(record):
    """A record without what differs between any two runs: provenance, timings and merge bookkeeping."""
    r = json.loads(json.dumps(record))
    for key in ("provenance", "cpu_seconds", "wall_seconds", "merged_from"):
        r.pop(key, None)
    for row in r["rows"]:
        for key in records.ROW_TIMINGS:
            row.pop(key, None)
    return r


def test_partition_and_shard_blocks():
    assert records.partition(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert records.partition(3, 3) == [(0, 1), (1, 2), (2, 3)] and records.partition(5, 1) == [(0, 5)]
    assert records.shard_blocks(4, 4, (0, 3)) == [(0, 1), (1, 2)]  # a shard may hold several blocks
    assert records.shard_blocks(4, 4, (2, 3)) == [(3, 4)] and records.shard_blocks(4, 2, None) == [(0, 2), (2, 4)]
    assert records.parse_shard("1/2") == records.parse_shard((1, 2)) == records.parse_shard(" 1 / 2 ") == (1, 2)


def test_pacgan_shards_from_the_command_line_merge_into_the_unsharded_record(tmp_path, capsys):
    files = [tmp_path / f"s{i}.json" for i in range(2)]
    for i in (1, 0):  # any order
        reproduce.main(["pacgan", "--trials", "3", "--steps", "2", "--shard", f"{i}/2", "--out", str(files[i]),
                        "--device", "cpu"])
    shard0 = results.load_json(files[0])
    assert shard0["shard"] == {"index": 0, "count": 2} and shard0["trials"] == [0, 1] and shard0["blocks"] == [[0, 2]]
    assert all([t["trial"] for t in row["trials"]] == [0, 1] for row in shard0["rows"])
    out = tmp_path / "merged.json"
    reproduce.main(["merge", str(files[1]), str(files[0]), "--out", str(out)])
    assert "3 trials" in capsys.readouterr().out
    merged = results.load_json(out)
    whole = reproduce.run("pacgan", "quick", trials=3, steps=2, blocks=2, device="cpu", progress=False)
    assert _content(merged) == _content(whole)
    assert "shard" not in merged and merged["trials"] == [0, 1, 2] and merged["complete"]
    shards = merged["provenance"]["shards"]
    assert [s["shard"] for s in shards] == ["0/2", "1/2"] and [s["trials"] for s in shards] == [[0, 1], [2]]
    for s in shards:
        assert s["device"] == "cpu" and s["date"] and s["wall_seconds"] > 0 and s["file"].endswith(".json")
    for key in ("torch", "git_commit", "device_name", "date"):
        assert merged["provenance"][key] == shard0["provenance"][key] or key == "date"


@pytest.mark.parametrize("n, blocks", [(2, None), (3, 4)])
def test_shards_merged_are_bit_equal_to_the_unsharded_run_of_the_same_blocks(tiny, n, blocks):
    """Per-trial floats equal exactly, in trial order; summaries are recomputed over all trials."""
    kw = dict(device="cpu", progress=False, blocks=blocks)
    shards = [reproduce.run(tiny, "quick", shard=f"{i}/{n}", **kw) for i in range(n)]
    merged = records.merge(shards[::-1])
    whole = reproduce.run(tiny, "quick", **{**kw, "blocks": blocks or n})
    assert _content(merged) == _content(whole)
    trials = merged["rows"][0]["trials"]
    assert [t["trial"] for t in trials] == [0, 1, 2, 3] and len({t["x_mean"] for t in trials}) == 4
    assert merged["rows"][0]["summary"]["x_mean"]["mean"] == pytest.approx(np.mean([t["x_mean"] for t in trials]))
    assert merged["rows"][0]["seconds"] == pytest.approx(0.5 * n)  # timings add up over the shards
    assert merged["cpu_seconds"] == pytest.approx(sum(s["cpu_seconds"] for s in shards))


@pytest.fixture(scope="module")
def tiny_shards(tiny):
    return [reproduce.run(tiny, "quick", shard=f"{i}/2", device="cpu", progress=False) for i in range(2)]


def _edited(record, *path_and_value):
    r = json.loads(json.dumps(record))
    *path, key, value = path_and_value
    target = r
    for p in path:
        target = target[p]
    target[key] = value
    return r


def test_merge_refuses_mismatched_configurations_code_and_torch(tiny, tiny_shards, monkeypatch):
    s0, s1 = tiny_shards
    other = reproduce.run(tiny, "quick", steps=3, shard="1/2", device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"different configurations \(config_hash\)"):
        records.merge([s0, other])
    other_profile = reproduce.run(tiny, "full", shard="1/2", device="cpu", progress=False)
    with pytest.raises(ValueError, match="different configurations"):
        records.merge([s0, other_profile])
    for field, value in (("git_commit", "0" * 40), ("gan_lab", "9.9"), ("source_sha256", "f" * 64)):
        with pytest.raises(ValueError, match="different code versions"):
            records.merge([s0, _edited(s1, "code", field, value)], names=["a.json", "b.json"])
    with pytest.raises(ValueError, match=r"different torch versions.*a.json: .*b.json: 0.1"):
        records.merge([s0, _edited(s1, "provenance", "torch", "0.1")], names=["a.json", "b.json"])
    with pytest.raises(ValueError, match="does not match its config_hash"):
        records.merge([s0, _edited(s1, "config", "blocks", 1)])
    with pytest.raises(ValueError, match="different rows"):
        records.merge([s0, _edited(s1, "rows", 0, "name", "grid")])
    monkeypatch.setenv("GAN_LAB_SEED", "1")  # another base seed: other seeds, another configuration
    shifted = reproduce.run(tiny, "quick", shard="1/2", device="cpu", progress=False)
    assert shifted["rows"][0]["trials"][0]["seed"] == 2 + profile.SEED_STRIDE
    with pytest.raises(ValueError, match="different configurations"):
        records.merge([s0, shifted])


def test_merge_refuses_overlaps_gaps_and_files_that_are_not_shards(tiny, tiny_shards, tmp_path, capsys):
    s0, s1 = tiny_shards
    with pytest.raises(ValueError, match="trial 0 is in both a.json and b.json"):
        records.merge([s0, s0], names=["a.json", "b.json"])
    with pytest.raises(ValueError, match="trials 2, 3 of 0..3 are in no shard"):
        records.merge([s0])
    with pytest.raises(ValueError, match="incomplete shard record"):
        records.merge([s0, _edited(s1, "complete", False)])
    whole = reproduce.run(tiny, "quick", blocks=2, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"whole.json is not a shard record \(the record of a whole run"):
        records.merge([s0, whole], names=["s0.json", "whole.json"])
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{not json")
    results.save_json(tmp_path / "s0.json", s0)
    with pytest.raises(ValueError, match="list.json is not a shard record"):
        reproduce.merge_files([tmp_path / "s0.json", tmp_path / "list.json"])
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        reproduce.merge_files([tmp_path / "s0.json", tmp_path / "bad.json"])
    with pytest.raises(SystemExit):
        reproduce.main(["merge", str(tmp_path / "s0.json")])
    assert "trials 2, 3 of 0..3 are in no shard" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("bad", ["2/2", "-1/2", "1", "a/b", "1/0", "0/2/3", "", (3, 2)])
def test_bad_shard_values_get_clear_errors(bad):
    with pytest.raises(ValueError, match=r"--shard must look like i/n with 0 <= i < n"):
        records.parse_shard(bad)


def test_shards_must_fit_the_trials_and_blocks(capsys):
    with pytest.raises(ValueError, match=r"n <= trials \(2\), got n = 3"):
        reproduce.run("pacgan", "quick", trials=2, shard="0/3")
    with pytest.raises(ValueError, match=r"n <= blocks .* got n = 2 and blocks = 1"):
        reproduce.run("pacgan", "quick", trials=2, shard="0/2", blocks=1)
    with pytest.raises(ValueError, match=r"blocks must be at most trials \(2\), got 3"):
        reproduce.run("pacgan", "quick", trials=2, blocks=3)
    with pytest.raises(ValueError, match="blocks must be None or a positive int"):
        reproduce.run("pacgan", "quick", blocks=0)
    with pytest.raises(SystemExit):
        reproduce.main(["pacgan", "--shard", "2/2"])
    assert "--shard must look like i/n with 0 <= i < n" in capsys.readouterr().err


def test_shards_checkpoint_each_block_under_its_own_name(tmp_path):
    for i in range(2):
        reproduce.run("pacgan", "quick", trials=2, steps=2, shard=f"{i}/2", device="cpu", progress=False,
                      checkpoint_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.ckpt"))
    assert len(names) == 2 * len(reproduce.PACGAN_ROWS)
    assert sum("-trials0-1" in n for n in names) == sum("-trials1-2" in n for n in names) == 4
