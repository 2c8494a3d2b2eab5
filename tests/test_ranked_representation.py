"""``ranked_representation`` (issue 28): FA*IR's test with the adjusted level computed
exactly, against enumeration of every membership sequence; the per-prefix shortcut's
failure rate; a deterministic re-ranker's verdict equals the exact test; a randomized one
reports its failing share with an interval covering the exact share; a log's failing
rankings counted where the log is equal the rows' count.

fairsearchcore (the FA*IR authors' Python package) is not installable from this registry
(`pip index versions fairsearchcore` finds nothing), so its m-table formula —
``MTableGenerator.m(i) = scipy.stats.binom.ppf(alpha, i, p)`` (0 when negative) — is
written out here as the cross-check, and its ``is_fair`` (every prefix count ≥ m(i)) too.
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import fairaudit as fa
from fairaudit.checks.ranked_representation.fair_test import (adjusted_test, brute_force_fail_probability,
                                                              fail_probability, first_failing_prefix, mtable)
from fairaudit.data import population_from_frame


def fairsearch_m(k, p, alpha):
    """fairsearchcore's MTableGenerator.m for i = 1..k."""
    return np.array([max(0, int(stats.binom.ppf(alpha, i, p))) for i in range(1, k + 1)])


def fairsearch_is_fair(protected_in_order, m):
    """fairsearchcore's check: the protected count of every prefix reaches m(i)."""
    return all(np.cumsum(protected_in_order[:len(m)])[i] >= m[i] for i in range(len(m)))


@pytest.mark.parametrize("k,p,alpha", [(10, 0.5, 0.1), (12, 0.3, 0.05), (14, 0.2, 0.1), (16, 0.6, 0.05)])
def test_adjusted_level_is_exact_and_maximal(k, p, alpha):
    t = adjusted_test(k, p, alpha)
    exact = brute_force_fail_probability(t.m, p)            # all 2^k membership sequences
    assert t.fail_probability == pytest.approx(exact, abs=1e-12)
    assert t.fail_probability <= alpha
    # maximal: the next break point of the m-table already fails a fair ranking more than α
    pts = np.unique(np.concatenate([stats.binom.cdf(np.arange(i + 1), i, p) for i in range(1, k + 1)]))
    nxt = pts[pts > t.alpha_c][0]
    assert brute_force_fail_probability(mtable(k, p, nxt), p) > alpha
    # the m-table is fairsearchcore's formula at any level in (previous break point, α_c]: its
    # table is constant there
    prev = pts[pts < t.alpha_c][-1]
    assert np.array_equal(np.asarray(t.m), fairsearch_m(k, p, (prev + t.alpha_c) / 2))


def test_unadjusted_shortcut_fails_fair_rankings_more_than_alpha():
    """Testing each prefix at α (no adjustment) rejects a fair ranking much more often
    than α: the reason for the exact adjustment."""
    k, p, alpha = 40, 0.5, 0.1
    assert fail_probability(mtable(k, p, alpha), p) > 2 * alpha
    assert adjusted_test(k, p, alpha).fail_probability <= alpha


def test_monte_carlo_agrees_with_the_dp():
    rng = np.random.default_rng(0)
    t = adjusted_test(30, 0.4, 0.1)
    seq = rng.random((40000, 30)) < 0.4
    share = (first_failing_prefix(seq, t.m) > 0).mean()
    lo, hi = stats.binomtest(int(share * 40000), 40000).proportion_ci(0.999)
    assert lo <= t.fail_probability <= hi


def people(n=30, seed=0, share_f=0.5):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"score": rng.random(n).round(4), "sex": np.where(rng.random(n) < share_f, "F", "M")})


def rerank(scores, groups, boost):
    key = np.asarray(scores) + boost * (np.asarray(groups["sex"]) == "F")
    return np.argsort(-key, kind="stable")


def make_reranker(boost):
    @fa.ranker
    def reranker(scores, groups, rng, size=None):
        o = rerank(scores, groups, boost)
        return o if size is None else np.tile(o, (size, 1))
    return reranker


@pytest.mark.parametrize("seed,boost", [(0, 0.0), (1, -0.5), (2, -0.2), (3, 0.3), (4, -1.0)])
def test_deterministic_reranker_gets_the_exact_tests_verdict(seed, boost):
    frame = people(seed=seed)
    res = fa.audit(make_reranker(boost), checks=["ranked_representation"], data=population_from_frame(frame),
                   seed=seed, in_process=True).checks[0]
    assert res.evidence["deterministic"]
    order = rerank(frame["score"], frame, boost)
    k = 10
    fair = True
    for g in ("F", "M"):
        prot = (frame["sex"].to_numpy() == g)[order]
        t = adjusted_test(k, round(float((frame["sex"] == g).mean()), 12), 0.05 / 2)
        fair &= fairsearch_is_fair(prot, np.asarray(t.m))
    assert res.verdict == ("pass" if fair else "fail"), res.message
    assert res.statistic.estimate == (0.0 if fair else 1.0)


def test_randomized_ranker_reports_the_failing_share_with_an_interval():
    """Serves a ranking that fails (F last) with chance 0.3 and one that passes otherwise:
    the failing share's interval covers 0.3, the verdict is fail (0.3 > α), and the
    counterexample is shrunk to its first failing prefix."""
    frame = people(seed=5)

    @fa.ranker
    def mixture(scores, groups, rng, size=None):
        B = 1 if size is None else size
        bad, good = rerank(scores, groups, -2.0), rerank(scores, groups, 0.0)
        out = np.where((rng.random(B) < 0.3)[:, None], bad[None, :], good[None, :])
        return out[0] if size is None else out

    assert fa.audit(make_reranker(0.0), checks=["ranked_representation"], data=population_from_frame(frame),
                    seed=0, in_process=True).checks[0].verdict == "pass"
    res = fa.audit(mixture, checks=["ranked_representation"], data=population_from_frame(frame), seed=0,
                   in_process=True).checks[0]
    assert not res.evidence["deterministic"]
    lo, hi = res.statistic.ci
    assert lo < 0.3 < hi and hi - lo < 0.3
    assert res.verdict == "fail"
    ce = res.evidence["counterexample"]
    assert ce["had"] < ce["needed"] and len(ce["top_individuals"]) == ce["prefix"]
    assert set(ce["their_groups"]) == {"M"}


def test_log_failing_rankings_equal_the_rows_count():
    rng = np.random.default_rng(1)
    D, n = 80, 10
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(D), n), "sex": rng.choice(["F", "M"], D * n, p=[.4, .6]),
                      "score": rng.random(D * n)})
    f["position"] = (f["score"] - 0.4 * (f["sex"] == "F")).groupby(f["decision_id"]).rank(
        ascending=False, method="first").astype(int)
    res = fa.audit(log=f, checks=["ranked_representation"], seed=0).checks[0]
    tests = {r["group"]: [int(x) for x in r["mtable"].split()] for r in res.tables["tests"].to_dict("records")}
    fails = 0
    for _, d in f.sort_values(["decision_id", "position"]).groupby("decision_id"):
        fails += any(not fairsearch_is_fair((d["sex"] == g.split(" = ")[1]).to_numpy(), np.array(m))
                     for g, m in tests.items())
    assert res.statistic.estimate == pytest.approx(fails / D)
    assert res.tables["prefixes"]["decisions"].sum() == D
    assert res.verdict == "fail" and fails > 0


def test_uniform_permutation_oracle_by_enumeration():
    """The validation row's exact failing share of a uniform random permutation, checked by
    enumerating every arrangement of a small pool."""
    import itertools
    from fairaudit.checks.ranked_representation.fair_test import uniform_permutation_fail_probability
    m_a, m_b = [0, 1, 1, 2, 2, 3], [0, 0, 1, 1, 2, 2]
    pool = [1] * 4 + [0] * 3                                   # 4 of a, 3 of b
    perms = list(itertools.permutations(range(7)))
    fails = 0
    for p in perms:
        a = np.array([pool[i] for i in p], bool)
        fails += bool(first_failing_prefix(a[None, :], m_a)[0] or first_failing_prefix(~a[None, :], m_b)[0])
    assert uniform_permutation_fail_probability(m_a, m_b, 4, 3) == pytest.approx(fails / len(perms), abs=1e-12)


def test_the_failing_draw_is_recorded_for_replay(tmp_path):
    from fairaudit.replay import redraw
    frame = people(seed=4)
    frame.to_csv(tmp_path / "people.csv", index=False)
    src = tmp_path / "f_last.py"
    src.write_text("import numpy as np\nimport fairaudit as fa\n\n@fa.ranker\ndef rank(scores, groups, rng):\n"
                   "    f = (np.asarray(groups['sex']) == 'F').astype(int)\n"
                   "    return np.lexsort((-np.asarray(scores), f))\n")
    res = fa.audit(str(src), checks=["ranked_representation"], data=str(tmp_path / "people.csv"), seed=0)
    chk = res.checks[0]
    assert chk.verdict == "fail" and chk.evidence["redraw"]["records"][0]["observed"] == [1.0] * chk.evidence[
        "counterexample"]["prefix"]
    (tmp_path / "r.json").write_text(res.to_json())
    (rec,) = redraw(tmp_path / "r.json", "ranked_representation")
    assert rec["identical"] and rec["replayed"] == [1.0] * len(rec["members"])
