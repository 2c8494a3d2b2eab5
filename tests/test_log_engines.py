"""The same log audit where the log lives (issue 15): a Dask DataFrame read from a
partitioned Parquet directory by a LocalCluster of two worker processes, and a PySpark
DataFrame in ``local[2]`` mode, give the JSON of the DuckDB run on the same rows (floats
to 1e-12) — selection_rates with its default cluster-robust intervals (individual_id
recurs) and with cluster_by=none, anonymity, and broome; the count statistics are
computed on that engine (the rows are never collected: ``LazyLogTable.materialised`` stays false), and a malformed log is refused
with the row and column every other source names."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.errors import LogError
from fairaudit.logs import log_from_any

PUSHED = ["selection_rates", "anonymity"]           # aggregated on the engine
ALL = PUSHED + ["broome"]                           # broome collects score/selected (stated)


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
    d = json.loads(result.to_json())
    d.pop("created")
    d["target"].pop("path")        # "log (dask DataFrame)" vs "log (pandas DataFrame)"
    return d


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
def duckdb_runs(frame):
    import duckdb
    rel = duckdb.from_df(frame)
    return {checks: comparable(fa.audit(log=rel, checks=list(checks), seed=3, **params))
            for checks, params in [(tuple(PUSHED), {}), (tuple(ALL), {}),
                                   (("selection_rates",), {"params": {"selection_rates": {"cluster_by": "none"}}})]}


def _same_audits(native, duckdb_runs, collected_too=True):
    log = log_from_any(native)
    for checks, params in [(tuple(PUSHED), {}), (("selection_rates",),
                                                 {"params": {"selection_rates": {"cluster_by": "none"}}})]:
        got = comparable(fa.audit(log=log, checks=list(checks), seed=3, **params))
        assert not log.table.materialised, "the counts were not computed on the engine"
        robust = got["checks"][0]["statistic"]["method"].startswith("cluster-robust by individual_id")
        assert robust == (not params), "default: cluster-robust (ids recur); cluster_by=none: independent rows"
        assert [c["verdict"] for c in got["checks"]] != ["error"] * len(checks)
        assert_same(got, duckdb_runs[checks])
    if not collected_too:
        return
    log = log_from_any(native)
    assert_same(comparable(fa.audit(log=log, checks=ALL, seed=3)), duckdb_runs[tuple(ALL)])
    assert log.table.materialised      # broome's per-event chances need the rows (stated in log_frames)


# ---------------------------------------------------------------------------
# Dask: a LocalCluster of two worker processes, the log a partitioned Parquet directory
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow      # a 2-process LocalCluster: ~9 s
def test_dask_cluster_log_gives_the_duckdb_json(frame, duckdb_runs, dask_client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    directory = tmp_path / "log"
    dd.from_pandas(frame, npartitions=4).to_parquet(directory, write_index=False)
    assert len(list(directory.glob("*.parquet"))) == 4
    ddf = dd.read_parquet(directory)
    assert ddf.npartitions == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # narwhals' note that Dask moves to narwhals-dask
        _same_audits(ddf, duckdb_runs)
    assert len(dask_client.scheduler_info()["workers"]) == 2


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
    its row; a text ``selected`` column (yes/no), which only the SQL rules parse, is read by
    collecting the rows — and gives the same counts as pandas."""
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
        words = f.assign(selected=np.where(f["selected"] == 1, "yes", "no"))
        wlog = log_from_any(dd.from_pandas(words, npartitions=2))
        assert wlog.table.materialised
        got = fa.audit(log=wlog, checks=["selection_rates"], seed=0).checks[0].tables["groups"]
        ref = fa.audit(log=f, checks=["selection_rates"], seed=0).checks[0].tables["groups"]
        pd.testing.assert_frame_equal(got, ref)


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


@pytest.mark.slow      # the JVM: ~30 s with its start-up
def test_spark_log_gives_the_duckdb_json(frame, duckdb_runs, spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=150)
    sdf = spark.read.parquet(str(path))
    # the collected fallback (broome) is engine-neutral and run on the Dask cluster above;
    # here only the pushed-down statistics, to keep the JVM's share of the suite small
    _same_audits(sdf, duckdb_runs, collected_too=False)


@pytest.mark.slow
def test_spark_malformed_log_names_row_and_column(frame, spark):
    bad = frame.copy()
    bad["score"] = bad["score"].astype(float)
    bad.loc[5, "score"] = np.nan
    with pytest.raises(LogError, match=r"row 6, column 'score': missing"):
        log_from_any(spark.createDataFrame(bad))
