"""Tests of fairaudit.checks.min_requirement.assignment: the seed 003 requirement rules and LP benchmarks.

Oracles: values derived by hand on the seed's Figure 1 worlds (seed 003 §1.1, Figure 1;
rules from §3.1 Examples 1–3) and brute-force enumeration on tiny instances.
"""
import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from fairaudit.checks.min_requirement import assignment as A
from fairaudit.targets import import_file


def figure1_year(name, T=1000, seed=0):
    """A Figure 1 world with equal group sizes (T/2 each), in random order."""
    return A.scenario(name, equal_sizes=True).draw(T, np.random.default_rng(seed))


# ---------------------------------------------------------------------------
# Figure 1 worlds, equal group sizes, ρ = (½, ½): values derived by hand.
#
# Notation: groups a (row 1) and b (row 2), locations 1 and 2, n_a = n_b = T/2,
# capacities T/2 each (Σρ = 1, so every place is used at the optimum). Let y be the
# fraction of group b sent to location 2; then a fraction 1 − y of group a is at
# location 2 (capacity) and
#   Ū_a = w_a1·y + w_a2·(1 − y),   Ū_b = w_b1·(1 − y) + w_b2·y,   ALG = (Ū_a + Ū_b)/2.
#
# Antagonistic  a: (0.5, 0.9)  b: (0.2, 0.4)
#   Ū_a = 0.9 − 0.4y, Ū_b = 0.2 + 0.2y.  Unconstrained optimum: y = 0, value
#   (0.9 + 0.2)/2 = 0.55 (y = 1 gives 0.45).
#   Random (Ex. 1): m_g = ½w_g1 + ½w_g2 → m_a = 0.7, m_b = 0.3. Proportionally
#   Optimized (Ex. 2): group a alone with T/4 places at each location → half at
#   each → 0.7; b → 0.3 (identical members, so PO = Random here).
#   OPT with Random/PO: Ū_b ≥ 0.3 ⇒ y ≥ ½; Ū_a ≥ 0.7 ⇒ y ≤ ½ ⇒ y = ½, OPT = 0.5,
#   price of fairness 1 − 0.5/0.55 = 1/11 ≈ 0.0909.
#   MaxMin (Ex. 3): Ū_b increases, Ū_a decreases in y; at y = 1, Ū_b = 0.4 < Ū_a = 0.5,
#   so the min is maximised at y = 1: m = 0.4. OPT = (0.5 + 0.4)/2 = 0.45,
#   price of fairness 1 − 0.45/0.55 = 2/11 ≈ 0.1818.
# Benign  a: (0.5, 0.9)  b: (0.51, 0.9)
#   Ū_a = 0.9 − 0.4y, Ū_b = 0.51 + 0.39y. Unconstrained: y = 0, (0.9 + 0.51)/2 = 0.705.
#   Random/PO: m_a = 0.7, m_b = 0.705 ⇒ y = ½ exactly, OPT = (0.7 + 0.705)/2 = 0.7025,
#   price 0.0025/0.705 ≈ 0.00355.
#   MaxMin: equalise 0.9 − 0.4y = 0.51 + 0.39y ⇒ y = 39/79, m = 0.9 − 15.6/79 = 55.5/79
#   ≈ 0.702532; OPT = m (both constraints force y = 39/79), price ≈ 0.00350.
# Collaborative  a: (0.5, 0.9)  b: (0.9, 0.5)
#   Ū_a = 0.9 − 0.4y, Ū_b = 0.9 − 0.4y. Unconstrained: y = 0, value 0.9, and every
#   group gets 0.9. Random/PO: m = 0.7 each; MaxMin: m = 0.9. OPT = 0.9 for every
#   rule; price of fairness 0.
# ---------------------------------------------------------------------------
HAND = {
    # world: {rule: (m_a, m_b, OPT, OPT_unc)}
    "antagonistic": {"random": (0.7, 0.3, 0.5, 0.55), "proportional": (0.7, 0.3, 0.5, 0.55),
                     "maxmin": (0.4, 0.4, 0.45, 0.55)},
    "benign": {"random": (0.7, 0.705, 0.7025, 0.705), "proportional": (0.7, 0.705, 0.7025, 0.705),
               "maxmin": (55.5 / 79, 55.5 / 79, 55.5 / 79, 0.705)},
    "collaborative": {"random": (0.7, 0.7, 0.9, 0.9), "proportional": (0.7, 0.7, 0.9, 0.9),
                      "maxmin": (0.9, 0.9, 0.9, 0.9)},
}
HAND_POF = {("antagonistic", "random"): 1 / 11, ("antagonistic", "maxmin"): 2 / 11,
            ("benign", "random"): 0.0025 / 0.705, ("benign", "maxmin"): 1 - (55.5 / 79) / 0.705,
            ("collaborative", "maxmin"): 0.0}


@pytest.mark.parametrize("world", list(HAND))
@pytest.mark.parametrize("rule", ["random", "proportional", "maxmin"])
def test_figure1_hand_values(world, rule):
    y = figure1_year(world)
    assert list(y.sizes()) == [500, 500]
    b = A.benchmarks(y, rule)
    ma, mb, opt, unc = HAND[world][rule]
    assert b.m == pytest.approx([ma, mb], abs=1e-6)
    assert b.opt == pytest.approx(opt, abs=1e-6)
    assert b.opt_unc == pytest.approx(unc, abs=1e-9)
    if (world, rule) in HAND_POF:
        assert b.price_of_fairness == pytest.approx(HAND_POF[(world, rule)], abs=1e-5)
    # Def 1: every rule is ex-post feasible; MaxMin is the largest common value.
    assert A.is_feasible(y.scores, y.groups, y.capacities, b.m, 2)
    if rule == "maxmin":
        assert not A.is_feasible(y.scores, y.groups, y.capacities, b.m + 0.005, 2)


def test_figure1_greedy_shortfall_by_hand():
    """Greedy on Antagonistic: everyone prefers location 2, so the first T/2 arrivals take
    it. With groups in random order, b gets about ½·0.4 + ½·0.2 = 0.3 < MaxMin's 0.4."""
    y = figure1_year("antagonistic", T=2000, seed=3)
    b = A.benchmarks(y, "maxmin")
    loc = np.where(np.arange(y.T) < 1000, 1, 0)          # greedy's path for this world
    f = A.path_figures(y, b, loc)
    assert f["R"][0, 1] == pytest.approx(0.1, abs=0.03)
    # Ū_b by direct count
    first = np.arange(y.T) < 1000
    Ub = (0.4 * np.sum(first & (y.groups == 1)) + 0.2 * np.sum(~first & (y.groups == 1))) / 1000
    assert f["U"][0, 1] == pytest.approx(Ub)
    # max regret (seed eq. (1)) is the larger of the group and global regrets
    assert f["max_regret"][0] == pytest.approx(max(f["global_regret"][0], f["R"][0].max()))


# ---------------------------------------------------------------------------
# Brute force on tiny instances. With integer capacities the assignment polytope is
# totally unimodular, so its vertices are exactly the integer assignments (−1 =
# unassigned) that respect capacities: the unconstrained LP equals the best vertex,
# and the constrained LPs equal small LPs over convex combinations of the vertices.
# ---------------------------------------------------------------------------

def vertices(T, N, caps):
    out = []
    for a in itertools.product(range(-1, N), repeat=T):
        a = np.array(a)
        if np.all(np.bincount(a[a >= 0], minlength=N) <= caps):
            out.append(a)
    return np.array(out)


def vertex_figures(w, groups, G, V):
    T = w.shape[0]
    got = np.where(V >= 0, w[np.arange(T)[None, :], np.maximum(V, 0)], 0.0)
    sizes = np.bincount(groups, minlength=G)
    U = np.stack([got[:, groups == g].sum(axis=1) / max(sizes[g], 1) for g in range(G)], axis=1)
    return got.sum(axis=1), U


def tiny_instances(n=25, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        T = int(rng.integers(2, 6))
        N = int(rng.integers(1, 4))
        w = np.round(rng.random((T, N)), 3)
        groups = rng.integers(0, 2, size=T)
        caps = rng.integers(0, 3, size=N)
        yield w, groups, caps


@pytest.mark.parametrize("inst", list(tiny_instances()), ids=lambda i: f"T{i[0].shape[0]}N{i[0].shape[1]}")
def test_lps_against_brute_force(inst):
    w, groups, caps = inst
    T, N = w.shape
    G = 2
    V = vertices(T, N, caps)
    val, U = vertex_figures(w, groups, G, V)
    sizes = np.bincount(groups, minlength=G)
    # unconstrained optimum = best vertex
    assert A.solve_assignment(w, caps).value == pytest.approx(val.max(), abs=1e-7)
    # MaxMin = max_p min_g Σ p_v U_vg over distributions on vertices (non-empty groups)
    ne = np.flatnonzero(sizes > 0)
    nv = len(V)
    c = np.zeros(nv + 1)
    c[-1] = -1
    A_ub = np.hstack([-U[:, ne].T, np.ones((len(ne), 1))])
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(ne)), A_eq=np.r_[np.ones(nv), 0][None, :], b_eq=[1],
                  bounds=[(0, None)] * nv + [(None, None)], method="highs")
    z, _ = A.maxmin_value(w, groups, caps, G)
    assert z == pytest.approx(-res.fun, abs=1e-7)
    # OPT with a requirement = max_p Σ p_v val_v s.t. Σ p_v U_vg ≥ m_g
    m = A.requirement(w, groups, caps, "maxmin", G) * 0.9
    res2 = linprog(-val, A_ub=-U.T, b_ub=-m, A_eq=np.ones((1, nv)), b_eq=[1], bounds=(0, None), method="highs")
    lp = A.solve_assignment(w, caps, groups, m, G)
    assert lp.status == 0 and res2.status == 0
    assert lp.value == pytest.approx(-res2.fun, abs=1e-5)
    # an infeasible requirement is reported as such (Def 1 fails)
    assert not A.is_feasible(w, groups, caps, np.where(sizes > 0, val.max() + 1.0, 0.0), G)


def test_proportional_against_brute_force():
    """PO gives group g capacities ρ_i |G_g| = c_i |G_g| / T; choose T = 4, |G_g| = 2 and
    even c_i so those are integers and the group's polytope is integral again."""
    rng = np.random.default_rng(5)
    for _ in range(15):
        N = int(rng.integers(1, 4))
        w = np.round(rng.random((4, N)), 3)
        groups = rng.permutation([0, 0, 1, 1])
        caps = 2 * rng.integers(0, 3, size=N)
        po = A.requirement(w, groups, caps, "proportional", 2)
        for g in range(2):
            wg = w[groups == g]
            V = vertices(2, N, caps // 2)
            val, _ = vertex_figures(wg, np.zeros(2, int), 1, V)
            assert po[g] == pytest.approx(val.max() / 2, abs=1e-7)


def test_random_rule_is_the_mean_under_random_assignment():
    """Example 1: m_g is what g gets in expectation when every arrival goes to location i
    with probability ρ_i/Σρ — checked against the random_assign example by simulation."""
    from pathlib import Path
    p = Path(__file__).resolve().parents[1] / "examples" / "allocators" / "random_assign.py"
    mod = import_file(p)
    y = A.scenario("iid").draw(60, np.random.default_rng(1))
    m = A.requirement(y.scores, y.groups, y.capacities, "random", 3)
    out = mod.assign(y.scores, y.groups, y.capacities, np.random.default_rng(2), size=4000)
    U = A.group_values(y.scores, y.groups, out, 3).mean(axis=0)
    # sampling SD of the mean over 4000 draws is < 0.003 for these groups
    assert U == pytest.approx(m, abs=0.012)


def test_merging_identical_arrivals_is_exact():
    y = figure1_year("benign", T=200, seed=4)
    jitter = y.scores + np.random.default_rng(0).random(y.scores.shape) * 1e-9
    for rule in ("maxmin", "proportional"):
        m1 = A.requirement(y.scores, y.groups, y.capacities, rule, 2)
        m2 = A.requirement(jitter, y.groups, y.capacities, rule, 2)
        assert m1 == pytest.approx(m2, abs=1e-6)
        assert A.solve_assignment(y.scores, y.capacities, y.groups, m1, 2).value == pytest.approx(
            A.solve_assignment(jitter, y.capacities, y.groups, m1 - 1e-6, 2).value, abs=1e-4)
    r = A.solve_assignment(y.scores, y.capacities, need_x=True)
    assert r.x.shape == y.scores.shape
    assert (r.x * y.scores).sum() == pytest.approx(r.value)
    assert np.all(r.x.sum(axis=0) <= y.capacities + 1e-7) and np.all(r.x.sum(axis=1) <= 1 + 1e-7)


def test_capacity_duals_price_scarce_locations():
    """Antagonistic, unconstrained: everyone prefers location 2, which is scarce, so its
    dual price exceeds location 1's by the marginal displaced value (0.4 for a, 0.2 for b:
    at the optimum a holds location 2, so the price gap is between 0.2 and 0.4)."""
    y = figure1_year("antagonistic", T=100)
    r = A.solve_assignment(y.scores, y.capacities)
    gap = r.lam[1] - r.lam[0]
    assert 0.2 - 1e-7 <= gap <= 0.4 + 1e-7


def test_capacities_and_scenarios():
    assert A.place_counts(np.array([0.25, 0.75]), 100).tolist() == [25.0, 75.0]
    assert A.place_counts(np.array([3, 1]), 100).tolist() == [3.0, 1.0]
    with pytest.raises(ValueError):
        A.place_counts(np.array([-1, 2]), 10)
    for name in A.SCENARIOS:
        s = A.scenario(name)
        y = s.draw(301, np.random.default_rng(0))
        assert y.scores.shape == (301, s.N) and y.scores.min() >= 0 and y.scores.max() <= 1
        assert y.capacities.sum() >= 301 and y.capacities.dtype.kind == "i"
        assert y.groups.max() < s.G
    # a scenario is the same world for any rng; years differ
    a = A.scenario("unequal").draw(50, np.random.default_rng(1))
    b = A.scenario("unequal").draw(50, np.random.default_rng(1))
    assert np.array_equal(a.scores, b.scores)
    y = A.scenario("unequal").draw(4000, np.random.default_rng(2))
    assert y.sizes()[-1] < 0.02 * 4000 < y.sizes()[0]          # very unequal sizes
    with pytest.raises(ValueError):
        A.scenario("nowhere")
    bt = A.bootstrap_year(a.scores, a.groups, a.capacities, 200, np.random.default_rng(0), 4)
    assert bt.T == 200 and bt.capacities.sum() >= 200


def test_empty_group_has_zero_requirement_and_regret():
    y = figure1_year("collaborative", T=20)
    y1 = A.Year(y.scores, np.where(y.groups == 1, 2, y.groups), y.capacities, 3)    # group 1 empty
    for rule in ("random", "proportional", "maxmin"):
        b = A.benchmarks(y1, rule)
        assert b.m[1] == 0 and b.sizes[1] == 0
        f = A.path_figures(y1, b, np.zeros(20, dtype=int))
        assert f["R"][0, 1] == 0


def test_selection_is_one_location_with_capacity_k():
    """SPEC §0: selection is the special case N = 1 with capacity k (outside option 0):
    the optimum picks the k highest scores; MaxMin with one group is its average."""
    w = np.random.default_rng(3).random((12, 1))
    r = A.solve_assignment(w, np.array([4]))
    assert r.value == pytest.approx(np.sort(w[:, 0])[-4:].sum())
    z, _ = A.maxmin_value(w, np.zeros(12, dtype=int), np.array([4]), 1)
    assert z == pytest.approx(np.sort(w[:, 0])[-4:].sum() / 12)


def test_selection_with_the_reference_assigners():
    """Selection as N = 1, capacity k, run through the example assigners: greedy takes
    the first k arrivals (mean score ≈ ½ for uniform scores), the bid-price rule learns
    the LP's price of the one location (≈ the 1 − k/T quantile) and keeps most places
    for high scores; neither exceeds the clairvoyant optimum (the k highest scores)."""
    from pathlib import Path

    def load(name):
        p = Path(__file__).resolve().parents[1] / "examples" / "allocators" / f"{name}.py"
        mod = import_file(p)
        return mod.assign

    rng = np.random.default_rng(12)
    T, k = 400, 40
    w = rng.random((T, 1))
    groups = np.zeros(T, dtype=int)
    caps = np.array([k])
    opt = A.solve_assignment(w, caps).value
    assert opt == pytest.approx(np.sort(w[:, 0])[-k:].sum())
    vals = {}
    for name in ("greedy_assign", "bid_price", "group_bid_price", "random_assign"):
        loc = np.asarray(load(name)(w, groups, caps, np.random.default_rng(0)))
        assert loc.shape == (T,) and set(np.unique(loc)) <= {-1, 0} and (loc == 0).sum() <= k
        vals[name] = float(w[loc == 0, 0].sum())
        assert vals[name] <= opt + 1e-9
    assert vals["greedy_assign"] == pytest.approx(w[:k, 0].sum())          # the first k arrivals
    assert vals["bid_price"] > vals["greedy_assign"] + 0.15 * k            # learns a threshold (≈ 0.9)
    assert vals["group_bid_price"] > vals["greedy_assign"] + 0.15 * k      # one group: the same idea
    # random assignment is a lottery over all T arrivals, not the first k: over 400 draws
    # each arrival is placed with chance k/T = 0.1
    out = load("random_assign")(w, groups, caps, np.random.default_rng(1), size=400)
    placed = (out == 0).mean(axis=0)
    assert (out == 0).sum(axis=1).max() == k and abs(placed[:k].mean() - 0.1) < 0.02
    assert abs(placed[k:].mean() - 0.1) < 0.01
    # ... and the Random rule is its expectation: k/T of the mean score (not the mean
    # score, which would need T places)
    m = A.requirement(w, groups, caps, "random", 1)
    assert m[0] == pytest.approx(w.mean() * k / T)
    assert A.group_values(w, groups, out, 1).mean() == pytest.approx(m[0], abs=0.005)
    assert A.is_feasible(w, groups, caps, m, 1)
    print({n: round(v / opt, 3) for n, v in vals.items()})


# ---------------------------------------------------------------------------
# Column generation (``solve_assignment(..., colgen=True)``, used by ``benchmarks`` and
# the Proportionally Optimized rule) against the plain linprog formulation.
# ---------------------------------------------------------------------------

def _plain_lp(w, caps):
    """The full LP written out directly: max Σ w·x, Σ_i x_ti ≤ 1, Σ_t x_ti ≤ c_i, x ≥ 0."""
    T, N = w.shape
    A_ub = np.vstack([np.kron(np.eye(T), np.ones((1, N))), np.kron(np.ones((1, T)), np.eye(N))])
    res = linprog(-w.ravel(), A_ub=A_ub, b_ub=np.concatenate([np.ones(T), caps]), bounds=(0, None),
                  method="highs")
    assert res.status == 0
    return -res.fun


def _medium_instance(seed):
    """T = 200, N = 10: continuous scores with some zeros (seeds 0–3), or 60 distinct rows
    that the LPs merge into arrival types with supply > 1 (seed 4); integer, fractional
    or scarce capacities."""
    rng = np.random.default_rng(seed)
    T, N = 200, 10
    w = rng.random((T, N)) ** rng.uniform(0.5, 3.0, size=N)
    w[rng.random((T, N)) < 0.1] = 0.0
    if seed == 4:
        w = w[rng.integers(0, 60, size=T)]
    caps = [rng.integers(5, 40, size=N).astype(float),          # Σc ≈ T
            rng.dirichlet(np.ones(N)) * 1.1 * T,                 # fractional places
            rng.integers(1, 10, size=N).astype(float),           # scarce: Σc < T
            np.full(N, 30.0),
            rng.integers(10, 30, size=N).astype(float)][seed]
    return w, caps


@pytest.mark.parametrize("seed", range(5))
def test_column_generation_matches_the_plain_lp(seed, monkeypatch):
    monkeypatch.setattr(A, "CG_FROM", 40)        # medium instances go through column generation
    monkeypatch.setattr(A, "CG_SAMPLE", 40)
    w, caps = _medium_instance(seed)
    ref = _plain_lp(w, caps)
    A.reset_lp_stats()
    r = A.solve_assignment(w, caps, need_x=True, colgen=True)
    assert A.LP_STATS["count"] == 1 and A.LP_STATS["calls"] >= 2       # subsample + restricted LP(s)
    assert r.status == 0 and r.value == pytest.approx(ref, rel=1e-7)
    assert r.value == pytest.approx(A.solve_assignment(w, caps).value, rel=1e-7)
    # x is an optimal assignment of the full LP ...
    assert r.x.shape == w.shape and r.x.min() >= -1e-9
    assert np.all(r.x.sum(axis=1) <= 1 + 1e-7) and np.all(r.x.sum(axis=0) <= caps + 1e-7)
    assert (r.x * w).sum() == pytest.approx(r.value, rel=1e-9)
    # ... and lam an optimal dual: the dual objective Σ_t (max_i w_ti − λ_i)⁺ + c·λ is equal
    assert r.lam.min() >= -1e-9
    dual = np.maximum((w - r.lam).max(axis=1), 0.0).sum() + caps @ r.lam
    assert dual == pytest.approx(ref, rel=1e-7)


def test_column_generation_falls_back_to_the_full_lp(monkeypatch):
    """No column kept beyond each row's best and one round allowed: the restricted LP is
    not optimal for the full one, so the full LP is solved (same value)."""
    monkeypatch.setattr(A, "CG_FROM", 40)
    monkeypatch.setattr(A, "CG_SAMPLE", 40)
    monkeypatch.setattr(A, "CG_DELTA", 0.0)
    monkeypatch.setattr(A, "CG_ROUNDS", 1)
    w, caps = _medium_instance(3)
    A.reset_lp_stats()
    r = A.solve_assignment(w, caps, need_x=True, colgen=True)
    assert A.LP_STATS["count"] == 1 and A.LP_STATS["calls"] == 3      # subsample, restricted, full
    assert r.value == pytest.approx(_plain_lp(w, caps), rel=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_benchmarks_with_column_generation_are_unchanged(seed, monkeypatch):
    """A year's requirement (Proportionally Optimized: one LP per group) and optimum with
    column generation equal the plain LPs' (T = 200, N = 10)."""
    y = A.scenario("iid").draw(200, np.random.default_rng(seed))
    monkeypatch.setattr(A, "CG_FROM", 10 ** 9)
    plain = A.benchmarks(y, "proportional")
    monkeypatch.setattr(A, "CG_FROM", 30)
    monkeypatch.setattr(A, "CG_SAMPLE", 25)
    A.reset_lp_stats()
    cg = A.benchmarks(y, "proportional")
    assert A.LP_STATS["calls"] > A.LP_STATS["count"]
    assert cg.m == pytest.approx(plain.m, rel=1e-7)
    assert cg.opt_unc == pytest.approx(plain.opt_unc, rel=1e-7)
    assert cg.opt == pytest.approx(plain.opt, rel=1e-7) and cg.feasible == plain.feasible
    for g in range(y.n_groups):             # each group's LP against the plain formulation
        mask = y.groups == g
        assert cg.m[g] == pytest.approx(_plain_lp(y.scores[mask], y.capacities / y.T * mask.sum())
                                        / mask.sum(), rel=1e-7)
