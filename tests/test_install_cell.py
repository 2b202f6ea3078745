"""The chapters' hidden first cell, run as Colab would run it: a fresh Python where torch
and the scientific stack are preinstalled but gan_lab is not. The install points at this
checkout instead of the repository URL; everything else in the cell runs unchanged."""

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _install_cell() -> str:
    chapter = sorted((ROOT / "book").glob("ch*.ipynb"))[0]
    cell = json.loads(chapter.read_text())["cells"][0]
    return "".join(cell["source"])


def test_install_cell_installs_gan_lab_into_a_fresh_environment(tmp_path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    source = _install_cell()
    assert f"git+{url}" in source
    local = source.replace(f"git+{url}", ROOT.as_uri())

    env_dir = tmp_path / "colab"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # "preinstalled": torch, numpy, IPython, ... come from the environment running the tests
    # (appended to sys.path, so packages pip installs into the fresh venv take precedence)
    Path(site, "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    missing = subprocess.run([python, "-c", "import gan_lab"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0, "gan_lab must not be importable before the cell runs"

    script = tmp_path / "cell.ipy"
    script.write_text(local + "\nimport gan_lab.train, gan_lab.data\nprint('OK', gan_lab.__file__)\n")
    out = subprocess.run([python, "-m", "IPython", "--quick", "--no-banner", str(script)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "OK" in out.stdout and str(env_dir) in out.stdout, out.stdout[-1000:]
