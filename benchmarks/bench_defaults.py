"""What a user waits for first (issue 30): every bundled example's default audit (no
``--checks``) and every command the README shows, timed as the ``fairaudit`` command a
user runs. Run: ``python benchmarks/bench_defaults.py [--only SUBSTRING] [--timeout S]``.

Each command runs once, in a fresh copy of ``examples/`` (nothing is written into the
tree), as a child process; the table gives its wall time, the child's peak resident memory
(``wait4``'s ``ru_maxrss``: the largest of the process tree's members, so a worker process
counts on its own), its CPU seconds (user + system, workers included), its exit code and
verdicts. A command past ``--timeout`` is stopped and
shown as ``>T``. The machine is shared: the load average at the start and end is printed
with the table, and a single run is a single sample — compare before/after runs made at
similar load, or pair them.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERDICT_LINE = re.compile(r"^(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\s+(\S+)", re.M)


def default_audits() -> list[tuple[str, str, str]]:
    """(id, folder, command): each bundled example allocator's audit with no ``--checks``."""
    out = []
    for p in sorted((ROOT / "examples" / "allocators").glob("*.py")):
        out.append((f"default:{p.stem}", ".", f"fairaudit check examples/allocators/{p.name}"))
    return out


NOT_RUN = {'python3 -m venv .venv && . .venv/bin/activate', 'pip install -e ".[test]" && pytest', 'pytest -m "not slow"',
           'dask scheduler', 'dask worker tcp://HOST:8786 --nthreads 1',
           'fairaudit check my_allocator.py --data people.csv --scheduler tcp://HOST:8786'}


def readme_commands() -> list[tuple[str, str, str]]:
    """The README's commands as tests/test_readme.py runs them (its bash blocks and the
    checks table's "try it" column, in order, with the folder its ``cd`` lines leave;
    the set-up command after its install, and again without ``--checks``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)\n```", text, re.S):
        for line in block.splitlines():
            cmd = line.partition("#")[0].strip()
            if cmd:
                lines.append(cmd)
    lines += re.findall(r"\| `(fairaudit check [^`]+)` \(([^)]*exit \d[^)]*)\)", text)
    lines = [x[0] if isinstance(x, tuple) else x for x in lines]
    cwd, out = Path("."), []
    for line in lines:
        if line in NOT_RUN:
            continue
        if line.startswith("pip install . && "):
            line = line.split("&& ", 1)[1]
            out.append(("readme:set-up", ".", line))
            words = shlex.split(line)
            every = " ".join(w for i, w in enumerate(words) if w != "--checks" and words[i - 1] != "--checks")
            out.append(("readme:set-up-every-check", ".", every))
            continue
        parts = [p.strip() for p in line.split("&&")]
        if all(p.startswith("cd ") for p in parts):
            for p in parts:
                cwd = Path(os.path.normpath(cwd / p[3:].strip()))
            continue
        out.append(("readme:" + re.sub(r"\W+", "-", line).strip("-")[:48], str(cwd), line))
    return out


def _exe() -> list[str]:
    script = Path(sys.executable).parent / "fairaudit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "fairaudit.cli"]


def run_one(root: Path, rel: str, line: str, timeout: float) -> tuple[float, float, float, int | None, str]:
    """(seconds, CPU seconds, peak MB, exit code or None on timeout, verdicts) of one
    command line. CPU seconds: user + system of the command and the worker processes it
    waited for (``wait4``), the figure that the machine's load does not inflate."""
    cwd = (root / rel).resolve()
    total, cpu, peak, code, verdicts = 0.0, 0.0, 0.0, 0, []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for part in [p.strip() for p in line.split("&&")]:
        if part.startswith("cd "):
            cwd = (cwd / part[3:].strip()).resolve()
            continue
        words = shlex.split(part)
        extra = {}
        while "=" in words[0] and not words[0].startswith("-"):
            k, v = words.pop(0).split("=", 1)
            extra[k] = v
        exe = _exe() if words[0] == "fairaudit" else [sys.executable, "-m", words[0]]
        t0 = time.perf_counter()
        proc = subprocess.Popen(exe + words[1:], cwd=cwd, env={**env, **extra}, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.02)
        total += time.perf_counter() - t0
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss / 1024)
        out = proc.stdout.read()
        proc.stdout.close()
        if timed_out:
            return total, cpu, peak, None, "timeout"
        code = os.waitstatus_to_exitcode(status)
        verdicts += [f"{cid}={v.lower()}" for v, cid in VERDICT_LINE.findall(out)]
    return total, cpu, peak, code, ",".join(verdicts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="run the commands whose id contains this")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--skip-readme", action="store_true")
    args = ap.parse_args(argv)
    cmds = default_audits() + ([] if args.skip_readme else readme_commands())
    cmds = [c for c in cmds if args.only in c[0]]
    print(f"# load average at start: {os.getloadavg()[0]:.1f}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(f"{'command':<58} {'seconds':>8} {'CPU s':>7} {'peak MB':>8} {'exit':>4}  verdicts")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        shutil.copytree(ROOT / "examples", root / "examples",
                        ignore=shutil.ignore_patterns("__pycache__", "*.html", "result.json"))
        for cid, rel, line in cmds:
            secs, cpu, peak, code, verdicts = run_one(root, rel, line, args.timeout)
            shown = f">{args.timeout:.0f}" if code is None else f"{secs:.1f}"
            print(f"{cid[:58]:<58} {shown:>8} {cpu:>7.1f} {peak:>8.0f} {'' if code is None else code:>4}  {verdicts}",
                  flush=True)
    print(f"# load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
