"""The hostile-allocator battery (issue 26, item 8): allocators written to reach across
the isolation — rewrite the outputs after the audit, signal or stop the audit process,
block validation, tamper with the watchdog's shared state, raise their memory limit,
leave orphans, patch fairaudit at import. Each is audited through the command line, as a
gate would run it, and the test asserts

- the audit's own exit code (the honest one, or 1 for an ``error`` verdict),
- a JSON result with the honest or an ``error`` verdict (never a forged pass),
- no process left behind — neither a descendant of this test process (it is the
  subreaper of what it starts, so an escaped double-fork would be re-parented here) nor
  any process carrying the run's token in its environment,
- outputs unchanged a second after the audit exited.

The allocators are in ``tests/allocators/hostile/``; README "Threat model" says what
isolated mode guarantees and what ``--in-process`` gives up. Each test audits through a
fresh ``fairaudit`` process (2-3 s unloaded, 10-15 s on the shared 2-core machine), so
three stay in the fast lane (signals, rewritten outputs, Ctrl-C) and the rest are marked
slow (run in the full suite).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fairaudit.run import containment

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "allocators" / "hostile"
POP = str(ROOT / "examples" / "data" / "population.csv")

pytestmark = pytest.mark.skipif(not containment.LINUX, reason="containment is Linux-only (README, Threat model)")


@pytest.fixture(scope="module", autouse=True)
def _subreaper():
    """This process adopts whatever escapes an audit, so escaped processes are found."""
    before = containment._get_subreaper()
    containment._prctl(containment._PR_SET_CHILD_SUBREAPER, 1)
    yield
    containment._prctl(containment._PR_SET_CHILD_SUBREAPER, before)


def _token_processes(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if f"HOSTILE_TOKEN={token}".encode() in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return [p for p in found if containment._exists(p)]


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _audit(tmp_path, name, *extra, env=None, timeout=120, checks="determinism", own_tmp=True):
    """Run the audit; return (process, result dict or None). Asserts containment."""
    token = uuid.uuid4().hex
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    out, html = tmp_path / "r.json", tmp_path / "report.html"
    full_env = {**os.environ, "HOSTILE_TOKEN": token, "HOSTILE_OUT": str(out), "TMPDIR": str(tmp), **(env or {})}
    mine_before = containment.descendants()
    p = subprocess.run([sys.executable, "-m", "fairaudit.cli", "check", str(HOSTILE / f"{name}.py"),
                        "--checks", checks, "--timeout", "1", "--json", str(out), "--html", str(html), *extra],
                       capture_output=True, text=True, cwd=tmp_path, env=full_env, timeout=timeout)
    at_exit = (_sha(out), _sha(html))
    time.sleep(1.0)
    assert (_sha(out), _sha(html)) == at_exit, "an output changed after the audit exited"
    assert _token_processes(token) == [], "a process the allocator started outlived the audit"
    left = containment.descendants() - mine_before
    containment.end_processes(left)
    assert not left, f"processes left behind: {left}"
    if own_tmp:
        assert not list(tmp.glob("fairaudit-*")), "a temporary folder was left behind"
    assert "Traceback" not in p.stderr, p.stderr
    d = json.loads(out.read_text()) if out.exists() else None
    return p, d


def _verdicts(d):
    return [c["verdict"] for c in d["checks"]]


ALL_SIGNALS = "SIGTERM,SIGKILL,SIGHUP,SIGUSR1,SIGALRM,SIGINT,SIGQUIT,SIGSTOP"


def test_signals_to_the_audit_from_calls_do_not_reach_it(tmp_path):
    """One signal per call (TERM, KILL, HUP, USR1, ALRM, INT, QUIT, then STOP), to the
    worker's parent and to every process running fairaudit: the audit runs on."""
    p, d = _audit(tmp_path, "signal_parent", env={"HOSTILE_SIGNAL": ALL_SIGNALS, "HOSTILE_WHEN": "call"})
    assert p.returncode == 0, p.stderr          # a random selection: the honest verdict is pass
    assert d is not None and _verdicts(d) == ["pass"]


@pytest.mark.slow
def test_signals_at_import_do_not_reach_the_audit(tmp_path):
    p, d = _audit(tmp_path, "signal_parent", env={"HOSTILE_SIGNAL": ALL_SIGNALS, "HOSTILE_WHEN": "import"})
    assert p.returncode == 0, p.stderr
    assert _verdicts(d) == ["pass"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", ALL_SIGNALS.split(","))
def test_each_signal_alone(tmp_path, sig):
    p, d = _audit(tmp_path, "signal_parent", env={"HOSTILE_SIGNAL": sig, "HOSTILE_WHEN": "call"})
    assert p.returncode == 0, p.stderr
    assert _verdicts(d) == ["pass"]


def test_outputs_cannot_be_rewritten_after_the_audit_exits(tmp_path):
    """A double-forked grandchild waits for the JSON and rewrites it as a pass: it is
    ended before the outputs are written (and the test checks them a second later)."""
    p, d = _audit(tmp_path, "rewrite_after_exit")
    assert p.returncode == 1
    assert _verdicts(d) == ["fail"]
    from fairaudit.outputs import integrity
    assert integrity(d) == "intact"


@pytest.mark.slow
def test_an_orphaned_sleep_does_not_outlive_the_audit(tmp_path):
    p, d = _audit(tmp_path, "orphan_sleep")
    assert p.returncode == 0 and _verdicts(d) == ["pass"]


@pytest.mark.slow
def test_a_blocking_array_conversion_is_timed_out(tmp_path):
    """Validation (np.asarray → __array__) runs inside the watched window."""
    t0 = time.monotonic()
    p, d = _audit(tmp_path, "blocking_array")
    assert p.returncode == 1 and _verdicts(d) == ["error"]
    assert "per-call timeout" in d["checks"][0]["message"]
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_zeroing_the_shared_call_state_does_not_stall_the_audit(tmp_path):
    """The watchdog keeps its own clock: the shared state is the worker's to write."""
    p, d = _audit(tmp_path, "state_tamper")
    assert p.returncode == 1 and _verdicts(d) == ["error"]
    assert "timeout" in d["checks"][0]["message"]


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="open (issue 26): the wire refuses a forged frame, but a partial frame is "
                                        "refused only after its 30 s read timeout and the task is sent again, so "
                                        "this audit does not end within the test's 60 s")
def test_a_huge_length_header_does_not_stall_the_audit(tmp_path):
    """The reply frames' header is capped and every read has a timeout (fairaudit.run.wire)."""
    p, d = _audit(tmp_path, "huge_header", timeout=60)
    assert p.returncode == 1 and _verdicts(d) == ["error"]


@pytest.mark.slow
def test_the_memory_limit_is_hard(tmp_path):
    """RLIMIT_AS is set soft and hard before the worker starts: raising it fails, and 1.5
    GiB cannot be had under --memory-limit 512M."""
    p, d = _audit(tmp_path, "rlimit_raise", "--memory-limit", "512M")
    assert p.returncode == 1 and _verdicts(d) == ["error"]
    assert "MemoryError" in d["checks"][0]["message"]


@pytest.mark.slow
def test_patching_fairaudit_at_import_cannot_make_a_pass(tmp_path):
    """The patch lives in the worker only; out-of-range indices do not become a pass."""
    p, d = _audit(tmp_path, "patch_at_import", "--data", POP, checks="determinism,selection_rates")
    assert p.returncode == 1
    assert "pass" not in _verdicts(d) and "error" in _verdicts(d)


@pytest.mark.slow
def test_os_exit_zero_is_an_error_in_isolated_mode(tmp_path):
    p, d = _audit(tmp_path, "os_exit_zero")
    assert p.returncode == 1 and _verdicts(d) == ["error"]
    assert "exited with code 0" in d["checks"][0]["message"]


@pytest.mark.slow
def test_in_process_mode_trusts_the_allocator_completely(tmp_path):
    """What README says --in-process gives up: the allocator can end the audit with exit
    status 0 and no result. The command warns before it starts."""
    p, d = _audit(tmp_path, "os_exit_zero", "--in-process", own_tmp=False)
    assert p.returncode == 0 and d is None
    assert "--in-process" in p.stderr and "trusts the allocator" in p.stderr


def _wait_for_sleep(token: str, seconds: float = 90) -> bool:
    """Until the allocator's `sleep 300` child runs (the audit is then drawing)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for pid in _token_processes(token):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"):
                    time.sleep(0.3)
                    return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130),
                                      pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_interrupting_an_audit_exits_conventionally_and_leaves_nothing(tmp_path, sig, code):
    """Ctrl-C (SIGINT to the process group) exits 130, SIGTERM 143: every process the
    audit started is ended and no temporary folder is left; no result is written."""
    token = uuid.uuid4().hex
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "HOSTILE_TOKEN": token, "TMPDIR": str(tmp)}
    p = subprocess.Popen([sys.executable, "-m", "fairaudit.cli", "check", str(HOSTILE / "slow_with_child.py"),
                          "--checks", "determinism", "--json", str(tmp_path / "r.json"), "--no-html"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        assert _wait_for_sleep(token), "the allocator never started"
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)          # as the terminal does
        else:
            p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert _token_processes(token) == []
    assert not list(tmp.glob("fairaudit-*"))
    assert not (tmp_path / "r.json").exists()
