import hashlib
import json
import os

import pytest

from gan_lab import results


def test_save_json_round_trip_and_no_temp_files(tmp_path):
    path = results.save_json(tmp_path / "sub" / "r.json", {"a": [1, 2.5], "b": "x"})
    assert results.load_json(path) == {"a": [1, 2.5], "b": "x"}
    assert os.listdir(path.parent) == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    results.save_json(path, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.save_json(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["r.json"]  # the temporary file is gone too


def test_nan_is_refused(tmp_path):
    with pytest.raises(ValueError):
        results.save_json(tmp_path / "r.json", {"x": float("nan")})


def test_load_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        results.load_json(bad)


def test_provenance_fields():
    rec = results.provenance("cpu")
    for key in ("device", "device_name", "date", "torch", "python", "numpy"):
        assert rec[key]
    assert rec["device"] == "cpu"


def test_write_checked_leaves_no_half_file(monkeypatch, tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(ValueError, match="SHA-256"):
        results.write_checked(target, b"abc", sha256="0" * 64)
    assert not target.exists()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        results.write_checked(target, b"abc")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    results.write_checked(target, b"abc", hashlib.sha256(b"abc").hexdigest())
    assert target.read_bytes() == b"abc" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
