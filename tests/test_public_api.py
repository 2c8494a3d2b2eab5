"""The public surface is pinned: what ``import fairaudit`` and ``fairaudit.strategies``
offer is a decision, not an accident — a name added or removed here changes this test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fairaudit
import fairaudit.strategies

PUBLIC = ["__version__", "selector", "ranker", "assigner", "decider", "Instance", "Target", "load_target",
          "target_from_callable", "Sampler", "Estimate", "FairauditError", "TargetError", "DataError",
          "LogError", "AllocatorError", "audit", "CheckResult", "AuditResult", "Statistic",
          "ua_marginals", "ua_sample", "ua_position_given_label", "ua_marginals_iid",
          "simulate_pool", "simulate_pools", "epsilon_hat"]
STRATEGIES = ["claims", "selection_instances", "ranking_instances", "permutations_for", "relabellings",
              "claim_vectors", "generated_selection_instances", "assignment_instances", "populations"]


def test_fairaudit_all_is_pinned_and_every_name_resolves():
    assert sorted(fairaudit.__all__) == sorted(PUBLIC)
    for name in fairaudit.__all__:
        assert getattr(fairaudit, name) is not None, name


def test_dir_lists_the_names_loaded_on_first_use():
    """``dir(fa)`` shows ``audit`` and the other lazily loaded names (tab completion)."""
    listed = set(dir(fairaudit))
    assert set(PUBLIC) <= listed
    code = "import fairaudit as fa; print('audit' in dir(fa), 'CheckResult' in dir(fa))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_strategies_all_is_pinned():
    assert sorted(fairaudit.strategies.__all__) == sorted(STRATEGIES)
    for name in STRATEGIES:
        assert callable(getattr(fairaudit.strategies, name))


def test_one_home_for_instance():
    from fairaudit.instance import Instance
    assert fairaudit.Instance is Instance
    root = Path(__file__).resolve().parents[1]
    # inside the project, Instance is imported from its home only
    for path in list((root / "fairaudit").rglob("*.py")) + list((root / "checks").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("from") and " import " in line and "Instance" in line.split(" import ")[1] \
                    .replace("(", " ").replace(",", " ").split():
                assert line.split(" import ")[0].rstrip().endswith("instance"), f"{path.relative_to(root)}: {line.strip()}"


def test_typed_marker_ships():
    assert (Path(fairaudit.__file__).parent / "py.typed").exists()
