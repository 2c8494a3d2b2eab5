"""Regenerate the example assignment log: ``python examples/make_assignment_log.py``.

``logs/assignment_log.csv``: one logged year (``decision_id`` 2025) of T = 600
arrivals drawn from fairaudit's ``iid`` scenario (3 groups g0/g1/g2 of about 50/30/20%,
10 locations, seed 003's setting), assigned online by ``allocators/greedy_assign.py``
with capacities ``ceil(ρ_i T)``. Columns: ``decision_id``, ``arrival``, ``group``,
``location``, scores ``w_0 … w_9`` and ``outcome`` (realised employment, drawn as
Bernoulli of the assigned location's score, so scores are calibrated). The
capacities used are printed; pass them to the audit with
``--param min_requirement.capacities=...`` (otherwise the audit uses the realised
occupancy of each location).

Deterministic: seeded with 2026.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.checks.min_requirement.assignment import scenario

HERE = Path(__file__).resolve().parent


def _greedy():
    spec = importlib.util.spec_from_file_location("greedy_assign", HERE / "allocators" / "greedy_assign.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.assign


def assignment_log(rng, T=600, year=2025):
    y = scenario("iid").draw(T, rng)
    loc = np.asarray(_greedy()(y.scores, y.groups, y.capacities, rng))
    got = np.where(loc >= 0, y.scores[np.arange(T), np.maximum(loc, 0)], 0.0)
    outcome = (rng.random(T) < got).astype(int)
    frame = pd.DataFrame({"decision_id": year, "arrival": np.arange(1, T + 1),
                          "group": [y.group_names[g] for g in y.groups], "location": loc})
    for i in range(y.N):
        frame[f"w_{i}"] = np.round(y.scores[:, i], 4)
    frame["outcome"] = outcome
    return frame, y.capacities


def main():
    rng = np.random.default_rng(2026)
    frame, caps = assignment_log(rng)
    (HERE / "logs").mkdir(exist_ok=True)
    frame.to_csv(HERE / "logs" / "assignment_log.csv", index=False)
    print("capacities:", ",".join(str(int(c)) for c in caps))


if __name__ == "__main__":
    main()
