"""Typed, validated check parameters (issue 13, item 5) and --require.

A typo in a check id or a parameter name, an unparseable value (``bins=ten``), a value
outside a declared choice (``rule=bogus``) or range is refused — exit 2 on the command
line, :class:`ParamError` from Python — with one line naming ``CHECK.PARAM``, what was
given and what is accepted, *before any allocator call*: each test audits an allocator
that records every call in a file (or a counter) and asserts it was never called.
"""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import fairaudit as fa
from fairaudit.check import Param, discover
from fairaudit.cli import main
from fairaudit.errors import FairauditError, ParamError, UsageError
from fairaudit.testing import assert_fair, parametrize_with_checks

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
POP = str(ROOT / "examples" / "data" / "population.csv")

COUNTING = '''
import numpy as np
import fairaudit as fa
CALLS = {path!r}

@fa.selector(k=2)
def allocate(scores, k, rng):
    with open(CALLS, "a") as f:
        f.write("call\\n")
    return np.argsort(-np.asarray(scores))[:k]
'''

# (how the bad setting is written: check id, parameter, value) → fragments of the one-line message
CASES = {
    "typo in check id": (("brome", "min_gain", 0.2),
                         ["unknown check 'brome'", "brome.min_gain", "did you mean `broome.min_gain`?"]),
    "typo in parameter name": (("broome", "min_gian", 0.2),
                               ["unknown parameter broome.min_gian", "did you mean `broome.min_gain`?",
                                "broome takes bins, instances, max_draws, min_chance, min_gain"]),
    "unparseable value": (("broome", "bins", "ten"),
                          ["invalid value for broome.bins", "got 'ten'", "expected an integer ≥ 2"]),
    "value not among the choices": (("min_requirement", "rule", "bogus"),
                                    ["invalid value for min_requirement.rule", "got 'bogus'",
                                     "expected one of random, proportional, maxmin, given"]),
    "out of range": (("broome", "min_chance", 2),
                     ["invalid value for broome.min_chance", "got 2", "expected a number in [0, 1]"]),
}


@pytest.fixture
def counting(tmp_path):
    """An allocator file that appends a line to ``calls.txt`` on every call; (path, calls file)."""
    calls = tmp_path / "calls.txt"
    f = tmp_path / "counting.py"
    f.write_text(COUNTING.format(path=str(calls)))
    return f, calls


def _cli(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)


def _one_line_error(res) -> str:
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("fairaudit: error: ")
    return lines[0]


def _toml_value(v):
    return json.dumps(v)


@pytest.mark.parametrize("case", list(CASES))
def test_cli_param_refused_before_any_draw(case, counting, tmp_path):
    (cid, name, value), fragments = CASES[case]
    target, calls = counting
    res = _cli(["check", str(target), "--checks", "broome", "--json", "r.json", "--draws", "50",
                "--param", f"{cid}.{name}={value}"], tmp_path)
    assert res.exit_code == 2, res.output
    line = _one_line_error(res)
    for frag in fragments:
        assert frag in line
    assert line.endswith("(set by --param)")
    assert not calls.exists(), "the allocator was called before the parameters were checked"
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "fairaudit-report.html").exists()


@pytest.mark.parametrize("where", ["--config", "pyproject.toml"])
@pytest.mark.parametrize("case", list(CASES))
def test_config_param_refused_before_any_draw(case, where, counting, tmp_path):
    (cid, name, value), fragments = CASES[case]
    target, calls = counting
    table = f"[tool.fairaudit.params.{cid}]\n{name} = {_toml_value(value)}\n"
    if where == "--config":
        (tmp_path / "audit.toml").write_text(table)
        extra = ["--config", "audit.toml"]
        origin = "(set by [tool.fairaudit] in audit.toml:{})"
        lines = (1, 2)        # the [params.CHECK] header for a check typo, else the NAME = VALUE line
    else:
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n" + table)
        extra = []
        origin = "(set by [tool.fairaudit] in pyproject.toml:{})"
        lines = (3, 4)
    res = _cli(["check", str(target), "--checks", "broome", "--draws", "50", *extra], tmp_path)
    assert res.exit_code == 2, res.output
    line = _one_line_error(res)
    for frag in fragments:
        assert frag in line
    assert line.endswith(origin.format(lines[0] if case == "typo in check id" else lines[1])), line
    assert not calls.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_python_api_param_refused_before_any_draw(case):
    (cid, name, value), fragments = CASES[case]
    calls = []

    @fa.selector(k=2)
    def allocate(scores, k, rng):
        calls.append(1)
        return list(range(k))

    for run in (lambda: fa.audit(allocate, checks=["broome"], draws=50, params={cid: {name: value}}),
                lambda: assert_fair(allocate, checks=["broome"], draws=50, params={cid: {name: value}})):
        with pytest.raises(ParamError) as e:
            run()
        assert isinstance(e.value, UsageError) and isinstance(e.value, FairauditError)
        msg = str(e.value)
        assert "\n" not in msg
        for frag in fragments:
            assert frag in msg
        assert (e.value.check, e.value.name) == (cid, None if case == "typo in check id" else name)
    assert calls == []


def test_parametrize_with_checks_refuses_a_param_typo_at_collection():
    with pytest.raises(ParamError, match=r"did you mean `broome.min_gain`\?"):
        parametrize_with_checks([str(EX / "top_k.py")], checks=["broome"], params={"broome": {"min_gian": 0.2}})


def test_flat_params_mapping_gets_a_hint():
    with pytest.raises(ParamError, match=r"params maps a check id to its parameters.*`anonymity.max_draws`"):
        fa.audit(str(EX / "top_k.py"), checks=["broome"], params={"max_draws": 100})


def test_check_id_typo_in_checks_suggests(counting, tmp_path):
    target, calls = counting
    res = _cli(["check", str(target), "--checks", "brome"], tmp_path)
    assert res.exit_code == 2
    assert "unknown check(s): brome; did you mean `broome`?" in _one_line_error(res)
    assert not calls.exists()


def test_values_are_parsed_by_declared_type(tmp_path):
    """``bins=10`` from --param, ``"10"`` from a TOML string and ``10.0`` from Python all
    give the integer 10, recorded as such in the JSON; booleans accept true/false/yes/no."""
    (tmp_path / "a.toml").write_text('[tool.fairaudit.params.broome]\nbins = "10"\nstop_early = "no"\n'
                                     '[tool.fairaudit.params.selection_rates]\nthreshold = 1\n')
    res = _cli(["check", str(EX / "top_k.py"), "--checks", "selection_rates", "--data", POP, "--draws", "64",
                "--config", "a.toml", "--json", "r.json", "--param", "selection_rates.max_draws=64"], tmp_path)
    assert res.exit_code in (0, 1), res.output
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["config"]["params"] == {"broome": {"bins": 10, "stop_early": False},
                                     "selection_rates": {"threshold": 1.0, "max_draws": 64}}
    assert d["checks"][0]["params"]["threshold"] == 1.0 and isinstance(d["checks"][0]["params"]["max_draws"], int)
    r = fa.audit(str(EX / "top_k.py"), checks=["selection_rates"], data=POP, draws=64,
                 params={"selection_rates": {"max_draws": 64.0, "depth": "1"}})
    assert r.checks[0].params["max_draws"] == 64 and r.checks[0].params["depth"] == 1


def test_old_behaviour_error_verdict_is_gone(tmp_path):
    """Before: ``bins=ten`` ran the audit and gave an ``error`` verdict blaming fairaudit."""
    res = _cli(["check", str(EX / "top_k.py"), "--checks", "broome", "--param", "broome.bins=ten"], tmp_path)
    assert res.exit_code == 2 and "a fairaudit bug" not in res.output


def test_every_declared_default_is_accepted_by_its_own_param():
    registry = discover()
    assert registry
    for cid, cls in registry.items():
        for name, p in cls.params.items():
            assert isinstance(p, Param), (cid, name)
            v = p.coerce(p.default)
            assert v == p.default and p.coerce(v) == v, (cid, name)
            assert p.describe(), (cid, name)


@pytest.mark.parametrize("param, good, bad", [
    (Param(10, type=int, min=2), [("10", 10), (12.0, 12), (2, 2)], ["ten", 1, 2.5, True, None]),
    (Param(0.1, type=float, min=0, max=1, min_open=True), [("0.5", 0.5), (1, 1.0)], [0, 1.5, "nan", "inf", "x"]),
    (Param(True), [("false", False), ("YES", True), (0, False)], ["maybe", 2]),
    (Param("auto", choices=("auto", "yes", "no")), [("NO", "no")], ["bogus", ""]),
    (Param("", parse=Param.csv_of(("a", "b"), min_items=0)), [(["a", "b"], "a,b"), ("b, a", "b,a"), ("", "")],
     ["c", "a,x"]),
    (Param("", parse=Param.numbers(min=0)), [("1,2", "1,2"), ([1, 2.5], "1,2.5"), (3, "3"), ("[1; 2]", "1,2")], ["1,x", "-1", [1, -2]]),
    (Param("uniform:10:0.5", parse=Param.claim_instances),
     [("pareto:100:0.1,uniform:20:1", "pareto:100:0.1,uniform:20:1")],
     ["unifrm:10:0.5", "uniform:10", "uniform:1:0.5", "uniform:10:0", "uniform:ten:0.5", ""]),
])
def test_param_coerce(param, good, bad):
    for given, expected in good:
        assert param.coerce(given) == expected
    for given in bad:
        with pytest.raises(ValueError):
            param.coerce(given)


# -- --require -----------------------------------------------------------------

def test_require_turns_a_skipped_check_into_exit_1(tmp_path):
    # multiaccuracy audits rankers: on a selector it is skipped (not applicable)
    args = ["check", str(EX / "top_k.py"), "--checks", "multiaccuracy", "--json", "r.json"]
    # a requested check that cannot run stops the audit (issue 32) ...
    assert _cli(args, tmp_path).exit_code == 2
    # ... --allow-skip skips it (exit 0), and --require then turns the skip into exit 1
    plain = _cli(args + ["--allow-skip"], tmp_path)
    assert plain.exit_code == 0 and "SKIPPED" in plain.output
    req = _cli(args + ["--allow-skip", "--require"], tmp_path)
    assert req.exit_code == 1
    assert "check 'multiaccuracy' was skipped under --require: applies to rankings;" in req.output
    assert "Skipped: Skipped" not in req.output and "skipped: Skipped" not in req.output
    assert json.loads((tmp_path / "r.json").read_text())["config"]["require"] is True
    (tmp_path / "req.toml").write_text("require = true\nallow_skip = true\n")
    assert _cli(args + ["--config", "req.toml"], tmp_path).exit_code == 1


def test_require_does_not_change_a_passing_audit(tmp_path):
    res = _cli(["check", str(EX / "broome_lottery.py"), "--checks", "selection_rates", "--data", POP,
                "--require", "--draws", "2000"], tmp_path)
    assert res.exit_code == 0, res.output


def test_require_in_python_matches_assert_fair():
    r = fa.audit(str(EX / "top_k.py"), checks=["multiaccuracy"], require=True, allow_skip=True)
    assert r.checks[0].verdict == "skipped" and r.exit_code == 1
    assert fa.audit(str(EX / "top_k.py"), checks=["multiaccuracy"], allow_skip=True).exit_code == 0
    with pytest.raises(FairauditError, match="multiaccuracy applies to rankings"):
        fa.audit(str(EX / "top_k.py"), checks=["multiaccuracy"])        # checks= asks: it must run
    with pytest.raises(AssertionError, match="SKIPPED"):
        assert_fair(str(EX / "top_k.py"), checks=["multiaccuracy"], require=True)
    assert_fair(str(EX / "top_k.py"), checks=["multiaccuracy"])


def test_require_makes_a_skipped_check_a_junit_failure(tmp_path):
    import xml.etree.ElementTree as ET
    args = ["check", str(EX / "top_k.py"), "--checks", "multiaccuracy", "--junit", "j.xml", "--allow-skip"]
    _cli(args, tmp_path)
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    _cli(args + ["--require"], tmp_path)
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("skipped") == "0" and suite.get("failures") == "1"
    assert suite.find("testcase/failure").get("type") == "skipped"


def test_checks_command_shows_what_each_parameter_accepts(tmp_path):
    res = _cli(["checks", "broome"], tmp_path)
    assert res.exit_code == 0
    assert "  bins = 10  (an integer ≥ 2)" in res.output
    assert "  pick_order = 'auto'  (one of auto, yes, no)" in res.output
    assert "  stop_early = true  (true or false)" in res.output
    bad = _cli(["checks", "brome"], tmp_path)
    assert bad.exit_code == 2 and "did you mean `broome`?" in bad.output


def test_paths_and_unset_defaults():
    assert Param("", type=str).coerce(Path("a/b.csv")) == str(Path("a/b.csv"))
    assert Param(None, type=int, min=1).coerce(None) is None
    with pytest.raises(ValueError):
        Param(3, type=int, min=1).coerce(None)
