"""The run wing (issue 25.2) and what crosses its process boundary (issue 26.1, 26.3).

* ``--jobs`` is read in one place: 0, -1 and 2 give the same worker count for a file, a
  callable and a second allocator a check opens; the help text says what they do.
* one target-spec parser (:class:`fairaudit.run.spec.TargetSpec`);
* worker replies are data only (:mod:`fairaudit.run.wire`): a pickle written into the
  reply pipe by a hostile allocator is refused, never unpickled; the audit gives an
  ``error`` verdict, exit 1, and no code of the worker runs in the audit process;
* fresh state per audit: a stateful allocator audited twice in one process, and in two
  threads at once, gives the same JSON each time;
* the run wing has no import circle and imports no check, report or engine.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fairaudit as fa
from fairaudit.errors import TargetError
from fairaudit.run import wire
from fairaudit.run.spec import TargetSpec
from fairaudit.run.pools import worker_count

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
HOSTILE = Path(__file__).resolve().parent / "allocators" / "hostile"
POP = str(ROOT / "examples" / "data" / "population.csv")
CORES = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# --jobs
# ---------------------------------------------------------------------------

def _uniform(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)


@pytest.mark.parametrize("jobs, workers", [(0, CORES), (-1, CORES), (2, 2), (1, 1)])
def test_jobs_mean_the_same_for_a_file_a_callable_and_a_second_allocator(jobs, workers):
    from fairaudit.engine import AuditConfig, AuditContext, open_sampler
    assert worker_count(jobs) == workers
    config = AuditConfig(jobs=jobs)
    file_sampler = open_sampler(str(EX / "uniform_lottery.py"), config)     # a file, loaded only in workers
    ctx = AuditContext(config, target=file_sampler.target, sampler=file_sampler)
    second = ctx.sampler_for(str(EX / "top_k.py"))                          # a second allocator of a check
    call = fa.Sampler(fa.target_from_callable(_uniform, kind="selection"), 0, jobs=jobs, isolate=True)
    inproc = fa.Sampler(fa.target_from_callable(_uniform, kind="selection"), 0, jobs=jobs)
    try:
        got = {"file": file_sampler.pool.jobs, "second allocator": second.pool.jobs,
               "callable": call._ensure_pool().jobs, "in-process callable": inproc.jobs}
    finally:
        for s in (file_sampler, second, call):
            s.close()
    assert got == dict.fromkeys(got, workers), got


def test_jobs_help_says_what_the_values_do():
    from click.testing import CliRunner

    from fairaudit.cli import main
    text = " ".join(CliRunner().invoke(main, ["check", "--help"]).output.split())
    jobs = text[text.index("--jobs"):].split(" --")[0]
    assert "0 or -1 = one per core" in jobs, jobs
    assert "joblib" not in jobs


# ---------------------------------------------------------------------------
# TargetSpec
# ---------------------------------------------------------------------------

def test_one_target_spec_parser(tmp_path):
    assert TargetSpec.parse("a/top_k.py") == TargetSpec("a/top_k.py")
    assert TargetSpec.parse("a/top_k.py:pick") == TargetSpec("a/top_k.py", "pick")
    assert TargetSpec.parse("pkg.mod:pick") == TargetSpec("pkg.mod", "pick")
    assert TargetSpec.parse("m.joblib[threshold=0.3]") == TargetSpec("m.joblib", None, 0.3)
    s = TargetSpec.parse("credit.py:pipeline[threshold=0.5]")
    assert (s.location, s.function, s.threshold, s.base, s.name) == ("credit.py", "pipeline", 0.5,
                                                                     "credit.py:pipeline", "pipeline")
    assert str(s) == "credit.py:pipeline[threshold=0.5]" and TargetSpec.parse(str(s)) == s
    odd = tmp_path / "odd:name.py"                      # an existing file's ':' is part of its name
    odd.write_text("")
    assert TargetSpec.parse(str(odd)) == TargetSpec(str(odd))
    assert TargetSpec.parse("a.py").name == "a" and TargetSpec.parse("m.joblib").is_model_file
    with pytest.raises(TargetError, match="--threshold 'x' is not a number"):
        TargetSpec.parse("m.joblib[threshold=x]")


# ---------------------------------------------------------------------------
# The wire: data only
# ---------------------------------------------------------------------------

SECRET = b"s" * wire.SECRET_BYTES


def _pipe_with(data: bytes):
    r, w = os.pipe()
    os.write(w, data)
    return r, w


def test_replies_round_trip_as_data():
    outs = [np.arange(12, dtype=np.int64).reshape(3, 4), np.eye(3, 17, dtype=bool)]
    notes = {"warnings": [{"category": "RuntimeWarning", "message": "m", "where": "a.py:1", "count": 2}],
             "more": 0, "nan_outputs": 1}
    frame = wire.encode_reply(wire.Done(7, outs, 5, 0.25), SECRET, notes)
    r, w = _pipe_with(frame)
    try:
        reply, got_notes = wire.decode_reply(*wire.read_frame(r, SECRET))
    finally:
        os.close(r), os.close(w)
    assert isinstance(reply, wire.Done) and (reply.tid, reply.calls, reply.seconds) == (7, 5, 0.25)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(reply.outcomes, outs))
    big = wire.encode_reply(wire.Done(7, [np.ones((3, 8000), dtype=bool)], 5, 0.25), SECRET)
    assert len(big) < 3 * 8000 // 8 + 300             # booleans (decisions) travel packed, eight to a byte
    assert got_notes == notes


def test_a_pickle_a_wrong_secret_a_huge_header_or_a_stall_is_refused():
    import pickle
    import struct
    good = wire.encode_reply(wire.Resend(1), SECRET)
    cases = {
        "not a fairaudit reply": struct.pack("!i", 10) + pickle.dumps(("done", 1)),
        "secret": good[:4] + b"x" * wire.SECRET_BYTES + good[4 + wire.SECRET_BYTES:],
        "cap": good[:4 + wire.SECRET_BYTES] + struct.pack("<I", 2**31),
        "stopped sending": good[:-3],
    }
    for match, data in cases.items():
        r, w = _pipe_with(data)
        try:
            with pytest.raises(wire.WireError, match=match):
                wire.read_frame(r, SECRET, timeout=0.3)
        finally:
            os.close(r), os.close(w)
    bad_fields = [{"t": "done", "tid": "1", "calls": 0, "seconds": 0.0, "arrays": []},
                  {"t": "fail", "tid": 1, "failure": {"problem": 3}, "arrays": []},
                  {"t": "repro", "tid": 1, "result": {"differ": "yes"}, "arrays": []},
                  {"t": "exec", "arrays": []}]
    for header in bad_fields:
        with pytest.raises(wire.WireError):
            wire.decode_reply(header, [])


# ---------------------------------------------------------------------------
# Hostile allocators
# ---------------------------------------------------------------------------

def test_the_forged_pickle_would_run_code_if_unpickled(tmp_path):
    """The attack is real: unpickling what the allocator writes runs its code (here in a
    throw-away process), so the next test's clean marker means fairaudit never unpickled it."""
    marker = tmp_path / "ran"
    code = (f"import sys; sys.path.insert(0, {str(HOSTILE)!r}); import pickle, pipe_forgery; "
            f"pickle.loads(pipe_forgery.forged_pickle())")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "FAIRAUDIT_FORGERY_MARKER": str(marker)},
                   check=True, timeout=60)
    assert marker.exists()


def test_pipe_forgery_gets_an_error_and_nothing_reaches_the_audit(tmp_path):
    marker = tmp_path / "ran"
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "fairaudit.cli", "check", str(HOSTILE / "pipe_forgery.py"),
                        "--checks", "selection_rates", "--data", POP, "--json", str(out),
                        "--html", str(tmp_path / "r.html")],
                       capture_output=True, text=True, timeout=240, cwd=tmp_path,
                       env={**os.environ, "FAIRAUDIT_FORGERY_MARKER": str(marker)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert not marker.exists(), "code from the worker ran in the audit process"
    chk = json.loads(out.read_text())["checks"][0]
    assert chk["verdict"] in ("error", "fail"), chk
    if chk["verdict"] == "error":
        assert "cannot read" in chk["message"] and "nothing it sent was used" in chk["message"]
    assert "Traceback" not in p.stderr


def _audit_json(path, seed=0):
    r = fa.audit(str(path), checks=["selection_rates"], data=POP, seed=seed,
                 params={"selection_rates": {"max_draws": 256}})
    d = r.to_dict() if hasattr(r, "to_dict") else json.loads(r.to_json())
    d.pop("created", None)
    return json.dumps(d, sort_keys=True, default=str)


def test_a_stateful_allocator_gives_the_same_json_twice_and_in_two_threads():
    path = HOSTILE / "stateful.py"
    first = _audit_json(path)
    assert '"verdict": "pass"' in first or '"verdict": "inconclusive"' in first   # a fair lottery when fresh
    assert _audit_json(path) == first                      # the next audit in this process sees a fresh load
    got = [None, None]

    def run(i):
        got[i] = _audit_json(path)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert got == [first, first]


# ---------------------------------------------------------------------------
# The wing's imports
# ---------------------------------------------------------------------------

def _imports(path: Path, pkg: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def test_the_run_wing_has_no_import_circle_and_imports_no_check_report_or_engine():
    files = {f"fairaudit.run.{p.stem}": p for p in (ROOT / "fairaudit" / "run").glob("*.py") if p.stem != "__init__"}
    edges = {m: {t for t in _imports(p, "fairaudit.run") if t in files and t != m} for m, p in files.items()}
    for m, p in files.items():
        bad = [t for t in _imports(p, "fairaudit.run") if t.startswith(("fairaudit.checks", "fairaudit.report",
                                                                         "fairaudit.engine", "fairaudit.figures"))]
        assert not bad, f"{m} imports {bad}"

    def reach(a, seen):
        for b in edges[a]:
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen
    cycles = [m for m in files if m in reach(m, set())]
    assert not cycles, f"import circle through {cycles}"


def test_a_spare_worker_takes_the_audits_folder_and_environment(tmp_path, monkeypatch):
    """A spare worker was started before this audit, in another folder and environment:
    given its allocator, it works where the audit does (a relative path loads, the
    audit's environment variables are set)."""
    params = {"selection_rates": {"max_draws": 256}}
    fa.audit(str(EX / "uniform_lottery.py"), checks=["selection_rates"], data=POP, params=params)   # leaves spares
    (tmp_path / "env_lottery.py").write_text(
        "import os\nimport fairaudit as fa\nK = int(os.environ['RUN_WING_TEST_K'])\n\n"
        "@fa.selector\ndef allocate(scores, k, rng):\n    return rng.choice(len(scores), size=k, replace=False)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUN_WING_TEST_K", "3")
    r = fa.audit("env_lottery.py", checks=["selection_rates"], data=POP, params=params)
    assert r.checks[0].verdict in ("pass", "inconclusive"), r.checks[0].message
