"""``exposure`` and ``ranked_representation`` on a ranking log held by Dask or Spark give
the JSON of the DuckDB run on the same rows (floats to 1e-12), computed on the engine:
the rows are never collected (``LazyLogTable.materialised`` stays false)."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.logs import log_from_any

CHECKS = ["exposure", "ranked_representation"]


def ranking_log(decisions=50, n=8, seed=6):
    rng = np.random.default_rng(seed)
    rows = decisions * n
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(decisions), n),
                      "individual_id": np.concatenate([rng.choice(100, n, replace=False) for _ in range(decisions)]),
                      "sex": rng.choice(["F", "M"], rows), "age_band": rng.choice(["a", "b"], rows),
                      "label": rng.integers(0, 2, rows)})
    f["p_1"] = np.clip(0.5 * f["label"] + 0.5 * rng.random(rows), 0, 1).round(3)
    f["p_0"] = 1 - f["p_1"]
    key = f["p_1"] + 0.3 * rng.standard_normal(rows) - 0.3 * (f["sex"] == "F")
    f["position"] = key.groupby(f["decision_id"]).rank(ascending=False, method="first").astype(int)
    return f


PARAMS = {"exposure": {"models": "dcg, geometric:0.5-0.75"}, "ranked_representation": {"k": 6}}


def comparable(result) -> dict:
    label = result.target.get("path") if isinstance(result.target, dict) else None
    text = result.to_json()
    if label:
        text = text.replace(json.dumps(label)[1:-1], "LOG")
    d = json.loads(text)
    d.pop("created")
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
    return ranking_log()


@pytest.fixture(scope="module")
def duckdb_run(frame):
    import duckdb
    run = comparable(fa.audit(log=duckdb.from_df(frame), checks=CHECKS, seed=3, params=PARAMS))
    assert [c["verdict"] for c in run["checks"]] != ["error", "error"]
    assert all(c["verdict"] in ("pass", "fail", "inconclusive") for c in run["checks"]), run["checks"]
    return run


def _same(native, duckdb_run):
    log = log_from_any(native)
    got = comparable(fa.audit(log=log, checks=CHECKS, seed=3, params=PARAMS))
    assert not log.table.materialised, "the statistics were not computed on the engine"
    assert_same(got, duckdb_run)


def test_the_pandas_log_gives_the_duckdb_json(frame, duckdb_run):
    assert_same(comparable(fa.audit(log=frame, checks=CHECKS, seed=3, params=PARAMS)), duckdb_run)


@pytest.mark.slow      # ~5 s of Dask graphs on 2 cores; the pandas run above stays in the fast lane
def test_dask_log_gives_the_duckdb_json(frame, duckdb_run):
    dd = pytest.importorskip("dask.dataframe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _same(dd.from_pandas(frame, npartitions=3), duckdb_run)


@pytest.fixture(scope="module")
def spark():
    import shutil
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (.ci/run installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession
    s = (SparkSession.builder.master("local[2]").appName("fairaudit-test-rank")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", "2").config("spark.driver.memory", "512m").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.mark.slow      # the JVM's start-up
def test_spark_log_gives_the_duckdb_json(frame, duckdb_run, spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = tmp_path / "rank.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)
    _same(spark.read.parquet(str(path)), duckdb_run)
