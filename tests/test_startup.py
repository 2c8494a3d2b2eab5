"""What the command line imports before it knows what it will run (issue 30): `fairaudit
--help`, `--version`, a subcommand's `--help` and an argument error answer without
loading numpy, scipy, pandas, matplotlib, DuckDB or Hypothesis. A set of modules, not a
time (times are benchmarks: benchmarks/bench_defaults.py and docs/PERFORMANCE.md)."""
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "pandas", "matplotlib", "duckdb", "hypothesis", "pyarrow", "sklearn")

PROBE = """
import sys
sys.argv = ["fairaudit"] + sys.argv[1:]
code = 0
try:
    from fairaudit.cli import main
    main()
except SystemExit as e:
    code = e.code
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules))
print("CODE", code)
"""


def _loaded(*args):
    run = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                         timeout=120)
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.startswith(("LOADED", "CODE")))
    assert "LOADED" in lines, run.stdout + run.stderr
    return lines["LOADED"], lines["CODE"], run.stdout


@pytest.mark.parametrize("args,code", [(["--help"], "0"), (["--version"], "0"), (["check", "--help"], "0"),
                                       (["check", "x.py", "--no-such-option"], "2"),
                                       (["check", "x.py", "--seed", "many"], "2")])
def test_command_line_answers_without_heavy_imports(args, code):
    loaded, got, out = _loaded(*args)
    assert got == code, out
    assert loaded == "[]", (args, loaded)


def test_the_probe_sees_heavy_imports():
    # the same probe reports them where a command does need them (the test can fail)
    run = subprocess.run([sys.executable, "-c", "import sys, fairaudit; fairaudit.Instance; "
                          f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"],
                         capture_output=True, text=True, timeout=120)
    assert "numpy" in run.stdout, run.stdout + run.stderr


def test_import_fairaudit_is_light_and_its_names_still_load():
    run = subprocess.run([sys.executable, "-c", "import sys, fairaudit as fa; before = 'numpy' in sys.modules; "
                          "fa.selector; fa.Instance; fa.Sampler; fa.load_target; fa.ua_marginals; "
                          "print(before, 'numpy' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["False", "True"], run.stdout + run.stderr
