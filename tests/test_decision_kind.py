"""The ``decision`` kind (issue 17): per-person yes/no rules marked ``@fa.decider``, their
output validation (messages name the problem and the input), and the hint a selector
returning a variable count gets. Run in isolated workers and in-process alike."""
import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.errors import AllocatorError
from fairaudit.instance import Instance
from fairaudit.run.sampler import Sampler
from fairaudit.run.targets import target_from_callable, validate_outcomes
from fairaudit.run.load import load_target

INST = Instance("people.csv", features=pd.DataFrame({"income": np.linspace(20, 80, 10)}),
                groups=pd.DataFrame({"sex": ["F", "M"] * 5}))


def test_decider_marks_the_kind_and_infers_from_the_name():
    @fa.decider
    def rule(features, rng):
        return features["income"].to_numpy() > 50
    assert target_from_callable(rule).kind == "decision"

    def decide(features):
        return features["income"].to_numpy() > 50
    assert target_from_callable(decide).kind == "decision"


@pytest.mark.parametrize("out, needle", [
    (np.ones(9, bool), "returned 9 decisions; expected one yes/no (boolean or 0/1) per individual, n=10"),
    (np.full(10, 0.5), "returned 0.5 for individual 0"),
    (np.r_[np.zeros(3), np.nan, np.zeros(6)], "returned NaN for individual 3"),
    (np.array(["y"] * 10), "returned values of type <U1"),
    ([[1, 0], [1]], "not an array of decisions"),
    (np.ones((2, 10)), "returned shape (1, 2, 10); expected one yes/no"),
])
def test_bad_decisions_are_refused_saying_what_was_wrong(out, needle):
    with pytest.raises(ValueError) as e:
        validate_outcomes("decision", [out] if not isinstance(out, list) else out, INST, 1, None)
    assert needle in str(e.value)


def test_zero_one_and_column_vectors_are_decisions():
    got = validate_outcomes("decision", [np.array([[1], [0]] * 5)], INST, 1, None)
    assert got.dtype == bool and got.shape == (1, 10) and got[0, :2].tolist() == [True, False]


def test_a_bad_decision_error_names_the_input_and_draw():
    @fa.decider
    def decide(features, rng):
        return np.ones(len(features) + 1, bool)
    with Sampler(target_from_callable(decide), 0) as s, pytest.raises(AllocatorError) as e:
        s.draw(INST, 4, "stream")
    assert "11 decisions" in str(e.value) and e.value.input_label == "people.csv" and e.value.draw == 0


def test_a_selector_with_a_variable_count_is_told_to_use_decider(tmp_path):
    f = tmp_path / "sel.py"
    f.write_text("import fairaudit as fa\n@fa.selector(k=3)\ndef allocate(scores, rng):\n"
                 "    return scores > 0.5\n")
    inst = Instance("pool", scores=np.linspace(0, 1, 10), k=3)
    with Sampler(load_target(str(f)), 0) as s, pytest.raises(AllocatorError) as e:
        s.draw(inst, 2, "x")
    assert "looks like a per-person rule" in str(e.value) and "@fa.decider" in str(e.value)


RULE = """import fairaudit as fa
import numpy as np

@fa.decider
def decide(features, rng, size):
    p = 1 / (1 + np.exp(-(features["income"].to_numpy() - 50) / 10))
    return rng.random((size, len(p))) < p
"""


def test_a_decider_is_audited_in_workers_and_in_process_with_the_same_result(tmp_path):
    in_process = False
    f = tmp_path / "rule.py"
    f.write_text(RULE)
    data = tmp_path / "people.csv"
    rng = np.random.default_rng(3)
    pd.DataFrame({"income": rng.normal(50, 10, 200).round(1), "sex": rng.choice(["F", "M"], 200)}).to_csv(data, index=False)
    r = fa.audit(str(f), checks=["selection_rates"], data=str(data), in_process=in_process, draws=512)
    c = r.checks[0]
    assert r.target["kind"] == "decision" and c.verdict in ("pass", "inconclusive")
    ref = fa.audit(str(f), checks=["selection_rates"], data=str(data), in_process=not in_process, draws=512)
    assert ref.checks[0].statistic == c.statistic
