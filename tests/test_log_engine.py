"""The DuckDB log engine (issue 15): every malformed log refused by the pandas reader is
refused with the same one-line message, row and column when it is scanned by DuckDB
(a Parquet file, a glob, a hive directory, a dataframe handed in), and the engine's
aggregations equal counts recomputed row by row with pandas."""
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fairaudit as fa
from fairaudit.errors import LogError
from fairaudit.groups import categories
from fairaudit.logs.duckdb import category_counts, relation_of
from fairaudit.logs.load import load_log, log_from_frame, log_from_relation

ROOT = Path(__file__).resolve().parents[1]
SEL_LOG = ROOT / "examples" / "logs" / "selection_log.csv"


def sel():
    return pd.DataFrame({"decision_id": [1, 1, 1, 2, 2, 2], "individual_id": [10, 11, 12, 10, 11, 12],
                         "score": [0.9, 0.5, 0.1, 0.8, 0.4, 0.3], "selected": [1, 0, 0, 1, 0, 0],
                         "pick_order": [1.0, np.nan, np.nan, 1.0, np.nan, np.nan], "sex": list("FMFMFM")})


def with_(frame, **cells):
    f = frame.copy()
    for spec, v in cells.items():
        col, row = spec.rsplit("__", 1)
        if isinstance(v, str):
            f[col] = f[col].astype(object)
        elif isinstance(v, float) and pd.api.types.is_integer_dtype(f[col]):
            f[col] = f[col].astype(float)
        f.loc[int(row), col] = v
    return f


def rank():
    return pd.DataFrame({"decision_id": [1, 1, 1, 2, 2, 2], "position": [1, 2, 3, 2, 1, 3],
                         "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "p_1": [0.5, 0.2, 0.9, 0.1, 0.3, 0.6],
                         "race": list("abcabc")})


def assign():
    return pd.DataFrame({"decision_id": [0, 0, 0], "arrival": [1, 2, 3], "group": ["a", "b", "a"],
                         "location": [0, 1, -1], "w_0": [0.5, 0.2, 0.3], "w_1": [0.1, 0.9, 0.4],
                         "outcome": [1.0, 0.0, np.nan]})


MALFORMED = {
    "score NaN": with_(sel(), score__3=np.nan),
    "score text": with_(sel(), score__2="high"),
    "score inf": with_(sel(), score__1=np.inf),
    "selected 2": with_(sel(), selected__5=2),
    "selected word": with_(sel(), selected__0="maybe"),
    "selected missing": with_(sel(), selected__4=np.nan),
    "decision_id missing": with_(sel(), decision_id__2=np.nan),
    "pick_order missing for selected": with_(sel(), pick_order__3=np.nan),
    "pick_order on unselected": with_(sel(), pick_order__4=2.0),
    "pick_order zero": with_(sel(), pick_order__0=0.0),
    "duplicate individual in a decision": with_(sel(), individual_id__5=11),
    "position repeated": with_(rank(), position__2=2),
    "position out of range": with_(rank(), position__5=7),
    "position not integer": with_(rank(), position__1=1.5),
    "prediction out of [0,1]": with_(rank(), p_1__4=1.2),
    "duplicate individual in a ranking": rank().assign(individual_id=[1, 2, 1, 1, 2, 3]),
    "location beyond scores": with_(assign(), location__1=5),
    "location below -1": with_(assign(), location__2=-3),
    "arrival text": with_(assign(), arrival__0="first"),
    "w missing": with_(assign(), w_1__2=np.nan),
}


def pandas_error(frame, where):
    with pytest.raises(LogError) as e:
        log_from_frame(frame, path=where)
    return e.value


@pytest.mark.parametrize("case", list(MALFORMED))
def test_duckdb_validation_gives_the_pandas_message(case, tmp_path):
    frame = MALFORMED[case]
    ref = pandas_error(frame, "L")
    assert ref.row is not None and f"row {ref.row}, column '{ref.column}'" in str(ref)
    with pytest.raises(LogError) as got:
        log_from_relation(relation_of(frame), path="L")
    assert (str(got.value), got.value.row, got.value.column) == (str(ref), ref.row, ref.column)
    # the same rows written to Parquet (text columns stay text) and scanned from the file
    p = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pandas(frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
                                        if case in ("score text", "selected word", "arrival text") else frame,
                                        preserve_index=False), p)
    with pytest.raises(LogError) as got:
        load_log(p)
    assert (got.value.row, got.value.column) == (ref.row, ref.column)
    assert str(got.value) == str(ref).replace("L:", f"{p}:", 1)


def test_a_missing_group_value_is_the_unknown_category_on_every_source(tmp_path):
    """Issue 28 (LL144): a missing group value is no longer refused; pandas and DuckDB
    read it as the category '(unknown)', which selection_rates counts and leaves out of
    every ratio."""
    frame = with_(sel(), sex__4=None)
    path = tmp_path / "L.parquet"
    frame.to_parquet(path)
    got = []
    for src in (frame, str(path)):
        res = fa.audit(log=src, checks=["selection_rates"], seed=0).checks[0]
        g = res.tables["groups"]
        row = g[(g["attribute"] == "sex") & (g["category"] == "(unknown)")].iloc[0]
        assert row["n"] == 1 and not row["in_verdict"] and row["verdict"] == "not judged (unknown category)"
        assert res.evidence["unknown_category"]["sex"] == 1
        got.append(g[["attribute", "category", "n"]])
    pd.testing.assert_frame_equal(got[0], got[1])


def test_valid_logs_load_from_every_source(tmp_path):
    for frame in (sel(), rank(), assign()):
        a = log_from_frame(frame.copy())
        b = log_from_relation(relation_of(frame))
        assert (a.kind, a.group_cols, a.n_rows, a.n_decisions) == (b.kind, b.group_cols, b.n_rows, b.n_decisions)
        pd.testing.assert_frame_equal(a.frame.reset_index(drop=True), b.frame[list(a.frame.columns)],
                                      check_dtype=False)


def test_glob_and_hive_directory_scan(tmp_path):
    log = pd.read_csv(SEL_LOG)
    (tmp_path / "parts").mkdir()
    for d, part in log.groupby(log["decision_id"] % 3):
        part.to_parquet(tmp_path / "parts" / f"p{d}.parquet", index=False)
    hive = tmp_path / "hive"
    for d, part in log.groupby(log["decision_id"] % 2):
        (hive / f"shard={d}").mkdir(parents=True)
        part.to_parquet(hive / f"shard={d}" / "x.parquet", index=False)
    ref = fa.audit(str(SEL_LOG), checks=["selection_rates"]).checks[0]
    for spec in (str(tmp_path / "parts" / "*.parquet"), str(hive)):
        lg = load_log(spec)
        assert lg.n_rows == len(log) and lg.n_decisions == 300
        r = fa.audit(spec, checks=["selection_rates"], groups=["sex", "age_band"]).checks[0]
        assert r.verdict == ref.verdict
        pd.testing.assert_frame_equal(r.tables["groups"], ref.tables["groups"])


def test_category_counts_equal_row_masks():
    """GROUPING SETS counts = counts from fairaudit.groups.categories' row masks, same order."""
    lg = load_log(SEL_LOG)
    f = lg.frame
    cats = categories(f, lg.group_cols, 2)
    got = category_counts(lg.table, lg.group_cols, 2)
    assert [(c.attribute, c.value) for c in got] == [(c.attribute, c.value) for c in cats]
    assert [c.size for c in got] == [c.size for c in cats]
    assert [c.selected for c in got] == [float(f["selected"].to_numpy()[c.mask].sum()) for c in cats]


@pytest.mark.parametrize("bins", [3, 5, 40])
def test_stratified_counts_give_the_row_level_cmh_table(bins):
    """anonymity on logs: the CMH table from DuckDB's (category, stratum) counts equals
    stats.cmh_by_category's, computed from the rows with NumPy."""
    from fairaudit.logs.duckdb import stratified_category_counts
    from fairaudit.stats import cmh_by_category, cmh_from_counts
    lg = load_log(SEL_LOG)
    ref = cmh_by_category(lg.frame, lg.group_cols, bins, 0.95)
    got = cmh_from_counts(*stratified_category_counts(lg.table, lg.group_cols, bins), 0.95)
    assert got["bin_edges"] == ref["bin_edges"]
    pd.testing.assert_frame_equal(got["table"], ref["table"], rtol=1e-12)
    pd.testing.assert_frame_equal(got["strata"], ref["strata"], rtol=1e-12)
    # ties: a score column with few distinct values takes the exact-value strata
    f = lg.frame.assign(score=(lg.frame["score"] * 4).round() / 4)
    lf = log_from_frame(f)
    ref = cmh_by_category(f, lg.group_cols, bins, 0.95)
    got = cmh_from_counts(*stratified_category_counts(lf.table, lg.group_cols, bins), 0.95)
    pd.testing.assert_frame_equal(got["table"], ref["table"], rtol=1e-12)


def _comparable(res):
    d = res.to_dict()
    for c in d["checks"]:
        c.pop("duration", None), c.pop("seconds", None)
    return d["checks"]


def test_same_audit_from_pandas_polars_arrow_duckdb_and_parquet(tmp_path):
    """audit(log=frame) from each engine: the same JSON checks as the file audit."""
    import duckdb
    import polars as pl
    f = pd.read_csv(SEL_LOG)
    p = tmp_path / "log.parquet"
    f.to_parquet(p, index=False)
    checks = ["selection_rates", "anonymity"]
    ref = _comparable(fa.audit(str(p), checks=checks))
    con = duckdb.connect()
    sources = {"pandas": f, "polars": pl.from_pandas(f), "pyarrow": pa.Table.from_pandas(f, preserve_index=False),
               "duckdb": con.sql(f"SELECT * FROM read_parquet('{p}')")}
    for name, obj in sources.items():
        got = _comparable(fa.audit(log=obj, checks=checks))
        assert got == ref, name
    with pytest.raises(LogError, match=r"row 2, column 'score': 'x' is not a number"):
        fa.audit(log=pl.from_pandas(f.astype({"score": str}).assign(score=lambda d: d["score"].where(d.index != 1, "x"))),
                 checks=checks)


def recurring_log(rng, people=150, decisions=30):
    """Each person appears once in every decision, selected with a personal propensity
    π ~ Beta(0.5, 2) (mean 0.2 in both groups): rows of one person are correlated."""
    pi = rng.beta(0.5, 2.0, 2 * people)
    ids = np.tile(np.arange(2 * people), decisions)
    return pd.DataFrame({"decision_id": np.repeat(np.arange(decisions), 2 * people), "individual_id": ids,
                         "score": pi[ids].round(6), "group": np.where(ids < people, "A", "B"),
                         "selected": (rng.random(len(ids)) < pi[ids]).astype(int)})


@pytest.mark.slow
def test_cluster_robust_intervals_cover_when_individuals_recur():
    """Simulation over fixed seeds: the superpopulation rate 0.2 of each group is covered
    (simultaneously over the 2 groups) in ≥ 90% of 60 logs by the cluster-robust intervals,
    while intervals treating rows as independent trials cover far less often."""
    rng = np.random.default_rng(15)
    cover = {"none": 0, "individual_id": 0}
    reps = 60
    for _ in range(reps):
        f = recurring_log(rng)
        for by in cover:
            r = fa.audit(log=f, checks=["selection_rates"], groups=["group"],
                         params={"selection_rates": {"cluster_by": by}}).checks[0]
            t = r.tables["groups"]
            cover[by] += bool(((t["rate_lo"] <= 0.2) & (0.2 <= t["rate_hi"])).all())
    assert cover["individual_id"] / reps >= 0.9
    assert cover["none"] / reps <= 0.6
    assert "cluster-robust by individual_id" in r.statistic.method


def test_cluster_robust_by_default_when_individuals_recur():
    """cluster_by=auto (the default): cluster-robust by individual_id when ids recur, the
    method stated in the definition; Clopper–Pearson when every id appears once or there is
    no individual_id; cluster_by=none keeps the independent-rows interval with a note."""
    rng = np.random.default_rng(4)
    f = recurring_log(rng)
    d = fa.audit(log=f, checks=["selection_rates"], groups=["group"]).checks[0]
    forced = fa.audit(log=f, checks=["selection_rates"], groups=["group"],
                      params={"selection_rates": {"cluster_by": "individual_id"}}).checks[0]
    assert "cluster-robust by individual_id" in d.statistic.method
    assert "CR2" in d.definition and "Bell–McCaffrey" in d.definition and "individual_id recurs" in d.definition
    assert d.tables["groups"].equals(forced.tables["groups"])
    none = fa.audit(log=f, checks=["selection_rates"], groups=["group"],
                    params={"selection_rates": {"cluster_by": "none"}}).checks[0]
    assert none.statistic.method.startswith("clopper-pearson")
    assert "individual_id recurs" in none.evidence["independence_note"]
    assert "independent trials" in none.definition
    # the cluster-robust interval contains the independent one (never narrower)
    t, u = d.tables["groups"], none.tables["groups"]
    assert ((t["rate_lo"] <= u["rate_lo"] + 1e-15) & (t["rate_hi"] >= u["rate_hi"] - 1e-15)).all()
    assert ((t["rate_hi"] - t["rate_lo"]) > (u["rate_hi"] - u["rate_lo"]) + 1e-9).any()
    once = f.drop_duplicates("individual_id").reset_index(drop=True)
    for frame in (once, f.drop(columns="individual_id")):
        r = fa.audit(log=frame, checks=["selection_rates"], groups=["group"]).checks[0]
        assert r.statistic.method.startswith("clopper-pearson") and "independence_note" not in r.evidence
        assert "independent trials" in r.definition


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_cluster_sums_equal_pandas_groupby():
    lg = load_log(SEL_LOG)
    f = lg.frame
    for c in category_counts(lg.table, lg.group_cols, 2, cluster="individual_id"):
        cols = c.attribute.split(" × ")
        m = (f[cols].astype(str).agg(" × ".join, axis=1) == c.value)
        per = f[m].groupby("individual_id")["selected"].agg(["size", "sum"])
        assert c.extra[:4] == (len(per), (per["size"] ** 2).sum(), (per["sum"] ** 2).sum(), (per["size"] * per["sum"]).sum())
        nc, yc = per["size"].to_numpy(float), per["sum"].to_numpy(float)
        inv = 1 / (nc.sum() - nc)
        np.testing.assert_allclose(c.extra[4:], [(yc * yc * inv).sum(), (nc * yc * inv).sum(), (nc * nc * inv).sum(),
                                                 (nc ** 4 * inv * inv).sum()], rtol=1e-12)


def test_batched_broome_reference_equals_per_event():
    """broome on logs: every event's Broome chances solved together equal
    the per-event (Rosén) reference event by event (equal and unequal event sizes,
    events selecting nobody, events with fewer positive claims than k)."""
    from fairaudit.checks.broome.log import batched_broome_reference
    from fairaudit.checks.broome.log import rosen_reference as broome_reference
    rng = np.random.default_rng(7)
    for sizes in (np.full(50, 20), rng.integers(3, 40, 60)):
        c = rng.random(sizes.sum()) * rng.choice([1.0, 1e-3, 50.0], sizes.sum())
        c[:5] = 0.0
        ks = rng.integers(0, 6, len(sizes)).astype(float)
        ks[1] = sizes[1]
        got = batched_broome_reference(c, sizes, ks)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        for s0, n, k in zip(starts, sizes, ks):
            want = broome_reference(c[s0:s0 + n], int(k)) if k > 0 else np.zeros(n)
            np.testing.assert_allclose(got[s0:s0 + n], want, rtol=1e-12, atol=1e-15)


def test_broome_log_same_table_as_row_level(tmp_path):
    """The log check's bins table and verdict from the engine equal the row-level
    computation (broome.log.log_claim_bin_rates on the pandas rows)."""
    from fairaudit.checks.broome.log import log_claim_bin_rates
    rng = np.random.default_rng(2)
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(300), 30), "score": rng.random(9000).round(3)})
    f["selected"] = (f.groupby("decision_id")["score"].rank(ascending=False, method="first") <= 4).astype(int)
    f["sex"] = rng.choice(["F", "M"], len(f))
    p = tmp_path / "l.parquet"
    f.to_parquet(p, index=False)
    r = fa.audit(str(p), checks=["broome"]).checks[0]
    ref = log_claim_bin_rates(f, 10, 0.05, 2000)
    pd.testing.assert_frame_equal(r.tables["bins"].reset_index(drop=True)[list(ref["table"].columns)],
                                  ref["table"], rtol=1e-10)
    assert r.verdict == "fail"    # a deterministic top-4: higher claims always win


def test_duckdb_database_table_source(tmp_path):
    import duckdb
    db = tmp_path / "logs.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE decisions AS SELECT * FROM read_csv('{SEL_LOG}')")
    con.close()
    ref = fa.audit(str(SEL_LOG), checks=["selection_rates"]).checks[0]
    r = fa.audit(f"duckdb:///{db}?table=decisions", checks=["selection_rates"]).checks[0]
    pd.testing.assert_frame_equal(r.tables["groups"], ref.tables["groups"])
    from fairaudit.errors import DataError
    with pytest.raises(DataError, match="names no table"):
        load_log(f"duckdb:///{db}")


def test_table_binner_equals_claim_bins():
    from fairaudit.checks.broome.log import table_binner
    from fairaudit.checks.broome.lottery import claim_bins
    rng = np.random.default_rng(4)
    for scores in (rng.random(5000), (rng.random(5000) * 20).round() / 20, np.r_[np.zeros(3000), rng.random(2000)]):
        f = pd.DataFrame({"decision_id": np.repeat(np.arange(250), 20), "score": scores, "selected": 0})
        lg = log_from_frame(f)
        for G in (2, 7, 10):
            np.testing.assert_array_equal(table_binner(lg.table)(scores, G), claim_bins(scores, G))


def test_quantile_from_counts_equals_numpy():
    from fairaudit.logs.duckdb import quantile_from_counts
    rng = np.random.default_rng(9)
    for x in (rng.random(1001), (rng.random(5000) * 30).round(), rng.standard_normal(77), np.r_[np.zeros(50), 1.0]):
        v, c = np.unique(x, return_counts=True)
        for bins in (3, 5, 10, 40):
            q = np.linspace(0, 1, bins + 1)
            assert np.array_equal(quantile_from_counts(v, c, q), np.quantile(x, q))


def test_streamed_broome_bins_across_chunk_boundaries(monkeypatch):
    """Events of varying size straddling the streamed batches: the per-bin sums equal the
    row-level log_claim_bin_rates."""
    import fairaudit.checks.broome.log as bl
    from fairaudit.checks.broome.log import log_claim_bin_rates
    monkeypatch.setattr(bl, "CHUNK_ROWS", 997)
    rng = np.random.default_rng(5)
    sizes = rng.integers(5, 60, 300)
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(300), sizes), "score": rng.random(sizes.sum()).round(3)})
    f["selected"] = (f.groupby("decision_id")["score"].rank(ascending=False, method="first") <= 3).astype(int)
    lg = log_from_frame(f)
    got = bl.streamed_claim_bin_rates(lg.table, 10, 0.05, 500)
    ref = log_claim_bin_rates(f, 10, 0.05, 500)
    pd.testing.assert_frame_equal(got["table"], ref["table"], rtol=1e-10)
    assert np.array_equal(got["lower"], ref["lower"]) and np.array_equal(got["higher"], ref["higher"])


def test_duckdb_urls_follow_sqlalchemys_convention(tmp_path, monkeypatch):
    """Three slashes and a relative path (the README's ``duckdb:///audit.duckdb?table=decisions``)
    read from the current folder; four slashes, an absolute path; three slashes before an
    absolute path exit 2 saying to write four."""
    import duckdb
    from click.testing import CliRunner
    from fairaudit.cli import main
    from fairaudit.logs.duckdb import duckdb_path
    assert duckdb_path("duckdb:///audit.duckdb?table=t") == "audit.duckdb"
    assert duckdb_path("duckdb:///data/audit.duckdb") == "data/audit.duckdb"
    assert duckdb_path("duckdb:////data/audit.duckdb") == "/data/audit.duckdb"
    con = duckdb.connect(str(tmp_path / "audit.duckdb"))
    con.sql(f"CREATE TABLE decisions AS SELECT * FROM read_csv('{SEL_LOG}')")
    con.close()
    monkeypatch.chdir(tmp_path)
    ok = CliRunner().invoke(main, ["check", "duckdb:///audit.duckdb?table=decisions", "--checks", "selection_rates",
                                   "--no-html"])
    assert ok.exit_code == 0, ok.output
    absolute = CliRunner().invoke(main, ["check", f"duckdb:///{tmp_path}/audit.duckdb?table=decisions", "--checks",
                                         "selection_rates", "--no-html"])
    assert absolute.exit_code == 0, absolute.output
    three = CliRunner().invoke(main, ["check", f"duckdb://{tmp_path}/audit.duckdb?table=decisions", "--no-html"])
    assert three.exit_code == 2 and "write duckdb:////" in three.output, three.output


def test_cli_query_and_duckdb_table_sources(tmp_path):
    """`fairaudit check --query SQL` and `fairaudit check duckdb:///db?table=T` audit the
    log DuckDB returns: the same statistic as the CSV file itself; a query DuckDB refuses,
    or a TARGET and a --query together, exit 2 with a one-line reason."""
    import json
    import duckdb
    from click.testing import CliRunner
    from fairaudit.cli import main
    db = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(db))
    con.sql(f"CREATE TABLE decisions AS SELECT * FROM read_csv('{SEL_LOG}')")
    con.close()
    runs = {}
    for name, args in [("file", [str(SEL_LOG)]),
                       ("query", ["--query", f"select * from read_csv('{SEL_LOG}') where decision_id >= 0"]),
                       ("table", [f"duckdb:///{db}?table=decisions"])]:
        out = tmp_path / f"{name}.json"
        r = CliRunner().invoke(main, ["check", *args, "--checks", "selection_rates", "--no-html", "--json", str(out)])
        assert r.exit_code == 0, r.output
        runs[name] = json.loads(out.read_text())["checks"][0]
    for name in ("query", "table"):
        assert runs[name]["statistic"] == runs["file"]["statistic"]
        assert runs[name]["evidence"]["groups"] == runs["file"]["evidence"]["groups"]
    bad = CliRunner().invoke(main, ["check", "--query", "select * from no_such_table", "--no-html"])
    assert bad.exit_code == 2 and "--query: DuckDB cannot run the query" in bad.output
    both = CliRunner().invoke(main, ["check", str(SEL_LOG), "--query", "select 1", "--no-html"])
    assert both.exit_code == 2 and "exactly one" in both.output
    # a malformed log from a query is refused like a file: row and column, exit 2
    worse = CliRunner().invoke(main, ["check", "--query", f"select * replace (case when decision_id = 0 then 2 "
                                      f"else selected end as selected) from read_csv('{SEL_LOG}')", "--no-html"])
    assert worse.exit_code == 2 and "query: row 1, column 'selected'" in worse.output, worse.output


def _frame_same_pool_draws(f):
    """The row-level same-pool reading broome used before (pandas, from the definition):
    the pool is the first event's rows by individual_id; each event's selected pool
    positions in pick_order (else row order), events by decision_id."""
    first = f["decision_id"].iloc[0]
    pool = f[f["decision_id"] == first].sort_values("individual_id")
    pos = {v: i for i, v in enumerate(pool["individual_id"].astype(str))}
    rows = []
    for _, g in f[f["selected"] == 1].groupby("decision_id", sort=True):
        if "pick_order" in f.columns:
            g = g.sort_values("pick_order", kind="stable")
        rows.append([pos[str(v)] for v in g["individual_id"]])
    return pool["score"].to_numpy(float), rows


@pytest.mark.parametrize("with_order", [True, False])
def test_same_pool_draws_in_sql_equal_the_frame_reading(with_order, tmp_path):
    """broome's same-pool log path aggregates in DuckDB (the pool, then one list of selected
    positions per event): equal to the row-level reading, and an audit of the log as a
    Parquet file never loads its frame."""
    from fairaudit.checks.broome.log import same_pool, same_pool_draws
    rng = np.random.default_rng(11)
    n, E, k = 9, 300, 3
    ids = rng.permutation(np.arange(100, 100 + n))          # the pool listed in a different order each event
    claims = rng.random(n).round(3) + 0.05
    rows = []
    for e in rng.permutation(E):                             # decisions not in id order in the file
        order = rng.permutation(n)
        picked = rng.choice(n, size=k, replace=False, p=claims / claims.sum())
        for j in order:
            rows.append({"decision_id": int(e), "individual_id": int(ids[j]), "score": claims[j],
                         "selected": int(j in picked),
                         "pick_order": float(list(picked).index(j) + 1) if j in picked else np.nan})
    f = pd.DataFrame(rows)
    if not with_order:
        f = f.drop(columns="pick_order")
    lg = log_from_frame(f.copy())
    assert same_pool(lg.table)
    got_c, got_rows = same_pool_draws(lg.table)
    ref_c, ref_rows = _frame_same_pool_draws(lg.frame)
    assert np.array_equal(got_c, ref_c) and got_rows == ref_rows
    path = tmp_path / "pool.parquet"
    f.to_parquet(path, index=False)
    log = load_log(path)
    res = fa.audit(log, checks=["broome"], seed=1).checks[0]
    assert "same pool" in res.evidence["log_mode"] and res.verdict != "error"
    assert log._frame is None            # no check read the rows into pandas


def _varying_pools_log(seed=8, events=60):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(6, 12, events)
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(events), sizes),
                      "score": rng.random(sizes.sum()).round(3) + 0.01})
    f["selected"] = (f.groupby("decision_id")["score"].rank(ascending=False, method="first") <= 2).astype(int)
    return f


def test_varying_pools_get_the_exact_yardstick_when_affordable():
    """A log whose pools differ, small enough (estimated cost within EXACT_COST_UNITS):
    each bin's Broome rate is the exact chances' (broome_reference per event, recomputed
    here), the method and evidence say exact, and no Rosén measurement is reported."""
    from fairaudit.checks.broome.log import exact_is_affordable, streamed_claim_bin_rates, value_bins
    from fairaudit.checks.broome.lottery import broome_reference
    f = _varying_pools_log()
    per = f.groupby("decision_id")
    assert exact_is_affordable(per.size(), per["selected"].sum())
    lb = streamed_claim_bin_rates(log_from_frame(f).table, 5, 0.05, 50)
    assert lb["yardstick"] == "exact" and lb["rosen_check"] is None
    exact = np.concatenate([broome_reference(g["score"].to_numpy(), 2) for _, g in per])
    scores = np.concatenate([g["score"].to_numpy() for _, g in per])
    v, n = np.unique(f["score"], return_counts=True)
    b = value_bins(n, min(5, max(2, len(f) // 50)))[np.searchsorted(v, scores)]
    want = np.bincount(b, weights=exact) / np.bincount(b)
    np.testing.assert_allclose(lb["broome_rate"], want, rtol=1e-12)
    r = fa.audit(log=f, checks=["broome"]).checks[0]
    assert "Broome chances exact" in r.statistic.method and r.evidence["rosen_check"] is None
    assert r.evidence["yardstick"].startswith("the Broome lottery's exact chances")


def test_rosen_error_measured_against_the_exact_yardstick(monkeypatch):
    """Logs with varying pools beyond the exact yardstick's budget (here a budget of 0)
    use Rosén's approximation: the streamed path measures its error on a systematic
    sample of events against broome_reference (recomputed here) and the method says so."""
    import fairaudit.checks.broome.log as bl
    from fairaudit.checks.broome.log import rosen_reference, streamed_claim_bin_rates
    from fairaudit.checks.broome.lottery import broome_reference
    monkeypatch.setattr(bl, "EXACT_COST_UNITS", 0)
    f = _varying_pools_log()
    lb = streamed_claim_bin_rates(log_from_frame(f).table, 5, 0.05, 50)
    assert lb["yardstick"] == "rosen"
    rc = lb["rosen_check"]
    assert rc["events"] == 24
    worst = max(np.abs(rosen_reference(g["score"].to_numpy(), 2) - broome_reference(g["score"].to_numpy(), 2)).max()
                for _, g in f.groupby("decision_id"))
    assert 0 < rc["max_row_difference"] <= worst + 1e-12
    assert rc["max_bin_rate_difference"] <= rc["max_row_difference"] + 1e-12
    r = fa.audit(log=f, checks=["broome"]).checks[0]
    assert "Rosén's approximation, off the exact ones by at most" in r.statistic.method
    assert r.evidence["rosen_check"]["events"] == 24


def test_weighted_cells_give_the_rows_broome_chances():
    """A cell of w equal claims in one event (how a Dask or Spark log's (decision, score)
    groups arrive) gets the chance each of its w rows gets when the rows are solved one
    by one; with weight 1 the rows' chances are reproduced bit for bit."""
    from fairaudit.checks.broome.log import _reference_chunk
    rng = np.random.default_rng(3)
    sizes_rows = rng.integers(4, 30, 40)
    rows = np.concatenate([rng.choice([0.0, 0.2, 0.5, 0.9, 1.7], n) for n in sizes_rows])
    ks = np.minimum(rng.integers(0, 5, len(sizes_rows)), sizes_rows).astype(float)
    by_row = _reference_chunk(rows, sizes_rows, ks)
    assert np.array_equal(_reference_chunk(rows, sizes_rows, ks, np.ones(len(rows))), by_row)
    starts = np.r_[0, np.cumsum(sizes_rows)[:-1]]
    cells, w, sizes = [], [], []
    for s0, n in zip(starts, sizes_rows):
        v, c = np.unique(rows[s0:s0 + n], return_counts=True)
        cells.append(v), w.append(c), sizes.append(len(v))
    got = _reference_chunk(np.concatenate(cells), np.array(sizes), ks, np.concatenate(w))
    cs = np.r_[0, np.cumsum(sizes)[:-1]]
    for e, (s0, n) in enumerate(zip(starts, sizes_rows)):
        want = dict(zip(rows[s0:s0 + n], by_row[s0:s0 + n]))
        for v, p in zip(cells[e], got[cs[e]:cs[e] + sizes[e]]):
            assert p == pytest.approx(want[v], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("change, same", [(None, True), ("score", False), ("missing", False), ("null_id", False),
                                          ("one_event", False)])
def test_same_pool_is_every_pair_in_every_event(change, same):
    """broome_log.same_pool: the events list the same (individual_id, score) pairs —
    one changed score, one individual missing from one event, a missing id or a single
    event each make it not one pool."""
    from fairaudit.checks.broome.log import same_pool
    from test_log_engines import same_pool_log
    f = same_pool_log(events=5, n=6, k=2)
    if change == "score":
        f.loc[8, "score"] += 0.5
    elif change == "missing":
        f = f.drop(index=8)
    elif change == "null_id":
        f["individual_id"] = f["individual_id"].astype(float)
        f.loc[[2, 8, 14, 20, 26], "individual_id"] = np.nan       # the same person unnamed in every event
    elif change == "one_event":
        f = f[f["decision_id"] == 0]
    assert same_pool(log_from_frame(f).table) is same
