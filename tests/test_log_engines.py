"""The same log audit where the log lives (issue 15): a Dask DataFrame read from a
partitioned Parquet directory by a LocalCluster of two worker processes, and a PySpark
DataFrame in ``local[2]`` mode, give the JSON of the DuckDB run on the same rows (floats
to 1e-12) — selection_rates with its default cluster-robust intervals (individual_id
recurs) and with cluster_by=none, anonymity, broome (pools that differ: claim bins; the
same pool in every event: draws), multiaccuracy on a ranking log and min_requirement on
an assignment log (its multicalibration table too). Every statistic is computed on that engine: the log's rows are never
collected whole (``LazyLogTable.materialised`` stays false; min_requirement reads one
year at a time, filtered on the engine), and a malformed log is refused with the row and
column every other source names."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.errors import LogError
from fairaudit.logs.load import log_from_any

PUSHED = ["selection_rates", "anonymity", "broome"]           # aggregated on the engine


def selection_log(decisions=40, n=15, seed=5):
    rng = np.random.default_rng(seed)
    rows = decisions * n
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(decisions), n),
                      "individual_id": np.concatenate([rng.choice(200, n, replace=False) for _ in range(decisions)]),
                      "score": rng.random(rows).round(3), "sex": rng.choice(["F", "M"], rows),
                      "age_band": rng.choice(["a", "b", "c"], rows, p=[.5, .3, .2])})
    merit = f["score"] - 0.2 * (f["sex"] == "F") + 0.1 * rng.standard_normal(rows)
    f["selected"] = (merit.groupby(f["decision_id"]).rank(ascending=False, method="first") <= 4).astype(int)
    return f


def comparable(result) -> dict:
    """The result's JSON without what names the source ("log (dask DataFrame)" vs
    "log (pandas DataFrame)"), which messages and labels quote."""
    label = result.target.get("path") if isinstance(result.target, dict) else None
    text = result.to_json()
    if label:
        text = text.replace(json.dumps(label)[1:-1], "LOG")
    d = json.loads(text)
    d.pop("created")
    return d


def same_pool_log(events=60, n=12, k=3, seed=2):
    """Every event lists the same 12 people with the same scores (each event a draw of a
    lottery with chances rising in the score)."""
    rng = np.random.default_rng(seed)
    score = rng.random(n).round(3)
    picks = [rng.choice(n, k, replace=False, p=score / score.sum()) for _ in range(events)]
    return pd.DataFrame({"decision_id": np.repeat(np.arange(events), n), "individual_id": np.tile(100 + np.arange(n), events),
                         "score": np.tile(score, events), "selected": np.concatenate([np.isin(np.arange(n), p) for p in picks]).astype(int),
                         "sex": np.tile(np.where(np.arange(n) % 2, "F", "M"), events)})


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# (log, checks, params): the statistics the log checks ask the engine for
CASES = {
    "selection": (lambda: selection_log(), PUSHED, {}),
    "selection, independent rows": (lambda: selection_log(), ["selection_rates"], {"selection_rates": {"cluster_by": "none"}}),
    "same pool": (lambda: same_pool_log(), ["broome"], {}),
    "ranking": (lambda: pd.read_csv(EXAMPLES / "data" / "multiaccuracy_prop19_log.csv"), ["multiaccuracy"], {}),
    "ranking, multicalibration": (lambda: pd.read_csv(EXAMPLES / "data" / "multiaccuracy_prop19_log.csv"),
                                  ["multiaccuracy"], {"multiaccuracy": {"multicalibration": True}}),
    "assignment": (lambda: pd.read_csv(EXAMPLES / "logs" / "assignment_log.csv"), ["min_requirement"], {}),
}


def assert_same(a, b, path=""):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def frame():
    return selection_log()


@pytest.fixture(scope="module")
def frames():
    return {name: make() for name, (make, _, _) in CASES.items()}


@pytest.fixture(scope="module")
def duckdb_runs(frames):
    import duckdb
    return {name: comparable(fa.audit(log=duckdb.from_df(frames[name]), checks=checks, seed=3, params=params))
            for name, (_, checks, params) in CASES.items()}


# the distributed runs (slow lane) take the cases whose statistics differ: "ranking,
# multicalibration" reads every cell "ranking" does and more; "independent rows" only
# changes the keys of selection_rates' cells, which the local Dask run covers
DISTRIBUTED = [name for name in CASES if name not in ("ranking", "selection, independent rows")]


def _same_audits(natives: dict, duckdb_runs):
    """Each case's log as the engine's DataFrame gives the DuckDB run's JSON, and its rows
    were never collected."""
    for name, native in natives.items():
        _, checks, params = CASES[name]
        log = log_from_any(native)
        got = comparable(fa.audit(log=log, checks=checks, seed=3, params=params))
        assert not log.table.materialised, f"{name}: the statistics were not computed on the engine"
        assert [c["verdict"] for c in got["checks"]] != ["error"] * len(checks), name
        if "selection_rates" in checks:
            robust = got["checks"][0]["statistic"]["method"].startswith("cluster-robust by individual_id")
            assert robust == (not params), "default: cluster-robust (ids recur); cluster_by=none: independent rows"
        assert_same(got, duckdb_runs[name], name)


def test_the_cases_reach_each_statistic(duckdb_runs):
    """The cases exercise what they are meant to, so the engines' agreement means
    something: broome's two log readings, multiaccuracy's cells, min_requirement's years."""
    ev = {name: {c["id"]: c for c in run["checks"]} for name, run in duckdb_runs.items()}
    assert ev["selection"]["broome"]["evidence"]["log_mode"].startswith("pools differ")
    assert ev["same pool"]["broome"]["evidence"]["log_mode"].startswith("same pool repeated")
    assert "cells of identical rows" in ev["ranking"]["multiaccuracy"]["evidence"]["aggregation"]
    assert "cells of identical rows" in ev["ranking, multicalibration"]["multiaccuracy"]["evidence"]["aggregation"]
    assert ev["ranking, multicalibration"]["multiaccuracy"]["evidence"]["multicalibration"]["cells"] > 0
    assert ev["assignment"]["min_requirement"]["verdict"] == "fail"      # its docstring: g0 falls short in 2025
    assert ev["ranking"]["multiaccuracy"]["verdict"] == "fail"


# ---------------------------------------------------------------------------
# Dask on its local scheduler (the LocalCluster runs are at the end of the module)
# ---------------------------------------------------------------------------

def test_dask_log_gives_the_duckdb_json(frames, duckdb_runs):
    """The same comparison on Dask's local scheduler (fast lane; the cluster run is slow).
    Defined before the cluster's fixture, so that a run of the whole module reaches it
    before a LocalCluster client becomes Dask's default scheduler."""
    dd = pytest.importorskip("dask.dataframe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _same_audits({name: dd.from_pandas(f, npartitions=3) for name, f in frames.items()}, duckdb_runs)


def test_dask_malformed_log_names_row_and_column(frame):
    dd = pytest.importorskip("dask.dataframe")
    bad = frame.copy()
    bad["selected"] = bad["selected"].astype(float)
    bad.loc[7, "selected"] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(LogError, match=r"row 8, column 'selected': 2(\.0)? is not an integer in \[0, 1\]"):
            log_from_any(dd.from_pandas(bad, npartitions=2))
        dup = frame.copy()
        dup.loc[3, "individual_id"] = dup.loc[2, "individual_id"]
        with pytest.raises(LogError, match=r"row 4, column 'individual_id'.*duplicate"):
            log_from_any(dd.from_pandas(dup, npartitions=2))


def test_dask_ranking_log_and_text_roles():
    """A ranking log on Dask is validated on the engine (positions a permutation per
    decision, grouped counts) without collecting rows; a repeated position is refused with
    its row; a text ``selected`` column (yes/no) is read as 0/1 on the engine, without
    collecting the rows, and gives the same counts as pandas; an unknown word is refused
    with its row, as pandas refuses it."""
    dd = pytest.importorskip("dask.dataframe")
    rank = pd.DataFrame({"decision_id": np.repeat([1, 2, 3], 4), "position": [1, 2, 3, 4, 4, 3, 2, 1, 2, 1, 4, 3],
                         "score": np.linspace(0, 1, 12), "race": list("abab" * 3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        log = log_from_any(dd.from_pandas(rank, npartitions=2))
        assert log.kind == "ranking" and log.n_decisions == 3 and not log.table.materialised
        bad = rank.copy()
        bad.loc[6, "position"] = 4
        with pytest.raises(LogError, match=r"row 7, column 'position': positions within decision 2 are not a permutation"):
            log_from_any(dd.from_pandas(bad, npartitions=2))
        f = selection_log(decisions=6)
        words = f.assign(selected=np.where(f["selected"] == 1, " Yes", "no"))
        wlog = log_from_any(dd.from_pandas(words, npartitions=2))
        got = fa.audit(log=wlog, checks=["selection_rates"], seed=0).checks[0].tables["groups"]
        assert not wlog.table.materialised        # the words read as 0/1 on the engine
        ref = fa.audit(log=f, checks=["selection_rates"], seed=0).checks[0].tables["groups"]
        pd.testing.assert_frame_equal(got, ref)
        odd = words.copy()
        odd.loc[9, "selected"] = "maybe"
        want = r"row 10, column 'selected': 'maybe' is not 0/1, true/false or yes/no"
        with pytest.raises(LogError, match=want):
            log_from_any(odd)                      # pandas' message ...
        with pytest.raises(LogError, match=want):
            log_from_any(dd.from_pandas(odd, npartitions=2))   # ... and the engine's, quoting the word


# ---------------------------------------------------------------------------
# PySpark in local[2] mode: one session for the module, no UI, two shuffle partitions
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spark():
    import shutil
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (.ci/run installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession
    s = (SparkSession.builder.master("local[2]").appName("fairaudit-test")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.driver.memory", "512m").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.mark.slow      # the JVM: ~40 s with its start-up
def test_spark_log_gives_the_duckdb_json(frames, duckdb_runs, spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    natives = {}
    for j, name in enumerate(DISTRIBUTED):
        f = frames[name]
        path = tmp_path / f"log{j}.parquet"
        pq.write_table(pa.Table.from_pandas(f, preserve_index=False), path, row_group_size=150)
        natives[name] = spark.read.parquet(str(path))
    _same_audits(natives, duckdb_runs)


@pytest.mark.slow
def test_spark_malformed_log_names_row_and_column(frame, spark):
    bad = frame.copy()
    bad["score"] = bad["score"].astype(float)
    bad.loc[5, "score"] = np.nan
    with pytest.raises(LogError, match=r"row 6, column 'score': missing"):
        log_from_any(spark.createDataFrame(bad))


@pytest.mark.parametrize("yardstick", ["exact", pytest.param("rosen", marks=pytest.mark.slow)])
def test_dask_broome_cells_come_a_range_of_decisions_at_a_time(monkeypatch, yardstick):
    """Pools that differ on a lazy engine (with the exact yardstick, and with Rosén's): the
    (decision, score) cells are grouped a range of decisions at a time (here at most 64 rows, 4 events of 15, a range: 4 ranges), with text decision ids;
    the figures equal DuckDB's streamed rows."""
    import duckdb

    import fairaudit.checks.broome.log as bl
    dd = pytest.importorskip("dask.dataframe")
    if yardstick == "rosen":
        monkeypatch.setattr(bl, "EXACT_COST_UNITS", 0)     # beyond the exact yardstick's budget
    f = selection_log(decisions=16).assign(decision_id=lambda x: "d" + x["decision_id"].astype(str).str.zfill(3))
    ref = comparable(fa.audit(log=duckdb.from_df(f), checks=["broome"], seed=3))
    assert ("Rosén" in ref["checks"][0]["statistic"]["method"]) == (yardstick == "rosen")
    calls = []
    chunks = bl._engine_event_chunks

    def counted(*a):
        for c in chunks(*a):
            calls.append(len(c[3]))
            yield c
    monkeypatch.setattr(bl, "CHUNK_ROWS", 64)
    monkeypatch.setattr(bl, "_engine_event_chunks", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        log = log_from_any(dd.from_pandas(f, npartitions=3))
        got = comparable(fa.audit(log=log, checks=["broome"], seed=3))
    assert calls == [4] * 4 and not log.table.materialised      # 15 rows an event
    assert_same(got, ref)


# ---------------------------------------------------------------------------
# Dask on a LocalCluster of two worker processes, last in the module: while its client is
# alive it is Dask's default scheduler for every Dask test after it
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow      # a 2-process LocalCluster: ~15 s
def test_dask_cluster_log_gives_the_duckdb_json(frames, duckdb_runs, dask_client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    natives = {}
    for j, name in enumerate(DISTRIBUTED):
        f = frames[name]
        directory = tmp_path / f"log{j}"
        dd.from_pandas(f, npartitions=4).to_parquet(directory, write_index=False)
        assert len(list(directory.glob("*.parquet"))) == 4
        natives[name] = dd.read_parquet(directory)
        assert natives[name].npartitions == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # narwhals' note that Dask moves to narwhals-dask
        _same_audits(natives, duckdb_runs)
    assert len(dask_client.scheduler_info()["workers"]) == 2
