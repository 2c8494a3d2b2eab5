"""Every command the README shows is run here, and what the README says it prints or exits
with is checked (issue 18 defect 6; the bar: "Every statement the README makes about what a
command prints or exits with is tested"). The README is parsed: a command in it that this
file does not know fails ``test_every_readme_command_is_known``, so a new one cannot go
untested. ``pip install``/``pytest`` are CI's own commands (``bash .ci/run``) and the wheel
test's (tests/test_wheel.py); the placeholder commands (``my_allocator.py``,
``people.csv``, ``my_package.module:allocate``) run on the README's own tour allocator and
the bundled population.
"""
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairaudit.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_json_schema import LIGHT  # noqa: E402  (small budgets shared with the schema test)

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SETUP = ("fairaudit check examples/allocators/broome_lottery.py --data examples/data/population.csv "
         "--checks broome,anonymity,selection_rates --html fairaudit-report.html")


def readme_commands() -> list[str]:
    """`fairaudit …` commands in bash blocks and in the table's "try it" column."""
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("fairaudit "):
                    cmds.append(part)
    for cell in re.findall(r"\| `(fairaudit check [^`]+)`", README):
        cmds.append(cell)
    return cmds


def _run(cmd: str, cwd: Path):
    args = shlex.split(cmd)[1:]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)


def _verdicts(path: Path) -> dict:
    return {c["id"]: c["verdict"] for c in json.loads(path.read_text())["checks"]}


def _tour_files(tmp: Path):
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "@fa.selector" in b)
    (tmp / "my_allocator.py").write_text(block)
    (tmp / "my_package").mkdir(exist_ok=True)
    (tmp / "my_package" / "__init__.py").write_text("")
    (tmp / "my_package" / "module.py").write_text(block)
    (tmp / "people.csv").write_text((ROOT / "examples" / "data" / "population.csv").read_text())


#: what the README says each command does: exit code, and verdicts it states (check → verdict)
EXPECTED = {
    SETUP: (0, {"broome": "pass", "anonymity": "pass", "selection_rates": "pass"}),
    "fairaudit compare examples/ci/baseline.json examples/ci/flattened_current.json": (1, {}),
    "fairaudit checks": (0, {}),
}


def test_every_readme_command_is_known():
    cmds = readme_commands()
    assert SETUP in cmds
    for c in cmds:
        assert (c in EXPECTED or c.startswith("fairaudit check ")), c


@pytest.mark.slow
def test_setup_command_and_every_applicable_check(tmp_path):
    """Set up: the Broome lottery passes broome, anonymity and selection_rates, exit 0.
    "Leave out --checks to run every applicable check: the lottery then also fails
    tv_stability (exit 1)" — and nothing else fails or errs."""
    r = _run(SETUP.replace("--html fairaudit-report.html", f"--html {tmp_path / 'r.html'} --json {tmp_path / 'a.json'}"),
             ROOT)
    assert r.exit_code == 0, r.output
    v = _verdicts(tmp_path / "a.json")
    assert all(v[c] == "pass" for c in ("broome", "anonymity", "selection_rates")), v
    assert (tmp_path / "r.html").exists()
    full = SETUP.replace(" --checks broome,anonymity,selection_rates", "").replace(
        "--html fairaudit-report.html", f"--html {tmp_path / 'f.html'} --json {tmp_path / 'f.json'}")
    r = _run(full, ROOT)
    assert r.exit_code == 1, r.output
    v = _verdicts(tmp_path / "f.json")
    assert v.pop("tv_stability") == "fail"
    assert set(v.values()) <= {"pass", "skipped"}, v


@pytest.mark.slow
def test_every_other_readme_command_runs_as_stated(tmp_path):
    """Every other command: the exit code the README states (compare: 1; `fairaudit checks`:
    0), and for audits an exit code of 0 or 1 with no check in error (the README states no
    verdict for them beyond what the table describes)."""
    _tour_files(tmp_path)
    for cmd in readme_commands():
        if cmd == SETUP:
            continue
        run_in = tmp_path if ("my_" in cmd or "people.csv" in cmd) else ROOT
        json_out = tmp_path / "out.json"
        full = cmd
        if cmd.startswith("fairaudit check ") and "--json" not in cmd:
            full = f"{cmd} --json {json_out}"
        elif "--json result.json" in cmd:
            full = cmd.replace("--json result.json", f"--json {json_out}")
        if cmd.startswith("fairaudit check ") and cmd not in EXPECTED:
            # the README states no verdict for these: small budgets (test_json_schema's), the point is that they
            # run as written and no check errs
            full = full.replace("--draws 50000", "") + " " + " ".join(shlex.quote(a) for a in LIGHT)
        sys.path.insert(0, str(tmp_path))
        try:
            r = _run(full, run_in)
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("my_package.module", None)
            sys.modules.pop("my_package", None)
        code, verdicts = EXPECTED.get(cmd, (None, {}))
        if code is not None:
            assert r.exit_code == code, (cmd, r.output[-2000:])
        else:
            assert r.exit_code in (0, 1), (cmd, r.output[-2000:])
            v = _verdicts(json_out)
            assert "error" not in v.values(), (cmd, v)
        for c, want in verdicts.items():
            assert _verdicts(json_out)[c] == want, (cmd, c)


def test_param_errors_exit_2_naming_the_parameter(tmp_path):
    """README: a value a parameter does not accept, or an unknown name, stops the audit
    before anything is drawn: exit 2, one line naming CHECK.PARAM, with the closest name
    for a typo."""
    base = "fairaudit check examples/allocators/broome_lottery.py --checks broome"
    for param, needle in (("broome.bins=ten", "broome.bins"), ("min_requirement.rule=bogus", "min_requirement.rule"),
                          ("broome.min_chance=2", "broome.min_chance"),
                          ("brome.min_gain=0.2", "did you mean `broome.min_gain`?")):
        assert f"--param {param}" in README or param == "min_requirement.rule=bogus" and "min_requirement.rule=bogus" in README
        r = _run(f"{base} --param {param}", ROOT)
        assert r.exit_code == 2, (param, r.output)
        assert needle in r.output, (param, r.output)
