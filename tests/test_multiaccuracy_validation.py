"""multiaccuracy: validation by simulation (SPEC §0, §5) — coverage of the α̂ intervals and
of the gap intervals, and the false-fail rate on the UA ranking with a multiaccurate
predictor, over many label draws from a known ground truth f*.

The pool (individuals, predictions f, ground truth f*) is fixed, as in the check's pool
view; each seed redraws the labels y ~ f* and the episodes. True values:
α_{S,ℓ} = mean_S (f − f*)_ℓ; the UA ranking's Â(S,p) = Σ_ℓ mean_S f_ℓ · G_ℓ(p; mean f)
and the reference A*(S,p) = Σ_ℓ mean_S f*_ℓ · G_ℓ(p; mean f*) (individual
interpolation, checked against brute force in test_multiaccuracy.py).

Binomial slack: with R seeds a simultaneous family at 95% should cover in at least
95% − 3·sqrt(0.05·0.95/R) of them (3 standard errors), and the false-fail count should
stay within the same slack above 5%.
"""
from pathlib import Path

import numpy as np
import pytest

from fairaudit.checks.multiaccuracy import composition, predictor_audit
from fairaudit.ua import reference_band
from fairaudit.stats import abs_interval
from fairaudit.checks.multiaccuracy.groupsets import collection
from fairaudit.result import decide
from fairaudit.ua import ua_position_given_label
from fairaudit.targets import import_file

# A simulation study over many seeds: the full suite (.ci/run, `pytest`) runs it; the fast
# lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
make_ma = import_file(ROOT / "examples" / "make_multiaccuracy_data.py")

CONF = 0.95


def slack(R):
    return 3 * np.sqrt(0.05 * 0.95 / R)


@pytest.fixture(scope="module")
def pool():
    frame, fstar, f_ma, f_bias = make_ma.population(np.random.default_rng(11), n=1500)
    sets = collection(frame, ["sex", "age_band"], depth=2, min_size=30)
    masks = np.stack([s.mask for s in sets])
    judged = np.array([not s.tiny for s in sets]) & (np.arange(len(sets)) > 0)
    return fstar, {"multiaccurate": f_ma, "biased": f_bias}, masks, judged


def draw_labels(fstar, rng):
    return (rng.random(len(fstar))[:, None] >= np.cumsum(fstar, axis=1)).sum(axis=1)


def true_alpha(f, fstar, masks):
    sz = masks.sum(axis=1)[:, None]
    return (masks.astype(float) @ (f - fstar)) / sz


@pytest.mark.parametrize("which", ["multiaccurate", "biased"])
def test_alpha_intervals_cover_simultaneously(pool, which):
    fstar, preds, masks, _ = pool
    f = preds[which]
    truth = true_alpha(f, fstar, masks)
    R = 300
    covered = 0
    for seed in range(R):
        y = draw_labels(fstar, np.random.default_rng(seed))
        a = predictor_audit(f, y, masks, CONF)
        covered += bool(np.all((a["alpha_lo"] <= truth + 1e-12) & (truth <= a["alpha_hi"] + 1e-12)))
    rate = covered / R
    print(f"α̂ simultaneous coverage ({which}, {R} label draws): {rate:.3f}")
    assert rate >= CONF - slack(R)


def simulate_ua_counts(f, masks, E, n, rng):
    """E episodes of the UA ranking of n rows drawn with replacement: counts[S, p]."""
    N = f.shape[0]
    idx = rng.integers(0, N, (E, n))
    cdf = np.cumsum(f, axis=1)
    cdf[:, -1] = np.inf
    Y = (rng.random((E, n))[:, :, None] >= cdf[idx]).sum(axis=2)
    order = np.argsort(-(Y + rng.random((E, n))), axis=1, kind="stable")
    held = np.take_along_axis(idx, order, axis=1)
    return np.stack([mk[held].sum(axis=0) for mk in masks]).astype(float)


@pytest.mark.parametrize("which", ["multiaccurate", "biased"])
def test_gap_intervals_cover_and_false_fail_rate(pool, which):
    fstar, preds, masks, judged = pool
    f = preds[which]
    n, E, R, tol = 10, 2000, 120, 0.1
    N = len(f)
    share = masks.sum(axis=1) / N
    fbar = (masks.astype(float) @ f) / masks.sum(axis=1)[:, None]
    sbar = (masks.astype(float) @ fstar) / masks.sum(axis=1)[:, None]
    A_f = fbar @ ua_position_given_label(f.mean(axis=0), n)
    A_true = sbar @ ua_position_given_label(fstar.mean(axis=0), n)
    true_gap = (n * share)[:, None] * (A_f - A_true)
    covered = fails = 0
    for seed in range(R):
        rng = np.random.default_rng(1000 + seed)
        y = draw_labels(fstar, rng)
        counts = simulate_ua_counts(f, masks, E, n, rng)
        ref = reference_band(y, masks, f.shape[1], n, 1 - (1 - CONF) / 2, rng, judged)
        comp = composition(counts, E, n, share, ref[:3], A_f, CONF)
        lo, hi = comp["gap_lo"][judged], comp["gap_hi"][judged]
        covered += bool(np.all((lo <= true_gap[judged] + 1e-12) & (true_gap[judged] <= hi + 1e-12)))
        a_lo, a_hi = abs_interval(lo, hi)
        fails += decide((float(a_lo.max()), float(a_hi.max())), tol) == "fail"
    rate = covered / R
    print(f"gap simultaneous coverage ({which}, {R} seeds, n={n}, {E} episodes): {rate:.3f}; "
          f"max |true gap| {np.abs(true_gap[judged]).max():.3f}; fails at tol {tol}: {fails}/{R}")
    assert rate >= CONF - slack(R)
    if np.abs(true_gap[judged]).max() <= tol:          # the property holds: fail only by error
        assert fails / R <= (1 - CONF) + slack(R)
