import numpy as np
import pytest
import scipy.stats

from gan_lab import reproduce, results


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
    assert on_disk["seeds"] == [0, 1]
    rows = on_disk["rows"]
    assert [(r["dataset"], r["method"], r["pack"]) for r in rows] == list(reproduce.PACGAN_ROWS)
    for row in rows:
        cfg = row["train_config"]
        assert cfg["pack"] == row["pack"] and cfg["steps"] == 3 and cfg["seeds"] == 2
        assert cfg["g_arch"] == "batchnorm" and cfg["d_arch"] == "maxout" and cfg["update"] == "simultaneous"
        assert cfg["betas"] == [0.8, 0.999] and cfg["lr_g"] == cfg["lr_d"] == 1e-4 and cfg["batch_size"] == 100
        assert len(row["trials"]) == 2 and row["paper"] == reproduce.PACGAN_TABLE1[row["dataset"]][row["method"]]
        n_modes = 8 if row["dataset"] == "ring" else 25
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
