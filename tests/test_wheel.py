"""Build a wheel, install it into a fresh virtual environment and run `fairaudit check`
from it — so a mistake in the directory mapping (checks/ → fairaudit.checks,
report_templates/ → fairaudit.report_templates) cannot hide behind the editable install.
It also runs the README's first command exactly as written and checks what the README
says it does.

The venv sees the outer environment's site-packages for the heavy dependencies
(numpy, scipy, …) so the test needs no network: a ``.pth`` line puts them on its path
(``system_site_packages`` alone is not enough when the outer environment is itself a
venv, as in CI, whose packages are not the base interpreter's). The wheel is installed
with --no-deps into the venv itself, and the test asserts that the fairaudit it runs is
the wheel's.
"""
import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path):
    dist = tmp_path / "dist"
    # An isolated build, as a user's `pip install .` would do it (fetches the build
    # backend from the package index); without network, build in this environment.
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                                str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheels = list(dist.glob("fairaudit_audit-*.whl"))
    assert len(wheels) == 1
    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "fairaudit/checks/selection_rates.py" in names
    assert "fairaudit/report_templates/report.html.j2" in names
    assert "fairaudit/report_templates/report.css" in names
    assert "fairaudit/schema/result-v2.schema.json" in names      # the published JSON Schema of the result
    assert "fairaudit/schema/config.schema.json" in names         # the one definition of the configuration keys

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    venv_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    # A plain path line: the outer dirs go on sys.path after the venv's own, and their
    # .pth files (such as the outer editable install's finder) are not processed.
    outer = [p for p in site.getsitepackages() if Path(p).is_dir() and Path(p) != Path(venv_site)]
    (Path(venv_site) / "_outer_env.pth").write_text("\n".join(outer) + "\n")
    # Install with the outer pip, targeting the venv's interpreter.
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                           "--no-index", "--force-reinstall", str(wheels[0])], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run([str(py), "-c", "import fairaudit, fairaudit.checks.selection_rates as m; "
                            "print(fairaudit.__file__); print(m.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert str(env_dir) in line, f"imported {line}, not the wheel installed in the venv"

    schema = subprocess.run([str(py), "-c", "from fairaudit.result import result_schema; "
                             "print(result_schema()['properties']['schema_version']['const'])"],
                            capture_output=True, text=True, cwd=work, env=env)
    assert schema.returncode == 0 and schema.stdout.strip() == "2", schema.stderr

    exe = env_dir / "bin" / "fairaudit"
    _readme_command_works(exe, tmp_path, env)
    run = subprocess.run([str(exe), "check", str(ROOT / "examples" / "allocators" / "top_k.py"), "--checks",
                          "selection_rates", "--data", str(ROOT / "examples" / "data" / "population.csv"),
                          "--json", "r.json", "--html", "r.html"], capture_output=True, text=True, cwd=work, env=env)
    assert run.returncode == 1, run.stdout + run.stderr     # top-k fails the four-fifths rule
    d = json.loads((work / "r.json").read_text())
    assert d["checks"][0]["verdict"] == "fail"
    assert "<svg" in (work / "r.html").read_text()


def _readme_command_works(exe: Path, tmp_path: Path, env: dict) -> None:
    """The README's first command, as written (after its `pip install . &&`), from the
    wheel's venv in a directory holding the examples; and what the README says of it."""
    import re
    import shlex
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1]
    block = next(b for b in re.findall(r"```bash\n(.*?)\n```", setup, re.S) if b.startswith("pip install . &&"))
    assert block.startswith("pip install . && fairaudit check "), block
    args = shlex.split(block.split("&&", 1)[1])
    assert args[0] == "fairaudit"
    work = tmp_path / "readme"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    run = subprocess.run([str(exe), *args[1:], "--json", "r.json"], capture_output=True, text=True, cwd=work, env=env)
    assert (work / "fairaudit-report.html").is_file(), run.stdout + run.stderr
    verdicts = {c["id"]: c["verdict"] for c in json.loads((work / "r.json").read_text())["checks"]}
    # what the README's Set up paragraph says of this run (update it when this changes)
    assert verdicts == {"broome": "pass", "anonymity": "pass", "selection_rates": "pass"}, verdicts
    assert run.returncode == 0 and "so it exits 0" in readme, run.stdout + run.stderr
    # ... and of the run without --checks: every applicable check, tv_stability fails.
    i = args.index("--checks")
    full = subprocess.run([str(exe), *args[1:i], *args[i + 2:], "--json", "full.json"], capture_output=True,
                          text=True, cwd=work, env=env)
    verdicts = {c["id"]: c["verdict"] for c in json.loads((work / "full.json").read_text())["checks"]}
    assert "error" not in verdicts.values(), verdicts
    assert verdicts["tv_stability"] == "fail" and full.returncode == 1, verdicts
    assert "also fails `tv_stability`" in readme.replace("\n", " ")
