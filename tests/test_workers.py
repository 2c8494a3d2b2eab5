"""Isolated execution (issue 14): the audit process does not import the allocator; the
same draws in-process, isolated and for any --jobs; mutation of any argument detected;
the reproducibility warning only when outcomes change; the budget bounds a slow
allocator; callables from Python are sent to workers (or run in-process with a warning)."""
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.errors import AllocatorError, BudgetExhausted, TargetError
from fairaudit.run.sampler import Sampler
from fairaudit.run.workers import OutputLog, parse_memory

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
BAD = Path(__file__).resolve().parent / "allocators"
POP = str(ROOT / "examples" / "data" / "population.csv")
CLAIMS = np.linspace(0.05, 1.0, 20)


def inst(k=5, **kw):
    return fa.Instance("test pool", scores=CLAIMS.copy(), k=k, **kw)


def test_the_audit_process_never_imports_the_allocator(tmp_path):
    marker = tmp_path / "imported_by.txt"
    src = tmp_path / "spy.py"
    src.write_text("import os\nimport fairaudit as fa\n"
                   f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n\n"
                   "@fa.selector\ndef allocate(scores, k, rng):\n    return rng.choice(len(scores), size=k, replace=False)\n")
    before = set(sys.modules)
    res = fa.audit(str(src), checks=["selection_rates"], data=POP, draws=300)
    assert res.checks[0].verdict in ("pass", "fail", "inconclusive")
    assert res.target["kind"] == "selection" and len(res.target["sha256"]) == 64
    pids = {int(p) for p in marker.read_text().split()}
    assert pids and os.getpid() not in pids
    assert not [m for m in set(sys.modules) - before if m.startswith("fairaudit_target_")]


def test_same_draws_in_process_isolated_and_any_jobs():
    for name in ("broome_lottery", "uniform_lottery"):
        t = fa.load_target(str(EX / f"{name}.py"))
        ref = Sampler(t, seed=5, isolate=False).draw(inst(), 1100, "s", start=37)
        for kw in (dict(), dict(jobs=2), dict(jobs=2, task_size=256)):
            with Sampler(t, seed=5, isolate=True, **kw) as s:
                assert s.isolated
                assert np.array_equal(ref, s.draw(inst(), 1100, "s", start=37)), (name, kw)


@pytest.mark.slow
def test_slow_allocator_spreads_its_first_batch_over_the_workers(tmp_path):
    """Sequential sampling's first batch (256 draws) of a 10 ms allocator is split into
    tasks sized from the measured cost, so --jobs 2 starts the second worker."""
    src = tmp_path / "slow.py"
    src.write_text("import time\nimport fairaudit as fa\n\n@fa.selector\ndef allocate(scores, k, rng):\n"
                   "    t0 = time.perf_counter()\n    while time.perf_counter() - t0 < 0.01:\n        pass\n"
                   "    return rng.choice(len(scores), size=k, replace=False)\n")
    with Sampler.open(str(src), seed=0, jobs=2) as s:
        d = s.sample_until(inst(), "seq", lambda draws: False, max_draws=256)
        assert len(s.pool.workers) == 2
    ref = Sampler(fa.load_target(str(src)), seed=0, isolate=False).draw(inst(), 256, "seq")
    assert np.array_equal(d, ref)


@pytest.mark.parametrize("isolate", [True, False])
def test_mutating_any_argument_is_detected_on_every_call(isolate):
    groups = pd.DataFrame({"g": ["a", "b"] * 10})
    feats = pd.DataFrame({"x": np.arange(20.0)})

    def late_mutation(scores, k, rng, groups, features):
        if rng.random() < 0.05:           # only on some calls: checked on every one
            features.iloc[0, 0] = -1.0
        return rng.choice(len(scores), size=k, replace=False)

    t = fa.target_from_callable(late_mutation, kind="selection")
    i = inst(groups=groups, features=feats)
    with Sampler(t, seed=0, isolate=isolate) as s:
        with pytest.raises(AllocatorError, match="modified its argument 'features' in place") as ei:
            s.draw(i, 500, "m")
    assert ei.value.draw > 0 and ei.value.input_label == "test pool"
    assert feats.iloc[0, 0] == 0.0       # the check's own input is intact (restored in-process)


def test_global_random_state_warns_only_when_outcomes_change(tmp_path):
    harmless = tmp_path / "harmless.py"
    harmless.write_text("import numpy as np\nimport fairaudit as fa\n\n@fa.selector\ndef allocate(scores, k, rng):\n"
                        "    np.random.random() * 0\n    return rng.choice(len(scores), size=k, replace=False)\n")
    for isolate in (True, False):
        with Sampler(fa.load_target(str(harmless)), seed=0, isolate=isolate) as s:
            s.draw(inst(), 10, "s")
            assert s.warnings == []
        with Sampler(fa.load_target(str(BAD / "global_random.py")), seed=0, isolate=isolate) as s:
            s.draw(inst(), 10, "s")
            assert len(s.warnings) == 1 and "numpy's global random state" in s.warnings[0]


@pytest.mark.slow      # waits out a budget: ~18 s
def test_budget_stops_a_merely_slow_allocator(tmp_path):
    src = tmp_path / "slowish.py"
    src.write_text("import time\nimport fairaudit as fa\n\n@fa.selector\ndef allocate(scores, k, rng):\n"
                   "    time.sleep(0.02)\n    return rng.choice(len(scores), size=k, replace=False)\n")
    for isolate in (True, False):
        t0 = time.monotonic()
        with Sampler(fa.load_target(str(src)), seed=0, isolate=isolate, budget_seconds=3.0) as s:
            with pytest.raises(BudgetExhausted, match="budget"):
                s.draw(inst(), 5000, "b")               # 100 s of work
        assert time.monotonic() - t0 < 10
        with Sampler(fa.load_target(str(src)), seed=0, isolate=isolate, budget_seconds=3.0) as s:
            d = s.sample_until(inst(), "b", lambda draws: False, max_draws=5000)
        assert 0 < len(d) < 5000
        ref = Sampler(fa.load_target(str(src)), seed=0, isolate=False).draw(inst(), len(d), "b")
        assert np.array_equal(d, ref)       # a prefix of the same draws


def test_callables_are_cloudpickled_to_workers_or_run_in_process_with_a_warning():
    offset = 0

    def closure_select(scores, k, rng):          # not importable: sent by value
        return rng.choice(len(scores), size=k, replace=False) + offset

    r = fa.audit(closure_select, checks=["selection_rates"], data=POP, draws=300)
    assert r.checks[0].verdict != "error" and r.warnings == []
    lock = threading.Lock()

    def holds_a_lock(scores, k, rng):
        with lock:
            return rng.choice(len(scores), size=k, replace=False)

    r2 = fa.audit(holds_a_lock, checks=["selection_rates"], data=POP, draws=300)
    assert r2.checks[0].verdict != "error"
    assert len(r2.warnings) == 1 and "ran inside the audit's own process" in r2.warnings[0]
    r.to_dict().pop("created")
    a, b = r.to_dict(), r2.to_dict()
    assert a["checks"][0]["statistic"] == b["checks"][0]["statistic"]


def test_in_process_option_gives_the_same_result():
    kw = dict(checks=["selection_rates"], data=POP, draws=600, params={"selection_rates": {"threshold": 0.9}})
    a = fa.audit(str(EX / "broome_lottery.py"), **kw).to_dict()
    b = fa.audit(str(EX / "broome_lottery.py"), in_process=True, **kw).to_dict()
    a.pop("created"), b.pop("created")
    assert a == b


def test_unloadable_targets_are_target_errors():
    with pytest.raises(TargetError, match="SystemExit"):
        Sampler.open(str(BAD / "broken" / "import_sys_exit.py"))
    with pytest.raises(TargetError, match="SystemExit"):
        fa.load_target(str(BAD / "broken" / "import_sys_exit.py"))     # in-process too: no exit
    with pytest.raises(TargetError, match="several decorated allocators"):
        fa.audit(str(BAD / "broken" / "two_functions.py"), checks=["selection_rates"])


def test_memory_sizes_and_output_log():
    assert parse_memory("4G") == 4 * 2**30 and parse_memory("512M") == 512 * 2**20
    assert parse_memory("1.5GiB") == int(1.5 * 2**30) and parse_memory(0) is None and parse_memory("none") is None
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory("lots")
    log = OutputLog()
    log.add("stdout", "".join(f"line {i}\n" for i in range(25)) + "partial")
    out = log.take()
    assert out["stdout"][:2] == ["line 0", "line 1"] and len(out["stdout"]) == 20
    assert out["stdout_more_lines"] == 6 and "stderr" not in out
    assert log.take() is None


def test_more_inputs_than_a_worker_keeps():
    """Workers keep 8 inputs; the 9th evicts the oldest, which is sent again when needed."""
    t = fa.load_target(str(EX / "uniform_lottery.py"))
    insts = [fa.Instance(f"pool {i}", scores=np.linspace(0.1, 1.0, 10 + i), k=3) for i in range(12)]
    with Sampler(t, seed=1, isolate=True) as s:
        got = [s.draw(i, 20, "many") for i in insts + insts[:3]]
    ref = Sampler(t, seed=1, isolate=False)
    for i, g in zip(insts + insts[:3], got):
        assert np.array_equal(g, ref.draw(i, 20, "many"))


def test_function_of_a_file_imported_with_import_file_runs_in_workers():
    """``import_file`` registers the module under a name only this process knows; the
    worker imports the same file itself (cloudpickle would pickle it by that name)."""
    from fairaudit.run.load import import_file
    func = import_file(EX / "uniform_lottery.py").allocate
    r = fa.audit(func, checks=["selection_rates"], data=POP, draws=300)
    assert r.checks[0].verdict != "error", r.checks[0].message
    assert r.warnings == []


def test_closure_over_a_file_imported_with_import_file_runs_in_workers():
    """A wrapper that closes over an ``import_file`` module (as the validation studies'
    biased allocators do) is sent by value with that module's code: the workers cannot
    import the module by the name only this process registered."""
    from fairaudit.run.load import import_file
    mod = import_file(EX / "uniform_lottery.py")

    @fa.selector
    def wrapped(scores, k, rng, size=None):
        return mod.allocate(scores, k, rng, size=size)

    kw = dict(checks=["selection_rates"], data=POP, draws=300)
    r = fa.audit(wrapped, **kw)
    assert r.checks[0].verdict != "error", r.checks[0].message
    assert r.warnings == []
    ref = fa.audit(wrapped, in_process=True, **kw)
    assert r.checks[0].statistic == ref.checks[0].statistic


def test_many_small_ranges_go_to_workers_in_batches_with_the_same_draws():
    """draw_streams packs small ranges (one-draw episodes, several probes' streams) into
    batches, one round trip each: the draws are those of one draw() per range."""
    t = fa.load_target(str(EX / "uniform_lottery.py"))
    insts = [fa.Instance(f"episode {i}", scores=np.linspace(0.1, 1.0, 8 + i % 5), k=3) for i in range(60)]
    reqs = [(inst, f"ep/{i}", i % 3, 1 + i % 4) for i, inst in enumerate(insts)]
    with Sampler(t, seed=4, isolate=True, jobs=2) as s:
        got = s.draw_streams(reqs)
        assert s.draws_made == sum(r[3] for r in reqs)
        assert next(s.pool.tids) < len(reqs) // 2        # far fewer round trips than ranges
    ref = Sampler(t, seed=4, isolate=False)
    for (inst, stream, start, n), g in zip(reqs, got):
        assert np.array_equal(g, ref.draw(inst, n, stream, start))


def test_a_failure_inside_a_batch_names_the_first_failing_input(tmp_path):
    p = tmp_path / "fails_on_big_pools.py"
    p.write_text("import fairaudit as fa\n@fa.selector\ndef allocate(scores, k, rng):\n"
                 "    if len(scores) >= 12:\n        raise ValueError(f'pool of {len(scores)}')\n"
                 "    return rng.choice(len(scores), size=k, replace=False)\n")
    insts = [fa.Instance(f"pool {n}", scores=np.linspace(0.1, 1.0, n), k=2) for n in (8, 9, 13, 10, 12)]
    with Sampler.open(str(p), seed=1, jobs=2) as s:
        with pytest.raises(AllocatorError) as e:
            s.draw_streams([(inst, f"s/{i}", 0, 3) for i, inst in enumerate(insts)])
    assert e.value.input_label == "pool 13" and e.value.stream == "s/2" and "pool of 13" in str(e.value)
