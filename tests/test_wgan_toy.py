import copy
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.spatial
import scipy.stats
import sklearn.datasets
import torch

from gan_lab import records, reproduce, results, wgan_toy

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted((ROOT / "results").glob(f"{wgan_toy.NAME}-*.json"))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("wgan_toy") / f"{wgan_toy.NAME}-quick.json"
    record = reproduce.run(wgan_toy.NAME, "quick", out=path, device="cpu", progress=False)
    return record, path


def _w1_oracle(x, y):
    cost = scipy.spatial.distance.cdist(np.asarray(x, np.float64), np.asarray(y, np.float64))
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return cost[rows, cols].mean()


# --- the record ---------------------------------------------------------------------------------


def test_quick_profile_writes_a_well_formed_record(quick):
    record, path = quick
    assert results.load_json(path) == record
    assert record["complete"] is True and record["reproduction"] == wgan_toy.NAME
    assert record["cite"] == "gulrajani2017improved" and record["profile"] == "quick"
    assert record["budget"] == wgan_toy.BUDGETS["quick"] and record["trials"] == [0, 1]
    for key in ("device", "device_name", "date", "torch", "git_commit"):
        assert key in record["provenance"]
    assert set(record["code"]) == {"gan_lab", "git_commit", "source_sha256"}
    rows = record["rows"]
    assert [(r["dataset"], r["kind"]) for r in rows] == [(d, k) for d in wgan_toy.DATA for k in wgan_toy.KINDS]
    n_eval = record["budget"]["eval_samples"]
    for row in rows:
        cfg = row["train_config"]
        # the authors' settings reached the fit
        assert cfg["d_hidden"] == [512, 512, 512] and cfg["activation"] == "relu" and cfg["batch_size"] == 256
        assert cfg["loss"] == "wasserstein" and cfg["steps"] == record["budget"]["steps"] and cfg["seeds"] == 2
        if row["kind"] == "penalty":
            assert cfg["penalty"] == "wgan-gp" and cfg["penalty_weight"] == 0.1 and cfg["clip"] is None
            assert cfg["optimizer"] == "adam" and cfg["lr_d"] == 1e-4 and cfg["betas"] == [0.5, 0.9]
        else:
            assert cfg["penalty"] is None and cfg["clip"] == 0.01
            assert cfg["optimizer"] == "rmsprop" and cfg["lr_d"] == 5e-5
        assert [t["trial"] for t in row["trials"]] == [0, 1]
        for t in row["trials"]:
            assert 0 < t["fraction"] <= 1 + 1e-9  # weak duality
            assert t["r2"] <= 1 + 1e-12 and t["lipschitz"] > 0
            assert ("at_c" in t) == (row["kind"] == "clipping")
            if "at_c" in t:
                assert 0 <= t["at_c"] <= 1
        for metric in row["summary"]:
            vals = [t[metric] for t in row["trials"]]
            assert row["summary"][metric]["mean"] == pytest.approx(np.mean(vals))
            assert row["summary"][metric]["stderr"] == pytest.approx(scipy.stats.sem(vals), abs=1e-12)
        # the evaluation points' exact W1, against an assignment solved here
        p = wgan_toy.toy_data(row["dataset"])
        x, y = wgan_toy._eval_points(p, n_eval)
        assert row["w1"] == pytest.approx(_w1_oracle(x, y), rel=1e-9)


def test_record_hash_is_the_current_configuration(quick):
    record, _ = quick
    current = reproduce.configuration(wgan_toy.NAME, "quick", blocks=1, base_seed=0)
    assert record["config"] == current
    assert record["config_hash"] == records.config_hash(current)
    assert wgan_toy.is_current(record)


@pytest.mark.parametrize("path", STORED, ids=[p.name for p in STORED])
def test_each_stored_record_was_made_by_the_current_configuration(path):
    record = results.load_json(path)
    assert record["reproduction"] == wgan_toy.NAME and record["complete"] is True
    assert records.config_hash(record["config"]) == record["config_hash"], "the file was edited"
    cfg = record["config"]
    current = reproduce.configuration(wgan_toy.NAME, record["profile"], blocks=cfg["blocks"],
                                      base_seed=cfg["base_seed"])
    assert records.config_hash(current) == record["config_hash"], (
        f"{path.name} was made by another configuration than the current code's: rerun "
        f"python -m gan_lab.reproduce {wgan_toy.NAME} --profile {record['profile']}")
    assert wgan_toy.is_current(record)
    assert len(record["rows"]) == len(wgan_toy.DATA) * len(wgan_toy.KINDS)
    assert all(len(r["trials"]) == record["budget"]["trials"] for r in record["rows"])


@pytest.mark.parametrize("mutate", [
    lambda: wgan_toy.KINDS["penalty"].__setitem__("penalty_weight", 10.0),
    lambda: wgan_toy.KINDS["clipping"].__setitem__("clip", 0.02),
    lambda: wgan_toy.DATA["25 Gaussians"].__setitem__("divide_by", 2.0),
    lambda: wgan_toy.CRITIC.__setitem__("d_hidden", (64, 64, 64)),
    lambda: wgan_toy.SETUP.__setitem__("method_version", wgan_toy.METHOD_VERSION + 1),
    lambda: wgan_toy.BUDGETS["quick"].__setitem__("steps", wgan_toy.BUDGETS["quick"]["steps"] + 1),
], ids=["lambda", "clip", "data-scale", "width", "method", "steps"])
def test_control_a_changed_configuration_makes_a_record_stale(quick, mutate, monkeypatch):
    record, _ = quick
    saved = {name: copy.deepcopy(getattr(wgan_toy, name)) for name in ("KINDS", "DATA", "CRITIC", "BUDGETS")}
    before = records.config_hash(reproduce.configuration(wgan_toy.NAME, "quick", base_seed=0))
    try:
        mutate()
        after = records.config_hash(reproduce.configuration(wgan_toy.NAME, "quick", base_seed=0))
        assert after != before
        assert not wgan_toy.is_current(record)
    finally:  # the registry holds these very dicts: put them back in place
        for name, value in saved.items():
            getattr(wgan_toy, name).clear()
            getattr(wgan_toy, name).update(value)
        wgan_toy.SETUP["method_version"] = wgan_toy.METHOD_VERSION
    assert wgan_toy.is_current(record)


def test_control_an_edited_record_is_not_current(quick):
    record = copy.deepcopy(quick[0])
    record["config"]["setup"]["kinds"]["penalty"]["lr_d"] = 1e-3  # edited, hash left alone
    assert not wgan_toy.is_current(record)
    record = copy.deepcopy(quick[0])
    record["config_hash"] = "0" * 64
    assert not wgan_toy.is_current(record)


def test_cli_prints_this_reproductions_table(tmp_path, capsys):
    out = tmp_path / "cli.json"
    reproduce.main([wgan_toy.NAME, "--profile", "quick", "--trials", "1", "--steps", "1", "--out", str(out)])
    assert results.load_json(out)["budget"] == {**wgan_toy.BUDGETS["quick"], "steps": 1, "trials": 1}
    text = capsys.readouterr().out
    assert "Swiss roll" in text and "fraction of W1" in text


# --- the data, against the authors' constants ---------------------------------------------------


def _sorted_rows(a):
    a = np.round(np.asarray(a, np.float64), 9)
    return a[np.lexsort(a.T[::-1])]


def test_eight_gaussians_are_the_authors():
    # gan_toy.py: centres (+-1, 0), (0, +-1), (+-1/sqrt2, +-1/sqrt2) times 2, noise 0.02, all / 1.414
    s = 1 / np.sqrt(2)
    centres = 2.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]) / 1.414
    p = wgan_toy.toy_data("8 Gaussians")
    np.testing.assert_allclose(_sorted_rows(p.means), _sorted_rows(centres), atol=1e-6)
    np.testing.assert_allclose(p.stds.numpy(), 0.02 / 1.414, rtol=1e-6)
    np.testing.assert_allclose(p.weights.numpy(), 1 / 8, rtol=1e-6)


def test_twenty_five_gaussians_are_the_authors():
    centres = np.array([(2 * x, 2 * y) for x in range(-2, 3) for y in range(-2, 3)]) / 2.828
    p = wgan_toy.toy_data("25 Gaussians")
    np.testing.assert_allclose(_sorted_rows(p.means), _sorted_rows(centres), atol=1e-6)
    np.testing.assert_allclose(p.stds.numpy(), 0.05 / 2.828, rtol=1e-6)


def _authors_eight_gaussians(n, seed):
    """A numpy transcription of the authors' 8-Gaussian batches (random.choice of a centre)."""
    r, g = random.Random(seed), np.random.default_rng(seed)
    s = 1 / np.sqrt(2)
    centres = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
    pts = np.array([2.0 * np.array(r.choice(centres)) for _ in range(n)]) + 0.02 * g.normal(size=(n, 2))
    return pts / 1.414


def test_eight_gaussian_samples_match_the_authors_batches():
    n = 20_000
    ours = wgan_toy.toy_data("8 Gaussians").sample(n, rng=torch.Generator().manual_seed(0)).double().numpy()
    theirs = _authors_eight_gaussians(n, seed=1)
    for k in range(2):  # each coordinate's distribution, two-sample KS
        assert scipy.stats.ks_2samp(ours[:, k], theirs[:, k]).pvalue > 1e-3
    # "stdev": both scaled data sets have unit standard deviation per coordinate (SE ~ 1/sqrt(2n))
    np.testing.assert_allclose(ours.std(0), 1.0, atol=4 / np.sqrt(2 * n))


def test_swiss_roll_matches_sklearn_at_the_authors_constants():
    n = 20_000
    theirs = sklearn.datasets.make_swiss_roll(n_samples=n, noise=0.25, random_state=0)[0][:, [0, 2]] / 7.5
    roll = wgan_toy.toy_data("Swiss roll")
    assert len(roll) == wgan_toy.DATA["Swiss roll"]["points"]
    ours = roll.sample(n, rng=torch.Generator().manual_seed(0)).double().numpy()

    def ks(a, b):  # the radius and each coordinate
        return min(scipy.stats.ks_2samp(f(a), f(b)).pvalue
                   for f in (lambda z: np.linalg.norm(z, axis=1), lambda z: z[:, 0], lambda z: z[:, 1]))

    assert ks(ours, theirs) > 1e-3
    # control: the same construction divided by 7.0 instead of 7.5 is told apart
    assert ks(ours, theirs * 7.5 / 7.0) < 1e-6


def test_toy_data_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        wgan_toy.toy_data("moons")


# --- measuring a critic -------------------------------------------------------------------------


class _LinearCritics:
    """Stand-in for a CriticRun: critics f_s(x) = <a_s, x>, with given flattened weights."""

    def __init__(self, slopes, weights):
        self.slopes, self._weights = torch.as_tensor(slopes, dtype=torch.float64), np.asarray(weights)

    def logits(self, x):
        return (x.double() @ self.slopes.T).T  # (S, n)

    def weights(self, which="discriminator"):
        return self._weights


def test_measure_against_a_linear_critic():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 2, generator=g)
    y = torch.randn(300, 2, generator=g) * 2 + torch.tensor([1.0, 0.0])
    slopes = [[-1.0, 0.5], [-2.0, 1.0]]  # both with a positive gap E_P f - E_Q f
    weights = [[0.01, -0.01, 0.005, 0.0], [0.01 * (1 - 1e-7), 0.02, -0.003, 0.0]]
    m = wgan_toy.measure(_LinearCritics(slopes, weights), x, y, clip=0.01)
    w1 = _w1_oracle(x, y)
    assert m["w1"] == pytest.approx(w1, rel=1e-9)
    for s, a in enumerate(np.array(slopes)):
        gap = (x.double().numpy() @ a).mean() - (y.double().numpy() @ a).mean()
        # a linear critic's Lipschitz constant on generic points is |a| (a pair along a attains it
        # only in the limit), so the bound is at most gap / |a| and close to it on 600 points
        assert m["fraction"][s] * w1 >= gap / np.linalg.norm(a) - 1e-9
        assert m["fraction"][s] * w1 == pytest.approx(gap / np.linalg.norm(a), rel=0.05)
        assert m["lipschitz"][s] <= np.linalg.norm(a) + 1e-9
    np.testing.assert_allclose(m["r2"], 1.0, atol=1e-9)  # a linear critic is a quadratic
    np.testing.assert_array_equal(m["at_c"], [0.5, 0.5])  # |w| >= c (1 - 1e-6): the 2nd counts 1e-7 off
    assert "at_c" not in wgan_toy.measure(_LinearCritics(slopes, weights), x, y, clip=None)


# --- reading and showing stored records ---------------------------------------------------------


def test_table_shows_provenance_budget_and_mean_se(quick):
    record, _ = quick
    text = wgan_toy.table(record)
    prov, budget = record["provenance"], record["budget"]
    assert prov["device_name"] in text and prov["date"] in text and record["code"]["git_commit"][:10] in text
    assert f"{budget['trials']} trials" in text and f"{budget['steps']:,} critic steps" in text
    assert reproduce.table(record) == text  # the command line prints the same table
    lines = text.splitlines()
    for dataset in wgan_toy.DATA:
        for kind in wgan_toy.KINDS:
            line = next(ln for ln in lines if ln.startswith(dataset) and f" {kind} " in ln)
            for metric in ("fraction", "r2") + (("at_c",) if kind == "clipping" else ()):
                v = wgan_toy.trial_values(record, dataset, kind, metric)
                assert f"{v.mean():.2f} ± {scipy.stats.sem(v):.2f}" in line


def test_describe_without_a_record_prints_the_command(tmp_path):
    text = wgan_toy.describe(tmp_path)
    assert "has not been made" in text and wgan_toy.COMMAND in text
    assert wgan_toy.COMMAND == "python -m gan_lab.reproduce wgan-gp-surfaces --profile full"


def test_describe_with_a_full_record_shows_its_table(quick, tmp_path):
    record = copy.deepcopy(quick[0])
    record["profile"] = "full"
    results.save_json(tmp_path / f"{wgan_toy.NAME}-full.json", record)
    shutil.copy(quick[1], tmp_path / f"{wgan_toy.NAME}-quick.json")  # quick records are not shown
    text = wgan_toy.describe(tmp_path)
    assert "has not been made" not in text and text == wgan_toy.table(record)
    assert [r["profile"] for r in wgan_toy.stored_records(tmp_path)] == ["full"]


def test_stored_records_refuse_a_foreign_file(tmp_path):
    (tmp_path / f"{wgan_toy.NAME}-full.json").write_text(json.dumps({"reproduction": "pacgan"}))
    with pytest.raises(ValueError, match="not a record of"):
        wgan_toy.stored_records(tmp_path)
    (tmp_path / f"{wgan_toy.NAME}-full.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        wgan_toy.stored_records(tmp_path)


def test_trial_values_bad_input(quick):
    record, _ = quick
    v = wgan_toy.trial_values(record, "8 Gaussians", "clipping", "at_c")
    assert v.shape == (2,)
    with pytest.raises(ValueError, match="metric must be one of"):
        wgan_toy.trial_values(record, "8 Gaussians", "penalty", "at_c")
    with pytest.raises(ValueError, match="no row for"):
        wgan_toy.trial_values(record, "moons", "penalty", "r2")
