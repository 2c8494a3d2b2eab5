"""Every command README.md shows runs as written, and does what the README says of it
(issue 19): the exit code and the verdicts stated in its comment (``# exit 1;
tv_stability=fail``), for the commands in its ``bash`` blocks and in the table's "try it"
column, from a copy of the repository's examples so that nothing is written into the tree.

Left out, and said so here: creating the venv and `pip install .` (tests/test_wheel.py
builds and installs the wheel into a fresh venv and runs the Set up command from it), and
the test suite's own commands (`pytest`, `pytest -m "not slow"`), which are this suite.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fairaudit.headline import headline
from fairaudit.result import loads
from test_report_readers import assert_headline_agrees, finding_conflicts

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VERDICT_LINE = re.compile(r"^(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\s+(\S+)", re.M)
NOT_RUN = {'python3 -m venv .venv && . .venv/bin/activate', 'pip install -e ".[test]" && pytest', 'pytest -m "not slow"',
           # "Audit on a cluster" needs a running Dask cluster; tests/test_dask.py runs the same audit on a
           # LocalCluster and checks that its JSON equals the local run's
           'dask scheduler', 'dask worker tcp://HOST:8786 --nthreads 1',
           'fairaudit check my_allocator.py --data people.csv --scheduler tcp://HOST:8786'}


def readme_commands() -> list[tuple[str, str]]:
    """(command line, expectation comment) in the README's order: the bash blocks' lines
    and the table's "try it" commands (their expectation follows in the cell)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)\n```", README, re.S):
        for line in block.splitlines():
            cmd, _, comment = line.partition("#")
            if cmd.strip():
                out.append((cmd.strip(), comment.strip()))
    for cmd, comment in re.findall(r"\| `(fairaudit check [^`]+)` \(([^)]*exit \d[^)]*)\)", README):
        out.append((cmd, comment))
    return out


def expectation(comment: str) -> tuple[int | None, dict, str | None]:
    m = re.search(r"\bexits? (\d)", comment)
    code = int(m.group(1)) if m else None
    verdicts = dict(re.findall(r"(\w+)=(pass|fail|error|inconclusive|skipped)", comment))
    passed = re.search(r"(\d+ passed)", comment)
    return code, verdicts, passed.group(1) if passed else None


def _exe(name: str) -> list[str]:
    if name == "fairaudit":
        script = Path(sys.executable).parent / "fairaudit"
        return [str(script)] if script.is_file() else [sys.executable, "-m", "fairaudit.cli"]
    if name == "pytest":
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    raise AssertionError(f"README command starts with {name!r}; teach tests/test_readme.py to run it")


def test_every_readme_command_has_a_stated_outcome():
    cmds = readme_commands()
    assert len(cmds) >= 15
    for cmd, comment in cmds:
        if cmd in NOT_RUN or cmd.startswith("pip install . && fairaudit check") or cmd.startswith("cd "):
            continue
        if cmd.startswith("fairaudit check") or cmd.startswith("PYTHONPATH") or "pytest" in cmd or \
                cmd.startswith(("fairaudit compare", "fairaudit report", "fairaudit checks")):
            assert expectation(comment)[0] is not None, f"README states no exit code for: {cmd}"


def readme_runs() -> list[tuple[str, str, str, str]]:
    """Each command the README shows, as ``(id, folder relative to the repository, command,
    expectation)``: the folder is where the README's ``cd`` lines leave it. The Set up
    command is run after its install, and again without ``--checks`` (what the README says
    of that); the commands not run here (``NOT_RUN``) are left out."""
    cwd, out = Path("."), []
    for line, comment in readme_commands():
        if line in NOT_RUN:
            continue
        if line.startswith("pip install . && "):       # the Set up command, after its install
            line = line.split("&& ", 1)[1]
            out.append(("set-up", ".", line, "exit 0; broome=pass, anonymity=pass, selection_rates=pass"))
            words = shlex.split(line)
            every = " ".join(w for i, w in enumerate(words) if w != "--checks" and words[i - 1] != "--checks")
            out.append(("set-up-every-check", ".", every, "exit 1; tv_stability=fail"))
            continue
        parts = [p.strip() for p in line.split("&&")]
        if all(p.startswith("cd ") for p in parts):
            for p in parts:
                cwd = Path(os.path.normpath(cwd / p[3:].strip()))
            continue
        out.append((re.sub(r"\W+", "-", line).strip("-")[:48], str(cwd), line, comment))
    assert cwd == Path("."), "the README's cd commands should return to the repository root"
    return out


RUNS = readme_runs()


def _writer_of(path: Path, earlier) -> tuple | None:
    """The earlier README command whose ``--json`` (or ``--record``: a service's recording)
    writes ``path`` (a command that reads a file another command wrote runs after it, in the
    same copy)."""
    for run in earlier:
        words = shlex.split(run[2])
        for opt in ("--json", "--record"):
            if opt in words and Path(os.path.normpath(Path(run[1]) / words[words.index(opt) + 1])) == path:
                return run
    return None


#: background processes a README line started (`... &`: the example service), stopped by the test
_BACKGROUND: list = []


def _start_background(words: list[str], cwd: Path, env: dict, said: str) -> None:
    """A README line ending in `&` (the example service): started, awaited until it answers
    on $EXAMPLE_SERVICE_PORT, left running for the lines after it; the test stops it."""
    import time
    import urllib.request
    assert words[0] == "python", f"teach tests/test_readme.py to start {words[0]!r} in the background"
    proc = subprocess.Popen([sys.executable, *words[1:]], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _BACKGROUND.append(proc)
    end = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"{said}: it exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{env['EXAMPLE_SERVICE_PORT']}/stats", timeout=2):
                return
        except OSError:
            assert time.monotonic() < end, f"{said}: not answering after 60 s"
            time.sleep(0.2)


def _free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run_line(root: Path, rel: str, line: str, comment: str, env: dict) -> None:
    cwd = (root / rel).resolve()
    for part in [p.strip() for p in line.split("&&")]:
        if part.startswith("cd "):
            cwd = (cwd / part[3:].strip()).resolve()
            continue
        if part.endswith("&"):
            _start_background(shlex.split(part[:-1]), cwd, env, f"`{part}` (README: {comment})")
            continue
        words = shlex.split(part)
        extra = {}
        while "=" in words[0] and not words[0].startswith("-"):
            k, v = words.pop(0).split("=", 1)
            extra[k] = v
        saved = None
        if words[:2] == ["fairaudit", "check"] and "--json" not in words:
            # keep each audit's result: its headlines and findings must agree (below)
            saved = root / f"readme-result-{len(list(root.glob('readme-result-*.json')))}.json"
            words = words + ["--json", str(saved)]
        run = subprocess.run(_exe(words[0]) + words[1:], cwd=cwd, env={**env, **extra}, capture_output=True,
                             text=True, timeout=900)
        code, verdicts, passed = expectation(comment)
        said = f"`{part}` (README: {comment}) in {cwd}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
        assert run.returncode == code, said
        got = {cid: v.lower() for v, cid in VERDICT_LINE.findall(run.stdout)}
        assert all(got.get(c) == v for c, v in verdicts.items()), (got, said)
        if passed:
            assert passed in run.stdout, said
        if saved is not None:
            # every check the README runs: the headline's figures are the statistic's and the
            # finding quotes no interval that reads as the statistic but is not (issue 19)
            d = loads(saved.read_text())
            for c in d["checks"]:
                assert_headline_agrees(c, headline(c, float(d["config"]["confidence"])))
                assert not finding_conflicts(c), (part, finding_conflicts(c))
    assert cwd == (root / rel).resolve(), f"`{line}` should end in the folder it started from"


def test_the_readme_states_what_its_set_up_command_does():
    assert "so it exits 0" in README and "passes Broome-Fairness, anonymity and the four-fifths rule" in README
    # "Leave out --checks to run every applicable check: the lottery then also fails tv_stability (exit 1)"
    assert "also fails `tv_stability`\n(exit 1)" in README
    lines = [r[2] for r in RUNS]
    assert any(r.startswith("fairaudit compare") for r in lines) and any("my_package.module:allocate" in r for r in lines)
    assert len(RUNS) >= 15
    # the README's audits cover most checks (each has its headline-agreement test above)
    named = {c for r in RUNS for w, c in zip(shlex.split(r[2]), shlex.split(r[2])[1:]) if w == "--checks"
             for c in c.split(",")}
    assert len(named) >= 11, sorted(named)


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=[r[0] for r in RUNS])
def test_every_readme_command_runs_as_written(run, tmp_path):
    """One README command (after the one whose output it reads, if any), in a fresh copy
    of the examples: the exit code and verdicts it states."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.html", "result.json"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["EXAMPLE_SERVICE_PORT"] = str(_free_port())       # the example service's port, for its lines only
    before = []
    words = shlex.split(run[2])
    if "examples/service/" in run[2] and not run[2].endswith("&"):     # it audits the example service: start it
        before += [r for r in RUNS[:RUNS.index(run)] if r[2].endswith("&") and "examples/service/" in r[2]]
    for i, word in enumerate(words):
        path = Path(os.path.normpath(Path(run[1]) / word))
        if word.endswith((".json", ".jsonl")) and words[i - 1] not in ("--json", "--record") \
                and not (tmp_path / path).exists():
            writer = _writer_of(path, RUNS[:RUNS.index(run)])
            assert writer is not None, f"`{run[2]}` reads {word}, which no earlier README command writes"
            before.append(writer)
    try:
        for rel, line, comment in [(r[1], r[2], r[3]) for r in before] + [(run[1], run[2], run[3])]:
            _run_line(tmp_path, rel, line, comment, env)
    finally:
        while _BACKGROUND:
            proc = _BACKGROUND.pop()
            proc.terminate()
            proc.wait(30)
