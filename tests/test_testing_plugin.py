"""The pytest plugin and fairaudit.testing, exercised on a throwaway project with pytester.

The throwaway project has a population with two group columns and two allocators: a
uniform lottery (every group's selection rate equal, so ``selection_rates`` passes) and
deterministic top-k on scores that differ by group (one intersection is selected at
about a quarter of the top rate, so ``selection_rates`` fails).
"""
from __future__ import annotations

import json
import re
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

# pytester's in-process runs put sys.modules back as they found it after each run, so a
# module first imported inside one is imported afresh by the next; DuckDB's extension
# module aborts the interpreter when imported twice in one process (SIGABRT). Importing
# the engine (and with it DuckDB) here keeps it loaded across the runs, whatever order
# the tests run in (under pytest-xdist this file may be the first a worker runs).
import fairaudit.engine  # noqa: F401,E402

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
POPULATION = EXAMPLES / "data" / "population.csv"

ALLOCATORS = '''
import numpy as np
import fairaudit as fa


@fa.selector
def fair_lottery(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)


@fa.selector
def top_k(scores, k, rng):
    return np.argsort(-np.asarray(scores), kind="stable")[:k]
'''


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_allocators=ALLOCATORS)
    (pytester.path / "people.csv").write_text(POPULATION.read_text())
    pytester.syspathinsert()
    return pytester


def test_entry_point_registers_the_plugin():
    eps = [e for e in metadata.entry_points(group="pytest11") if e.value == "fairaudit.pytest_plugin"]
    assert eps, "fairaudit.pytest_plugin is not registered under the pytest11 entry point (reinstall: pip install -e .)"


def test_assert_fair_passes_for_fair_and_fails_for_unfair_allocator(project):
    project.makepyfile(test_alloc='''
        from fairaudit.testing import assert_fair
        from my_allocators import fair_lottery, top_k

        def test_fair():
            result = assert_fair(fair_lottery, checks=["selection_rates"], data="people.csv")
            assert result.checks[0].verdict == "pass"

        def test_unfair():
            assert_fair(top_k, checks=["selection_rates"], data="people.csv")
    ''')
    res = project.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(passed=1, failed=1)
    out = res.stdout.str()
    # the failure message carries verdict, statistic with estimate and interval, and the check's sentence
    assert "verdict FAIL" in out
    assert "statistic min_impact_ratio = 0.277, interval [0.184, 0.560] at confidence 0.95, tolerance 0.800" in out
    assert "Adverse impact: sex × age_band = F × 40_plus" in out
    assert "FairnessAssertionError" in out


def test_fixture_uses_command_line_options_and_writes_json(project, tmp_path):
    project.makepyfile(test_fix='''
        from my_allocators import fair_lottery

        def test_fixture(fairaudit):
            r = fairaudit.assert_fair(fair_lottery, checks=["selection_rates"], data="people.csv")
            assert r.config["seed"] == 7
            assert fairaudit.results == [r]
    ''')
    res = project.runpytest("-p", "no:cacheprovider", "--fairaudit-seed", "7", "--fairaudit-json", str(tmp_path / "out"),
                            "-m", "fairaudit")
    res.assert_outcomes(passed=1)
    files = sorted((tmp_path / "out").glob("*.json"))
    assert len(files) == 1 and '"seed": 7' in files[0].read_text()


def test_fixture_failure_has_the_verdict(project):
    project.makepyfile(test_fix_fail='''
        from my_allocators import top_k

        def test_unfair(fairaudit):
            fairaudit.assert_fair(top_k, checks=["selection_rates"], data="people.csv")
    ''')
    res = project.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1)
    assert "check 'selection_rates' (Selection rates and impact ratios): verdict FAIL" in res.stdout.str()


def test_parametrize_with_checks_expands_one_test_per_check(project):
    project.makepyfile(test_param='''
        from fairaudit.testing import parametrize_with_checks
        from my_allocators import fair_lottery, top_k

        @parametrize_with_checks([fair_lottery, top_k], checks=["selection_rates"], data="people.csv")
        def test_fairness(allocator, check):
            check(allocator)

        @parametrize_with_checks([fair_lottery], checks=["selection_rates"])   # no data: not applicable
        def test_without_data(allocator, check):
            check(allocator)
    ''')
    res = project.runpytest("-p", "no:cacheprovider", "-v", "-rs")
    res.assert_outcomes(passed=1, failed=1, skipped=1)
    out = res.stdout.str()
    assert "test_fairness[fair_lottery-selection_rates] PASSED" in out
    assert "test_fairness[top_k-selection_rates] FAILED" in out
    assert "no population data with groups" in out          # the skip reason is shown, not swallowed
    # the marker selects them
    res = project.runpytest("-p", "no:cacheprovider", "-m", "not fairaudit")
    res.assert_outcomes(deselected=3)


def test_parametrized_checks_use_the_command_line_options(project):
    project.makepyfile(test_param_opts='''
        from fairaudit.testing import parametrize_with_checks
        from my_allocators import fair_lottery

        @parametrize_with_checks([fair_lottery], checks=["selection_rates"], data="people.csv")
        def test_fairness(allocator, check):
            result = check(allocator)
            assert result.config["seed"] == 5 and result.config["draws"] == 3000
    ''')
    res = project.runpytest("-p", "no:cacheprovider", "--fairaudit-seed", "5", "--fairaudit-draws", "3000")
    res.assert_outcomes(passed=1)
    import importlib
    assert importlib.import_module("fairaudit.testing").SESSION_DEFAULTS == {}   # restored after the inner session


def test_unknown_check_is_a_clear_error():
    from fairaudit.testing import parametrize_with_checks
    with pytest.raises(ValueError, match="unknown fairaudit check"):
        parametrize_with_checks([lambda scores, k, rng: None], checks=["no_such_check"])


def test_inconclusive_fails_only_when_asked(tmp_path):
    """A lottery audited with too few draws to decide is inconclusive: passes by default,
    fails with fail_on="inconclusive" and says so."""
    import numpy as np
    import fairaudit as fa
    from fairaudit.testing import FairnessAssertionError, assert_fair

    @fa.selector
    def lottery(scores, k, rng):
        return rng.choice(len(scores), size=k, replace=False)

    r = assert_fair(lottery, checks=["selection_rates"], data=str(POPULATION), draws=20)
    assert r.checks[0].verdict == "inconclusive"
    with pytest.raises(FairnessAssertionError, match="verdict INCONCLUSIVE") as e:
        assert_fair(lottery, checks=["selection_rates"], data=str(POPULATION), draws=20, fail_on="inconclusive")
    assert e.value.result.checks[0].verdict == "inconclusive"
    assert np.isfinite(e.value.result.checks[0].statistic.estimate)


def test_failure_message_carries_counterexample_and_replay():
    from fairaudit.testing import format_failure
    c = {"id": "anonymity", "title": "Anonymity", "verdict": "fail", "draws": 512,
         "message": "Not anonymous: individual 0 is selected with chance 1.000 ...",
         "statistic": {"name": "max_chance_difference", "estimate": 1.0, "ci": [0.974, 1.0], "tolerance": 0.05,
                       "method": "newcombe", "violation": "above"},
         "evidence": {"counterexample": {"perm": [1, 0], "instance": {"n": 2, "scores": [0.5, 0.5], "k": 1}},
                      "replay_command": "python -c 'print(42)'"}}
    msg = format_failure(c, 0.95)
    assert msg.splitlines()[0] == "fairaudit check 'anonymity' (Anonymity): verdict FAIL"
    assert ("statistic max_chance_difference = 1.000, interval [0.974, 1.000] at confidence 0.95, "
            "tolerance 0.050 (a value above it is a violation); method: newcombe") in msg
    assert 'counterexample: {"perm": [1, 0], "instance": {"n": 2, "scores": [0.5, 0.5], "k": 1}}' in msg
    assert "replay: python -c 'print(42)'" in msg and "draws: 512" in msg


BROOME_PROJECT = '''
import numpy as np
import fairaudit as fa


@fa.selector
def broome_lottery(scores, k, rng, size=None):
    """Seed 000's Broome lottery, vectorised (Gumbel-top-k keeps pick order)."""
    c = np.asarray(scores, dtype=float)
    with np.errstate(divide="ignore"):
        keys = np.log(c)[None, :] + rng.gumbel(size=(size or 1, len(c)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    out = np.take_along_axis(part, np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1), axis=1)
    return out if size else out[0]


@fa.selector
def top_k(scores, k, rng):
    return np.argsort(-np.asarray(scores), kind="stable")[:k]
'''


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_broome_and_anonymity_as_in_the_issue(pytester):
    """The issue's own example, ``assert_fair(my_allocator, checks=["broome", "anonymity"])``,
    through ``parametrize_with_checks``: the Broome lottery passes both, deterministic
    top-k fails both, and each failure message carries the verdict, the estimate with its
    interval, and the (shrunk) counterexample."""
    pytester.makepyfile(lotteries=BROOME_PROJECT)
    pytester.syspathinsert()
    pytester.makepyfile(test_broome_anonymity='''
        from fairaudit.testing import parametrize_with_checks
        from lotteries import broome_lottery, top_k

        @parametrize_with_checks([broome_lottery, top_k], checks=["broome", "anonymity"])
        def test_fairness(allocator, check):
            check(allocator)
    ''')
    res = pytester.runpytest("-p", "no:cacheprovider", "-v")
    res.assert_outcomes(passed=2, failed=2)
    out = res.stdout.str()
    for cid in ("broome", "anonymity"):
        assert f"test_fairness[broome_lottery-{cid}] PASSED" in out
        assert f"test_fairness[top_k-{cid}] FAILED" in out
    assert "fairaudit check 'broome' (Broome-Fairness): verdict FAIL" in out
    assert "fairaudit check 'anonymity' (Anonymity): verdict FAIL" in out
    import re
    stats = re.findall(r"statistic (\w+) = ([\d.]+), interval \[([\d.]+), ([\d.]+)\] at confidence 0.95", out)
    assert {name for name, *_ in stats} >= {"max_chance_difference"} and len(stats) >= 2, stats
    for title in ("'broome' (Broome-Fairness)", "'anonymity' (Anonymity)"):
        block = out.split(f"fairaudit check {title}: verdict FAIL", 1)[1].split("replay:", 1)[0]
        assert re.search(r"^E?\s+counterexample: \{", block, re.M), block
    # anonymity's shrunk counterexample: two equal claims, the tie broken by position
    assert '"perm": [1, 0], "instance": {"n": 2, "scores": [0.5, 0.5], "k": 1}' in out


def test_failures_show_the_test_not_fairaudit_frames(project):
    """assert_fair, the fixture's assert_fair and the parametrised check hide their own
    frames (``__tracebackhide__``): the traceback ends at the user's line."""
    project.makepyfile(test_tb='''
        from fairaudit.testing import assert_fair, parametrize_with_checks
        from my_allocators import top_k

        def test_direct():
            assert_fair(top_k, checks=["selection_rates"], data="people.csv")

        def test_fixture(fairaudit):
            fairaudit.assert_fair(top_k, checks=["selection_rates"], data="people.csv")

        @parametrize_with_checks([top_k], checks=["selection_rates"], data="people.csv")
        def test_param(allocator, check):
            check(allocator)
    ''')
    res = project.runpytest("-p", "no:cacheprovider", "--tb=long")
    res.assert_outcomes(failed=3)
    out = res.stdout.str()
    frames = re.findall(r"^(\S+\.py):\d+: ", out, re.M)
    assert frames and all(Path(f).name == "test_tb.py" for f in frames), sorted(set(frames))
    assert "def assert_fair" not in out and "__tracebackhide__" not in out
    for line in ('assert_fair(top_k, checks=["selection_rates"], data="people.csv")', "check(allocator)"):
        assert line in out
    assert out.count("verdict FAIL") >= 3


def test_data_paths_are_relative_to_the_test_file(project):
    sub = project.path / "sub"
    sub.mkdir()
    (sub / "only_here.csv").write_text(POPULATION.read_text())
    (sub / "test_rel.py").write_text(textwrap.dedent('''
        from fairaudit.testing import assert_fair, parametrize_with_checks
        from my_allocators import fair_lottery

        def test_direct():
            r = assert_fair(fair_lottery, checks=["selection_rates"], data="only_here.csv", draws=2000)
            assert r.checks[0].verdict == "pass"

        @parametrize_with_checks([fair_lottery], checks=["selection_rates"], data="only_here.csv", draws=2000)
        def test_param(allocator, check):
            assert check(allocator).checks[0].verdict == "pass"
    '''))
    res = project.runpytest("-p", "no:cacheprovider", "-rs", str(sub))     # run from the project root
    res.assert_outcomes(passed=2)


def test_fairaudit_json_saves_assert_fair_and_parametrised_audits(project, tmp_path):
    project.makepyfile(test_saved='''
        from fairaudit.testing import assert_fair, parametrize_with_checks
        from my_allocators import fair_lottery

        def test_direct():
            assert_fair(fair_lottery, checks=["selection_rates"], data="people.csv", draws=2000)

        @parametrize_with_checks([fair_lottery], checks=["selection_rates", "broome"], data="people.csv", draws=600)
        def test_param(allocator, check):
            check(allocator)
    ''')
    out = tmp_path / "audits"
    res = project.runpytest("-p", "no:cacheprovider", "--fairaudit-json", str(out))
    res.assert_outcomes(passed=3)
    files = sorted(p.name for p in out.glob("*.json"))
    assert len(files) == 3, files
    assert any("test_direct" in f for f in files) and sum("test_param" in f for f in files) == 2
    ids = sorted(json.loads((out / f).read_text())["checks"][0]["id"] for f in files)
    assert ids == ["broome", "selection_rates", "selection_rates"]


def test_checks_for_another_kind_are_not_generated(project):
    project.makepyfile(test_kinds='''
        from fairaudit.testing import parametrize_with_checks
        from my_allocators import fair_lottery

        @parametrize_with_checks([fair_lottery])
        def test_all(allocator, check):
            check(allocator)
    ''')
    res = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    ids = re.findall(r"test_all\[fair_lottery-(\w+)\]", res.stdout.str())
    from fairaudit.check import discover
    registry = discover()
    assert ids and "selection_rates" in ids and "broome" in ids
    assert not [i for i in ids if "selection" not in registry[i].kinds], ids
    assert "multiaccuracy" not in ids and "min_requirement" not in ids and "ua_conformance" not in ids
