import pytest
import torch

from gan_lab import profile


def test_profile_default_and_override(monkeypatch):
    monkeypatch.delenv("GAN_LAB_PROFILE", raising=False)
    assert profile.profile_name() == ("full" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("GAN_LAB_PROFILE", "full")
    assert profile.profile_name() == "full"
    assert profile.budget(quick=1, full=2) == 2
    monkeypatch.setenv("GAN_LAB_PROFILE", "quick")
    assert profile.budget(quick=1, full=2) == 1
    monkeypatch.setenv("GAN_LAB_PROFILE", "fast")
    with pytest.raises(ValueError, match="GAN_LAB_PROFILE"):
        profile.profile_name()


def test_device_choice(monkeypatch):
    monkeypatch.delenv("GAN_LAB_DEVICE", raising=False)
    assert profile.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert profile.device("cpu") == torch.device("cpu")
    monkeypatch.setenv("GAN_LAB_DEVICE", "cpu")
    assert profile.device() == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        profile.device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            profile.device("cuda")


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("GAN_LAB_PROGRESS", "0")
    assert profile.progress_enabled() is False
    assert profile.progress_enabled(True) is True
    monkeypatch.setenv("GAN_LAB_PROGRESS", "1")
    assert profile.progress_enabled() is True


def test_chapter_clock_prints(capsys):
    clock = profile.start_chapter("Chapter X")
    out = capsys.readouterr().out
    assert "Chapter X" in out and "profile:" in out and "device:" in out
    assert clock.finish() is None and clock.elapsed() >= 0
    assert "wall time" in capsys.readouterr().out


def test_seed_all():
    profile.seed_all(3)
    a = torch.rand(3)
    profile.seed_all(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        profile.seed_all(-1)


def test_progress_bar_silent_when_off(capsys):
    assert list(profile.progress_bar(range(3), "x", progress=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    assert list(profile.progress_bar(range(3), "x", progress=True)) == [0, 1, 2]
    assert "3/3" in capsys.readouterr().err
