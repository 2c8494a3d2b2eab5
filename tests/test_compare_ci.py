"""The GitHub Actions example (examples/ci/fairness-audit.yml): valid YAML, only actions
that exist, the steps the CI gate needs, and fairaudit command lines that the CLI accepts."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import click
import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "fairness-audit.yml"
#: the actions the workflow may use, with the major versions that exist
REAL_ACTIONS = {"actions/checkout": {"v3", "v4", "v5"}, "actions/setup-python": {"v4", "v5", "v6"},
                "actions/upload-artifact": {"v4", "v5"}}


@pytest.fixture(scope="module")
def wf() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps(wf):
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def test_parses_and_triggers_on_pull_requests(wf):
    assert isinstance(wf, dict) and wf["name"]
    on = wf.get("on", wf.get(True))   # YAML 1.1 reads the bare key `on` as true
    assert "pull_request" in on
    for name, job in wf["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        for s in job["steps"]:
            assert ("uses" in s) != ("run" in s), f"a step needs exactly one of uses/run: {s}"


def test_uses_only_real_actions(wf):
    used = [s["uses"] for s in _steps(wf) if "uses" in s]
    assert used
    for u in used:
        name, _, ref = u.partition("@")
        assert name in REAL_ACTIONS, f"{u}: not one of {sorted(REAL_ACTIONS)}"
        assert ref in REAL_ACTIONS[name], f"{u}: no such version (expected one of {sorted(REAL_ACTIONS[name])})"
    assert {u.partition("@")[0] for u in used} == set(REAL_ACTIONS)


def test_audits_uploads_and_gates(wf):
    steps = _steps(wf)
    runs = [s.get("run", "") for s in steps]
    audit = next(s for s in steps if "fairaudit check" in s.get("run", ""))
    gate = next(s for s in steps if "fairaudit compare" in s.get("run", ""))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    # the audit may fail without stopping the job; the gate decides; the report is uploaded anyway
    assert audit.get("continue-on-error") is True
    assert not gate.get("continue-on-error") and steps.index(gate) > steps.index(audit)
    assert upload.get("if") == "always()" and "fairaudit-report.html" in upload["with"]["path"]
    assert any("pip install" in r for r in runs)
    env = wf["env"]
    for key in ("ALLOCATOR", "CONFIG", "BASELINE"):
        assert (ROOT / env[key]).is_file(), f"{key}={env[key]} does not exist in the repository"


def test_fairaudit_command_lines_are_accepted_by_the_cli(wf):
    """Each `fairaudit ...` command of the workflow, with its env vars substituted, parses
    against the real click commands (options exist, arguments complete) — without running."""
    from fairaudit.cli import main
    env = {**wf.get("env", {})}
    seen = 0
    for s in _steps(wf):
        for line in re.split(r"\n(?!\s)", s.get("run", "")):
            line = " ".join(line.split())
            if not line.startswith("fairaudit "):
                continue
            args = shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), line))[1:]
            sub = main.get_command(click.Context(main), args[0])
            assert sub is not None, f"unknown subcommand in {line!r}"
            with click.Context(main) as parent:
                sub.make_context(args[0], args[1:], parent=parent)   # raises on an unknown option
            seen += 1
    assert seen == 2


def test_demo_script_and_config_are_consistent():
    script = (ROOT / "examples" / "ci" / "regression_demo.sh").read_text()
    assert os.access(ROOT / "examples" / "ci" / "regression_demo.sh", os.X_OK)
    assert "examples/ci/fairaudit.toml" in script and "fairaudit compare examples/ci/baseline.json" in script
    import json
    import tomllib
    cfg = tomllib.loads((ROOT / "examples" / "ci" / "fairaudit.toml").read_text())["tool"]["fairaudit"]
    base = json.loads((ROOT / "examples" / "ci" / "baseline.json").read_text())
    assert base["config"]["seed"] == cfg["seed"] and base["config"]["confidence"] == cfg["confidence"]
    assert base["config"]["params"] == cfg["params"]
