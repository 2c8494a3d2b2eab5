"""A CLI a new user can find their way in (issue 19, item 6): examples and exit codes in
`check --help`, a notice when the kind was guessed from a name, a PYTHONPATH hint for
module:function targets, sibling imports of an allocator file, --no-html."""
import json
import re
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairaudit.cli import main

ROOT = Path(__file__).resolve().parents[1]
POP = str(ROOT / "examples" / "data" / "population.csv")


def _cli(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_check_help_shows_examples_exit_codes_and_no_html(tmp_path):
    out = _cli(["check", "--help"], tmp_path).output
    assert "Examples:\n    fairaudit check my_allocator.py --data people.csv" in out
    assert "Exit codes:" in out and "0  every check that could run passed" in out
    assert "1  a check failed or errored" in out and "2  the audit could not start" in out
    assert "check named in --checks that cannot run" in " ".join(out.split()) and "--allow-skip" in out
    assert "--no-html" in out and "the current folder (the same with --in-process)" in " ".join(out.split())


def test_no_html_and_html_dash_write_no_report(tmp_path):
    lottery = ROOT / "examples" / "allocators" / "uniform_lottery.py"
    for flag in (["--no-html"], ["--html", "-"]):
        res = _cli(["check", lottery, "--checks", "selection_rates", "--data", POP, "--draws", "500", *flag], tmp_path)
        assert res.exit_code in (0, 1), res.output
        assert not list(tmp_path.glob("*.html")) and not (tmp_path / "-").exists()
        assert "report:" not in res.stdout and "→" not in res.stdout


def test_a_kind_guessed_from_the_name_is_noticed(tmp_path):
    (tmp_path / "guess.py").write_text(textwrap.dedent('''
        def lottery(scores, rng):
            return rng.choice(len(scores), size=3, replace=False)
    '''))
    (tmp_path / "marked.py").write_text(textwrap.dedent('''
        import fairaudit as fa

        @fa.selector(k=3)
        def lottery(scores, rng):
            return rng.choice(len(scores), size=3, replace=False)
    '''))
    (tmp_path / "guess_rank.py").write_text(textwrap.dedent('''
        def rank_people(scores, rng):
            return rng.permutation(len(scores))
    '''))
    res = _cli(["check", "guess_rank.py", "--checks", "determinism", "--draws", "300", "--no-html", "--json", "g.json"],
               tmp_path)
    assert res.exit_code in (0, 1), res.output
    assert "The kind of 'rank_people' (ranking) was guessed from its name" in res.output and "@fa.ranker" in res.output
    assert any("guessed from its name" in w for w in json.loads((tmp_path / "g.json").read_text())["warnings"])
    # a selection guessed from the name has no k: the k it returns is hard-coded, a setup problem (exit 2)
    res = _cli(["check", "guess.py", "--checks", "broome", "--draws", "300", "--no-html"], tmp_path)
    assert res.exit_code == 2, res.output
    assert "its kind, selection, was guessed from its name" in res.output and "@fa.selector(k=3)" in res.output
    res = _cli(["check", "marked.py", "--checks", "broome", "--draws", "300", "--no-html"], tmp_path)
    assert "guessed" not in res.output


def test_module_function_that_cannot_be_imported_gets_a_pythonpath_hint(tmp_path):
    res = _cli(["check", "no_such_pkg_19.scoring:allocate", "--no-html"], tmp_path)
    assert res.exit_code == 2
    assert "cannot import module 'no_such_pkg_19.scoring'" in res.output
    assert "neither on Python's path nor in the current folder" in res.output and "pip install -e ." in res.output


@pytest.mark.parametrize("mode", [[], ["--in-process"]])
def test_module_function_resolves_from_the_current_folder_in_both_modes(tmp_path, mode):
    """Isolated (the default) and --in-process import module:function alike: Python's path,
    then the current folder (issue 32: they disagreed)."""
    pkg = tmp_path / "pkg_32"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(textwrap.dedent('''
        import fairaudit as fa

        @fa.selector(k=2)
        def allocate(scores, k, rng):
            return rng.choice(len(scores), size=k, replace=False)
    '''))
    import sys
    saved = list(sys.path)
    try:
        res = _cli(["check", "pkg_32.mod:allocate", "--checks", "broome", "--draws", "200", "--no-html", *mode], tmp_path)
    finally:
        sys.path[:] = saved
        sys.modules.pop("pkg_32.mod", None)
        sys.modules.pop("pkg_32", None)
    assert res.exit_code in (0, 1), res.output
    assert "BROOME" not in res.output and "broome" in res.output


def test_an_allocator_file_imports_its_siblings(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "helpers_19.py").write_text("def pick(rng, n, k):\n    return rng.choice(n, size=k, replace=False)\n")
    (proj / "alloc.py").write_text(textwrap.dedent('''
        import fairaudit as fa
        from helpers_19 import pick

        @fa.selector(k=5)
        def allocate(scores, k, rng):
            return pick(rng, len(scores), k)
    '''))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = _cli(["check", proj / "alloc.py", "--checks", "selection_rates", "--data", POP, "--draws", "500",
                "--no-html", "--json", "r.json"], elsewhere)
    assert res.exit_code in (0, 1), res.output
    assert json.loads((elsewhere / "r.json").read_text())["checks"][0]["verdict"] != "error"


def test_checks_broome_prints_definition_parameters_data_and_an_example(tmp_path):
    res = _cli(["checks", "broome"], tmp_path)
    assert res.exit_code == 0
    out = res.output
    assert out.startswith("broome — Broome-Fairness") and "BF.1" in out and "BF.2" in out     # the definition
    assert "applies to: selections (k of n) and per-person yes/no decisions, from an allocator or a log" in out
    assert "needs: " in out and "example: fairaudit check my_allocator.py --checks broome" in out
    assert "parameters (--param broome.NAME=VALUE):" in out
    for name in ("bins", "min_gain", "min_chance"):
        assert re.search(rf"^  {name} = \S+  \(", out, re.M), name      # name = default (what it accepts)
