import pytest
import torch

from gan_lab import profile


def test_profile_default_and_override(monkeypatch):
    monkeypatch.delenv("GAN_LAB_PROFILE", raising=False)
    assert profile.profile_name() == "quick"  # on every device: full only when asked
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


def test_base_seed_shifts_every_seed(monkeypatch):
    monkeypatch.delenv("GAN_LAB_SEED", raising=False)
    assert profile.base_seed() == 0 and profile.seed_for(7) == 7
    a = torch.rand(4, generator=profile.rng(3))
    assert torch.equal(a, torch.rand(4, generator=torch.Generator().manual_seed(3)))
    monkeypatch.setenv("GAN_LAB_SEED", "2")
    assert profile.base_seed() == 2 and profile.seed_for(7) == 7 + 2 * profile.SEED_STRIDE
    assert not torch.equal(a, torch.rand(4, generator=profile.rng(3)))  # another stream
    profile.start_chapter("Chapter Y")
    b = torch.rand(3)
    profile.seed_all(2 * profile.SEED_STRIDE)
    assert torch.equal(b, torch.rand(3))  # start_chapter seeded the shifted seed


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "two"])
def test_bad_base_seed_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("GAN_LAB_SEED", value)
    with pytest.raises(ValueError, match="GAN_LAB_SEED must be a non-negative integer"):
        profile.base_seed()
    with pytest.raises(ValueError, match="GAN_LAB_SEED"):
        profile.rng(0)


@pytest.mark.parametrize("i", [-1, profile.SEED_STRIDE, 1.0, True])
def test_rng_purpose_out_of_range(i):
    with pytest.raises(ValueError, match="i must be an int"):
        profile.rng(i)


def test_bad_device_variable(monkeypatch):
    monkeypatch.setenv("GAN_LAB_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="GAN_LAB_DEVICE must name a torch device"):
        profile.device()
    monkeypatch.setenv("GAN_LAB_DEVICE", "meta")
    with pytest.raises(ValueError, match="GAN_LAB_DEVICE must be a device of type"):
        profile.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("GAN_LAB_DEVICE", "cuda:3")
        with pytest.raises(ValueError, match="GAN_LAB_DEVICE 'cuda:3' was asked for, but CUDA is not available"):
            profile.device()
    else:
        monkeypatch.setenv("GAN_LAB_DEVICE", f"cuda:{torch.cuda.device_count()}")
        with pytest.raises(ValueError, match="is not present"):
            profile.device()


def test_device_names_are_normalised():
    assert profile.same_device("cpu", torch.device("cpu"))
    if torch.cuda.is_available():
        assert profile.device("cuda") == torch.device("cuda", torch.cuda.current_device())
        assert profile.same_device("cuda", "cuda:0") == (torch.cuda.current_device() == 0)


def test_chapter_clock_names_profile_device_and_base_seed(capsys, monkeypatch):
    monkeypatch.setenv("GAN_LAB_SEED", "4")
    profile.start_chapter("Chapter Z")
    title, settings, versions = capsys.readouterr().out.splitlines()
    assert title == "Chapter Z" and "torch " in versions and "python " in versions
    assert "profile: quick" in settings and "device: " in settings and "base seed: 4" in settings
    assert max(len(title), len(settings), len(versions)) <= 77  # the website's box
