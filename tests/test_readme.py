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


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.html", "result.json"))
    cwd = tmp_path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran, results = [], []
    for line, comment in readme_commands():
        if line in NOT_RUN:
            continue
        if line.startswith("pip install . && "):       # the Set up command, after its install
            line, comment = line.split("&& ", 1)[1], "exit 0; broome=pass, anonymity=pass, selection_rates=pass"
            assert "so it exits 0" in README and "passes Broome-Fairness, anonymity and the four-fifths rule" in README
            # "Leave out --checks to run every applicable check: the lottery then also fails tv_stability (exit 1)"
            assert "also fails `tv_stability`\n(exit 1)" in README
            every = " ".join(w for i, w in enumerate(shlex.split(line)) if w != "--checks" and
                             shlex.split(line)[i - 1] != "--checks")
            line = f"{line} && {every}"
        for part in [p.strip() for p in line.split("&&")]:
            if part.startswith("cd "):
                cwd = (cwd / part[3:].strip()).resolve()
                continue
            words = shlex.split(part)
            extra = {}
            while "=" in words[0] and not words[0].startswith("-"):
                k, v = words.pop(0).split("=", 1)
                extra[k] = v
            saved = None
            if words[:2] == ["fairaudit", "check"] and "--json" not in words:
                # keep each audit's result: its headlines and findings must agree (see below)
                saved = tmp_path / f"readme-result-{len(ran)}.json"
                words = words + ["--json", str(saved)]
            run = subprocess.run(_exe(words[0]) + words[1:], cwd=cwd, env={**env, **extra}, capture_output=True,
                                 text=True, timeout=900)
            code, verdicts, passed = expectation(comment)
            if "--checks" not in words and words[:2] == ["fairaudit", "check"]:
                code, verdicts, passed = 1, {"tv_stability": "fail"}, None
            said = f"`{part}` (README: {comment}) in {cwd}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
            assert run.returncode == code, said
            got = {cid: v.lower() for v, cid in VERDICT_LINE.findall(run.stdout)}
            assert all(got.get(c) == v for c, v in verdicts.items()), (got, said)
            if passed:
                assert passed in run.stdout, said
            if saved is not None:
                results.append(loads(saved.read_text()))
            ran.append(part)
    assert cwd == tmp_path, "the README's cd commands should return to the repository root"
    # every check the README runs: the headline's figures are the statistic's and the finding
    # quotes no interval that reads as the statistic but is not (issue 19)
    seen = set()
    for d in results:
        for c in d["checks"]:
            assert_headline_agrees(c, headline(c, float(d["config"]["confidence"])))
            assert not finding_conflicts(c), finding_conflicts(c)
            seen.add(c["id"])
    assert len(seen) >= 11, sorted(seen)
    assert any(r.startswith("fairaudit compare") for r in ran) and any("my_package.module:allocate" in r for r in ran)
