"""Claim domains (issue 18 defect 6): allocators declare the domain of the claims they take
(``@fa.selector(k=10, claims="nonnegative")``, defaulting to what the kind implies), and
generated inputs are mapped into it — the built-in cross-population pools have negative
raw scores, which gave the bundled Broome lottery ``log`` of negatives (a RuntimeWarning,
chances of 0 and 1, an ``ex_interim`` fail) and the README tour's allocator an error."""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fairaudit as fa
from fairaudit.errors import TargetError
from fairaudit.run.targets import target_from_callable
from fairaudit.run.load import load_target

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"


def test_declared_domains_and_defaults():
    @fa.selector(k=10, claims="nonnegative")
    def a(scores, k, rng):
        return np.arange(k)

    @fa.selector(claims="real")
    def b(scores, k, rng):
        return np.arange(k)

    @fa.selector
    def c(scores, k, rng):
        return np.arange(k)

    assert target_from_callable(a).claims == "nonnegative"
    assert target_from_callable(b).claims == "real"
    assert target_from_callable(c).claims == "nonnegative"           # what a selection's claims imply (SPEC §1)
    with pytest.raises(TargetError, match="claims"):
        @fa.selector(claims="imaginary")
        def d(scores, k, rng):
            return np.arange(k)
        target_from_callable(d)


def test_generated_pools_are_mapped_into_the_domain_and_the_report_says_so():
    seen = []

    @fa.selector(claims="nonnegative")
    def proportional(scores, k, rng):
        s = np.asarray(scores, dtype=float)
        seen.append(float(s.min()))
        return rng.choice(len(s), size=k, replace=False, p=s / s.sum())

    res = fa.audit(proportional, checks=["ex_interim"], params={"ex_interim": {"pools": 3}}, draws=300,
                   in_process=True)   # the closure records what it saw (isolated, it would run in a worker)
    c = res.checks[0]
    assert c.verdict != "error", c.message
    assert min(seen) >= 0
    assert "mapped into [0.05, 1]" in repr(c.evidence) + c.method

    @fa.selector(claims="real")
    def raw(scores, k, rng):
        seen.append(float(np.min(scores)))
        return np.argsort(-np.asarray(scores))[:k]

    seen.clear()
    fa.audit(raw, checks=["ex_interim"], params={"ex_interim": {"pools": 3}}, draws=50, in_process=True)
    assert min(seen) < 0                                              # raw scores when the domain is the reals


def test_bundled_broome_lottery_on_generated_pools_no_log_of_negatives():
    t = load_target(str(EX / "broome_lottery.py"))
    assert t.claims in ("nonnegative", "positive")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = fa.audit(str(EX / "broome_lottery.py"), checks=["ex_interim"], params={"ex_interim": {"pools": 4}},
                       in_process=True)   # so that a RuntimeWarning would be raised here
    assert res.checks[0].verdict != "error", res.checks[0].message


def test_readme_tour_allocator_runs_on_generated_pools(tmp_path):
    """The README's own allocator (its code block, as written) is not an error on the
    generated cross-population pools."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "@fa.selector" in b)
    f = tmp_path / "my_allocator.py"
    f.write_text(block)
    res = fa.audit(str(f), checks=["ex_interim"], params={"ex_interim": {"pools": 3}}, draws=300)
    assert res.checks[0].verdict != "error", res.checks[0].message
