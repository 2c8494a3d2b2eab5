"""Verdicts are a pure function of (target, data, config, seed): a slower or busier
machine must not change anything in the JSON but ``created`` (issue: anonymity's search
stopped on a wall-clock guard, so the same seed gave another search — or a Hypothesis
``FlakyFailure`` reported as an error — under load). Before the fix, the same
allocator with the guard at 0.5 s (standing in for a machine 60× slower) gave a search
that found nothing after 3 examples, where the idle run shrank a counterexample after 34."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ALLOC = HERE / "allocators"


def _audit(tmp_path, name, target, *args, env_extra=None):
    # each run in its own folder with the same file names (the replay command names the JSON)
    where = tmp_path / name
    where.mkdir()
    out = where / "result.json"
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-m", "fairaudit.cli", "check", str(target), "--json", "result.json",
           "--html", "report.html", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=where)
    assert p.returncode in (0, 1), p.stderr
    d = json.loads(out.read_text())
    d.pop("created")
    d.pop("command")
    return d


def _busy():
    """A second process keeping a core busy (a contended machine)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


@pytest.mark.slow
def test_anonymity_search_gives_the_same_json_on_a_slow_busy_machine(tmp_path):
    target = ALLOC / "half_top_slowable.py"
    idle = _audit(tmp_path, "idle", target, "--checks", "anonymity")
    busy = _busy()
    try:
        slow = _audit(tmp_path, "slow", target, "--checks", "anonymity",
                      env_extra={"FAIRAUDIT_TEST_SLOW_MS": "120"})
    finally:
        busy.kill()
    chk = idle["checks"][0]
    assert chk["verdict"] == "fail", chk["message"]
    assert chk["evidence"]["search"]["found"], chk["evidence"]["search"]
    assert slow == idle


@pytest.mark.slow      # 3–5 s; the full suite runs it
def test_components_combine_to_the_headline_verdict():
    """A check's named components (fairaudit.result.combine) give its verdict, and go into the JSON."""
    from fairaudit.engine import audit
    from fairaudit.result import combine
    ex = HERE.parent / "examples" / "allocators"
    res = audit(str(ex / "top_k.py"), checks=["anonymity"]).checks + \
        audit(str(ex / "uniform_lottery.py"), checks=["broome"]).checks
    for c in res:
        assert c.components, c.id
        assert combine(c.components) == c.verdict == "fail"
        d = c.to_dict()["components"]
        assert set(d) == set(c.components) and all(v["verdict"] in ("pass", "fail", "inconclusive") for v in d.values())
    res = audit(str(ex / "broome_lottery.py"), checks=["broome"])
    (b,) = res.checks
    assert combine(b.components) == b.verdict == "pass"
    assert any(s.refutation_only for s in b.components.values())


def test_budget_cut_is_recorded_and_is_never_an_error(monkeypatch):
    """--budget is the one time limit: when it stops sampling the JSON says so."""
    from fairaudit.engine import audit
    monkeypatch.setenv("FAIRAUDIT_TEST_SLOW_MS", "30")
    target = str(ALLOC / "half_top_slowable.py")
    (cut,) = audit(target, checks=["selection_rates"], data=str(HERE.parent / "examples" / "data" / "population.csv"),
                   budget=0.2).checks
    assert cut.budget_exhausted and cut.to_dict()["budget_exhausted"] is True
    assert cut.verdict in ("pass", "fail", "inconclusive"), cut.message
    monkeypatch.setenv("FAIRAUDIT_TEST_SLOW_MS", "0")
    (full,) = audit(target, checks=["selection_rates"],
                    data=str(HERE.parent / "examples" / "data" / "population.csv")).checks
    assert not full.budget_exhausted
    assert full.draws > cut.draws
