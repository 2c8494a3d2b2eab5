"""Decisions logs and population data: schemas, mapping, and errors that name the row
and column at fault."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.data import CLAIM_DISTRIBUTIONS, generate_claims, load_population, population_from_frame
from fairaudit.errors import DataError, LogError
from fairaudit.groups import categories
from fairaudit.logs.load import load_log, log_from_frame

ROOT = Path(__file__).resolve().parents[1]


def sel_frame():
    return pd.DataFrame({"decision_id": [1, 1, 1, 2, 2, 2], "score": [0.9, 0.5, 0.1, 0.8, 0.4, 0.3],
                         "selected": [1, 0, 0, 1, 0, 0], "sex": list("FMFMFM")})


def test_bundled_log_loads():
    log = load_log(ROOT / "examples" / "logs" / "selection_log.csv")
    assert log.kind == "selection" and log.n_decisions == 300
    assert log.group_cols == ["sex", "age_band"]
    # 4 of 20 selected per event, pick order 1..4 on the selected
    per = log.frame.groupby("decision_id")["selected"].sum()
    assert (per == 4).all()


def test_parquet_log_roundtrip(tmp_path):
    f = sel_frame()
    p = tmp_path / "log.parquet"
    f.to_parquet(p)
    log = load_log(p)
    assert log.kind == "selection" and len(log.frame) == 6


def test_missing_column_named():
    f = sel_frame().drop(columns=["score"])
    with pytest.raises(LogError, match="needs column\\(s\\) score") as e:
        log_from_frame(f, path="x.csv")
    assert e.value.column == "score"


def test_nan_and_wrong_type_name_row_and_column():
    f = sel_frame()
    f.loc[3, "score"] = np.nan
    with pytest.raises(LogError, match=r"row 4, column 'score': missing") as e:
        log_from_frame(f)
    assert e.value.row == 4
    f = sel_frame().astype({"score": object})
    f.loc[2, "score"] = "high"
    with pytest.raises(LogError, match=r"row 3, column 'score': 'high' is not a number"):
        log_from_frame(f)
    f = sel_frame()
    f.loc[5, "selected"] = 2
    with pytest.raises(LogError, match=r"row 6, column 'selected'"):
        log_from_frame(f)
    f = sel_frame().astype({"selected": object})
    f.loc[0, "selected"] = "maybe"
    with pytest.raises(LogError, match=r"row 1, column 'selected': 'maybe'"):
        log_from_frame(f)


def test_column_mapping_and_kind_detection():
    f = sel_frame().rename(columns={"selected": "hired", "score": "rating"})
    with pytest.raises(LogError, match="cannot tell the decision kind"):
        log_from_frame(f)
    log = log_from_frame(f, columns={"selected": "hired", "score": "rating"})
    assert log.kind == "selection" and log.frame["selected"].sum() == 2
    with pytest.raises(LogError, match="'nope' \\(mapped to 'score'\\)"):
        log_from_frame(f, columns={"score": "nope"})


def test_ranking_log_positions_must_be_permutations():
    f = pd.DataFrame({"decision_id": [1, 1, 1], "position": [1, 2, 2], "score": [0.1, 0.2, 0.3]})
    with pytest.raises(LogError, match=r"row 3, column 'position'"):
        log_from_frame(f)
    f.loc[2, "position"] = 3
    assert log_from_frame(f).kind == "ranking"


def test_assignment_log_requires_scores():
    f = pd.DataFrame({"decision_id": [0, 0], "arrival": [0, 1], "group": ["a", "b"], "location": [0, 1]})
    with pytest.raises(LogError, match="w_0"):
        log_from_frame(f)
    f["w_0"], f["w_1"] = [0.5, 0.2], [0.1, 0.9]
    log = log_from_frame(f)
    assert log.kind == "assignment" and log.group_cols[0] == "group" and log.score_cols == ["w_0", "w_1"]


def test_population_roles_and_errors(tmp_path):
    pop = load_population(ROOT / "examples" / "data" / "population.csv")
    assert pop.group_cols == ["sex", "age_band"] and pop.score_col == "score" and pop.label_col == "label"
    assert pop.n == 200 and len(pop.sha256) == 64
    bad = pd.DataFrame({"score": [0.1, "x"], "g": ["a", "b"]})
    with pytest.raises(DataError, match=r"row 2, column 'score'"):
        population_from_frame(bad)
    with pytest.raises(DataError, match="not found"):
        load_population(tmp_path / "none.csv")
    with pytest.raises(DataError, match="group column"):
        population_from_frame(pd.DataFrame({"score": [0.1]}), groups=["race"])


def test_categories_with_intersections():
    f = pd.DataFrame({"a": ["x", "y", "x"], "b": ["u", "u", "v"]})
    cats = categories(f, ["a", "b"], depth=2)
    names = [c.name for c in cats]
    assert names == ["a = x", "a = y", "b = u", "b = v", "a × b = x × u", "a × b = x × v", "a × b = y × u"]
    assert cats[-1].mask.tolist() == [False, True, False]


@pytest.mark.parametrize("dist", CLAIM_DISTRIBUTIONS)
def test_claim_generators_positive_and_bounded(dist):
    c = generate_claims(dist, 1000, np.random.default_rng(0))
    assert c.shape == (1000,) and (c > 0).all() and (c <= 1).all()
    assert np.array_equal(c, generate_claims(dist, 1000, np.random.default_rng(0)))
