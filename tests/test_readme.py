"""Every command README.md shows runs as written, and does what the README says of it
(issue 19): the exit code and the verdicts stated in its comment (``# exit 1;
tv_stability=fail``), for the commands in its ``bash`` blocks and in the table's "try it"
column, from a copy of the repository's examples so that nothing is written into the tree.

Left out, and said so here: creating the venv and `pip install .` (tests/test_wheel.py
builds and installs the wheel into a fresh venv and runs the Set up command from it), and
the test suite's own commands (`pytest`, `pytest -m "not slow"`), which are this suite.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fairaudit.headline import headline
from fairaudit.result import loads
from test_report_readers import assert_headline_agrees, finding_conflicts

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VERDICT_LINE = re.compile(r"^(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\s+(\S+)", re.M)
NOT_RUN = {'python3 -m venv .venv && . .venv/bin/activate', 'pip install -e ".[test]" && pytest', 'pytest -m "not slow"',
           # "Audit on a cluster" needs a running Dask cluster; tests/test_dask.py runs the same audit on a
           # LocalCluster and checks that its JSON equals the local run's
           'dask scheduler', 'dask worker tcp://HOST:8786 --nthreads 1',
           'fairaudit check my_allocator.py --data people.csv --scheduler tcp://HOST:8786'}


def readme_commands() -> list[tuple[str, str]]:
    """(command line, expectation comment) in the README's order: the bash blocks' lines
    and the table's "try it" commands (their expectation follows in the cell)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)\n```", README, re.S):
        for line in block.splitlines():
            cmd, _, comment = line.partition("#")
            if cmd.strip():
                out.append((cmd.strip(), comment.strip()))
    for cmd, comment in re.findall(r"\| `(fairaudit check [^`]+)` \(([^)]*exit \d[^)]*)\)", README):
        out.append((cmd, comment))
    return out


def expectation(comment: str) -> tuple[int | None, dict, str | None]:
    m = re.search(r"\bexits? (\d)", comment)
    code = int(m.group(1)) if m else None
    verdicts = dict(re.findall(r"(\w+)=(pass|fail|error|inconclusive|skipped)", comment))
    passed = re.search(r"(\d+ passed)", comment)
    return code, verdicts, passed.group(1) if passed else None


def _exe(name: str) -> list[str]:
    if name == "fairaudit":
        script = Path(sys.executable).parent / "fairaudit"
        return [str(script)] if script.is_file() else [sys.executable, "-m", "fairaudit.cli"]
    if name == "pytest":
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    raise AssertionError(f"README command starts with {name!r}; teach tests/test_readme.py to run it")


def test_every_readme_command_has_a_stated_outcome():
    cmds = readme_commands()
    assert len(cmds) >= 15
    for cmd, comment in cmds:
        if cmd in NOT_RUN or cmd.startswith("pip install . && fairaudit check") or cmd.startswith("cd "):
            continue
        if cmd.startswith("fairaudit check") or cmd.startswith("PYTHONPATH") or "pytest" in cmd or \
                cmd.startswith(("fairaudit compare", "fairaudit report", "fairaudit checks")):
            assert expectation(comment)[0] is not None, f"README states no exit code for: {cmd}"


def readme_runs() -> list[tuple[str, str, str, str]]:
    """Each command the README shows, as ``(id, folder relative to the repository, command,
    expectation)``: the folder is where the README's ``cd`` lines leave it. The Set up
    command is run after its install, and again without ``--checks`` (what the README says
    of that); the commands not run here (``NOT_RUN``) are left out."""
    cwd, out = Path("."), []
    for line, comment in readme_commands():
        if line in NOT_RUN:
            continue
        if line.startswith("pip install . && "):       # the Set up command, after its install
            line = line.split("&& ", 1)[1]
            out.append(("set-up", ".", line, "exit 0; broome=pass, anonymity=pass, selection_rates=pass"))
            words = shlex.split(line)
            every = " ".join(w for i, w in enumerate(words) if w != "--checks" and words[i - 1] != "--checks")
            out.append(("set-up-every-check", ".", every, "exit 1; tv_stability=fail"))
            continue
        parts = [p.strip() for p in line.split("&&")]
        if all(p.startswith("cd ") for p in parts):
            for p in parts:
                cwd = Path(os.path.normpath(cwd / p[3:].strip()))
            continue
        out.append((re.sub(r"\W+", "-", line).strip("-")[:48], str(cwd), line, comment))
    assert cwd == Path("."), "the README's cd commands should return to the repository root"
    return out


RUNS = readme_runs()


def _writer_of(path: Path, earlier) -> tuple | None:
    """The earlier README command whose ``--json`` (or ``--record``: a service's recording)
    writes ``path`` (a command that reads a file another command wrote runs after it, in the
    same copy)."""
    for run in earlier:
        words = shlex.split(run[2])
        for opt in ("--json", "--record"):
            if opt in words and Path(os.path.normpath(Path(run[1]) / words[words.index(opt) + 1])) == path:
                return run
    return None


#: background processes a README line started (`... &`: the example service), stopped by the test
_BACKGROUND: list = []


def _start_background(words: list[str], cwd: Path, env: dict, said: str) -> None:
    """A README line ending in `&` (the example service): started, awaited until it answers
    on $EXAMPLE_SERVICE_PORT, left running for the lines after it; the test stops it."""
    import time
    import urllib.request
    assert words[0] == "python", f"teach tests/test_readme.py to start {words[0]!r} in the background"
    proc = subprocess.Popen([sys.executable, *words[1:]], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _BACKGROUND.append(proc)
    end = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"{said}: it exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{env['EXAMPLE_SERVICE_PORT']}/stats", timeout=2):
                return
        except OSError:
            assert time.monotonic() < end, f"{said}: not answering after 60 s"
            time.sleep(0.2)


def _free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run_line(root: Path, rel: str, line: str, comment: str, env: dict) -> None:
    cwd = (root / rel).resolve()
    for part in [p.strip() for p in line.split("&&")]:
        if part.startswith("cd "):
            cwd = (cwd / part[3:].strip()).resolve()
            continue
        if part.endswith("&"):
            _start_background(shlex.split(part[:-1]), cwd, env, f"`{part}` (README: {comment})")
            continue
        words = shlex.split(part)
        extra = {}
        while "=" in words[0] and not words[0].startswith("-"):
            k, v = words.pop(0).split("=", 1)
            extra[k] = v
        saved = None
        if words[:2] == ["fairaudit", "check"] and "--json" not in words:
            # keep each audit's result: its headlines and findings must agree (below)
            saved = root / f"readme-result-{len(list(root.glob('readme-result-*.json')))}.json"
            words = words + ["--json", str(saved)]
        run = subprocess.run(_exe(words[0]) + words[1:], cwd=cwd, env={**env, **extra}, capture_output=True,
                             text=True, timeout=900)
        code, verdicts, passed = expectation(comment)
        said = f"`{part}` (README: {comment}) in {cwd}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
        assert run.returncode == code, said
        quoted = re.search(r'"([^"]+)"', comment)       # the line the README quotes is printed
        if quoted:
            assert quoted.group(1) in run.stdout + run.stderr, said
        got = {cid: v.lower() for v, cid in VERDICT_LINE.findall(run.stdout)}
        assert all(got.get(c) == v for c, v in verdicts.items()), (got, said)
        if passed:
            assert passed in run.stdout, said
        if saved is not None and saved.exists():      # (exit 2: the audit did not start, no JSON)
            # every check the README runs: the headline's figures are the statistic's and the
            # finding quotes no interval that reads as the statistic but is not (issue 19)
            d = loads(saved.read_text())
            for c in d["checks"]:
                assert_headline_agrees(c, headline(c, float(d["config"]["confidence"])))
                assert not finding_conflicts(c), (part, finding_conflicts(c))
    assert cwd == (root / rel).resolve(), f"`{line}` should end in the folder it started from"


def test_the_readme_states_what_its_set_up_command_does():
    assert "so it exits 0" in README and "passes Broome-Fairness, anonymity and the four-fifths rule" in README
    # "Leave out --checks to run every applicable check: the lottery then also fails tv_stability (exit 1)"
    assert "also fails `tv_stability`\n(exit 1)" in README
    lines = [r[2] for r in RUNS]
    assert any(r.startswith("fairaudit compare") for r in lines) and any("my_package.module:allocate" in r for r in lines)
    assert len(RUNS) >= 15
    # the README's audits cover most checks (each has its headline-agreement test above)
    named = {c for r in RUNS for w, c in zip(shlex.split(r[2]), shlex.split(r[2])[1:]) if w == "--checks"
             for c in c.split(",")}
    assert len(named) >= 11, sorted(named)


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=[r[0] for r in RUNS])
def test_every_readme_command_runs_as_written(run, tmp_path):
    """One README command (after the one whose output it reads, if any), in a fresh copy
    of the examples: the exit code and verdicts it states."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.html", "result.json"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["EXAMPLE_SERVICE_PORT"] = str(_free_port())       # the example service's port, for its lines only
    before = []
    words = shlex.split(run[2])
    if "examples/service/" in run[2] and not run[2].endswith("&"):     # it audits the example service: start it
        before += [r for r in RUNS[:RUNS.index(run)] if r[2].endswith("&") and "examples/service/" in r[2]]
    for i, word in enumerate(words):
        path = Path(os.path.normpath(Path(run[1]) / word))
        if word.endswith((".json", ".jsonl")) and words[i - 1] not in ("--json", "--record") \
                and not (tmp_path / path).exists():
            writer = _writer_of(path, RUNS[:RUNS.index(run)])
            assert writer is not None, f"`{run[2]}` reads {word}, which no earlier README command writes"
            before.append(writer)
    try:
        for rel, line, comment in [(r[1], r[2], r[3]) for r in before] + [(run[1], run[2], run[3])]:
            _run_line(tmp_path, rel, line, comment, env)
    finally:
        while _BACKGROUND:
            proc = _BACKGROUND.pop()
            proc.terminate()
            proc.wait(30)


# ---------------------------------------------------------------------------
# Issue 32: the claims the README makes about the CI gate, configuration, outputs and
# installation, each run here (fast: no check draws, or a few hundred)

def _cli(args, cwd):
    from click.testing import CliRunner

    from fairaudit.cli import main
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_ci_section_says_what_each_exit_code_means_for_a_requested_check(tmp_path):
    flat = _flat(README)
    assert ("stops the audit before anything is drawn: **exit 2**, one line per check naming what is missing and "
            "the option that supplies it") in flat
    assert "With `--allow-skip` it is skipped instead, with its reason: **exit 0**" in flat
    assert "or **exit 1** with `--require`" in flat
    assert "when none could run, nothing was audited: **exit 2** (0 with `--allow-skip`)" in flat
    assert ("A requested check that finds only while it runs that it cannot (an allocator's declared k larger than "
            "the check's built-in inputs) is skipped, its JSON and report written, and the audit exits 2 all the same "
            "(0 with `--allow-skip`)") in flat
    (tmp_path / "k40.py").write_text("import fairaudit as fa\n\n@fa.selector(k=40)\ndef allocate(scores, k, rng):\n"
                                     "    return rng.choice(len(scores), size=k, replace=False)\n")
    res = _cli(["check", "k40.py", "--checks", "ex_interim", "--json", "late.json", "--no-html"], tmp_path)
    assert res.exit_code == 2 and loads((tmp_path / "late.json").read_text())["checks"][0]["verdict"] == "skipped"
    assert _cli(["check", "k40.py", "--checks", "ex_interim", "--allow-skip", "--no-html"], tmp_path).exit_code == 0
    top_k = ROOT / "examples" / "allocators" / "top_k.py"
    res = _cli(["check", top_k, "--checks", "selection_rates", "--no-html"], tmp_path)
    assert res.exit_code == 2
    assert ("fairaudit: error: selection_rates needs population data with group columns; none was given — give "
            "--data FILE") in res.output
    res = _cli(["check", top_k, "--checks", "selection_rates", "--allow-skip", "--no-html"], tmp_path)
    assert res.exit_code == 0 and re.search(r"^SKIPPED\s+selection_rates", res.output, re.M)
    res = _cli(["check", top_k, "--checks", "selection_rates", "--allow-skip", "--require", "--no-html"], tmp_path)
    assert res.exit_code == 1
    # the README's two example lines are what fairaudit prints
    for quoted in ("selection_rates needs group columns: found sex (0/1 coded, read as numeric) in people01.csv — "
                   "give --groups sex", "broome needs a score column: columns are id, rating, sex — give --columns "
                   "score=rating"):
        assert quoted in flat
    import pandas as pd
    people = pd.read_csv(ROOT / "examples" / "tour" / "people.csv")
    people.assign(sex=(people["sex"] == "M").astype(int))[["id", "score", "sex", "label"]].to_csv(
        tmp_path / "people01.csv", index=False)
    people.rename(columns={"score": "rating"})[["id", "rating", "sex"]].to_csv(tmp_path / "people_r.csv", index=False)
    res = _cli(["check", top_k, "--checks", "selection_rates", "--data", "people01.csv", "--no-html"], tmp_path)
    assert res.exit_code == 2 and "selection_rates needs group columns: found sex (0/1 coded, read as numeric) in " \
                                  "people01.csv — give --groups sex" in res.output
    res = _cli(["check", top_k, "--checks", "broome", "--data", "people_r.csv", "--no-html"], tmp_path)
    assert res.exit_code == 2 and "broome needs a score column: columns are id, rating, sex — give --columns " \
                                  "score=rating" in res.output


def test_the_distribution_name_is_this_projects_and_every_install_command_installs_this_checkout():
    import tomllib

    from fairaudit.extras import DISTRIBUTION, install_hint
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "fairaudit-audit"
    assert f"the distribution is named `{DISTRIBUTION}`" in README
    assert project["scripts"]["fairaudit"] == "fairaudit.cli:main"          # the command keeps its name
    docs = [README] + [p.read_text() for p in (ROOT / "docs").glob("*.md")] + \
        [p.read_text() for p in (ROOT / "examples").rglob("*.md")]
    for text in docs:
        # "fairaudit" on the registry is another project: no command may install it
        assert not re.search(r"pip install\s+[\"']?fairaudit\b", text), re.search(r"pip install\s+\S+", text)
        for cmd in re.findall(r"pip install ([^`\n]+)", text):
            target = [w for w in shlex.split(cmd.split("&&")[0]) if not w.startswith("-")][0]
            assert target.startswith("."), cmd                 # this checkout (".", ".[extra]")
    extras = set(project["optional-dependencies"])
    for extra in re.findall(r'pip install -e "\.\[(\w+)\]"', " ".join(docs)):
        assert extra in extras, extra
    assert install_hint("models") == 'pip install -e ".[models]" in the fairaudit checkout (the models extra of ' \
                                     'fairaudit-audit)'
    src = " ".join(p.read_text() for p in (ROOT / "fairaudit").rglob("*.py"))
    assert 'pip install "fairaudit' not in src and "pip install fairaudit" not in src


def test_simulate_needs_out_as_the_readme_says(tmp_path):
    assert "`fairaudit simulate --out pools.csv` writes seed 004's cross-population pools" in README
    assert "(`--out` is required;" in README
    res = _cli(["simulate"], tmp_path)
    assert res.exit_code == 2 and "--out" in res.output
    res = _cli(["simulate", "--out", "pools.csv"], tmp_path)
    assert res.exit_code == 0 and (tmp_path / "pools.csv").read_text().startswith("id,score,population")


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["isolated", "in-process"])
def test_module_function_resolves_alike_in_both_modes_as_the_readme_says(mode, tmp_path):
    assert ("imported from Python's path and, after it, the current folder — the same way in the default isolated "
            "mode and with `--in-process`") in _flat(README)
    tour = tmp_path / "tour"
    shutil.copytree(ROOT / "examples" / "tour", tour, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
    saved = list(sys.path)
    try:
        res = _cli(["check", "my_package.module:allocate", "--checks", "min_requirement", "--allow-skip", "--no-html",
                    *mode], tour)
        missing = _cli(["check", "no_such_module_32:allocate", "--no-html", *mode], tour)
    finally:
        sys.path[:] = saved
        for m in [m for m in sys.modules if m == "my_package" or m.startswith("my_package.")]:
            del sys.modules[m]
    assert res.exit_code == 0, res.output
    assert missing.exit_code == 2 and "neither on Python's path nor in the current folder" in missing.output


def test_a_kind_guessed_from_the_name_is_printed_as_a_warning(tmp_path):
    flat = _flat(README)
    assert "guessed from its name (`rank…`, `assign…`, `decide…`, `select…`/`choose…`/`lottery…`); a guess is " \
           "printed as a warning (and kept in the JSON's `warnings`)" in flat
    (tmp_path / "r.py").write_text("def rank_people(scores, rng):\n    return rng.permutation(len(scores))\n")
    res = _cli(["check", "r.py", "--checks", "min_requirement", "--allow-skip", "--no-html", "--json", "r.json"],
               tmp_path)
    assert res.exit_code == 0 and "warning: The kind of 'rank_people' (ranking) was guessed from its name" in res.output
    assert any("guessed from its name" in w for w in loads((tmp_path / "r.json").read_text())["warnings"])
    # a selector guessed from its name: its fixed k disagrees with the audit's → exit 2 with the fix
    assert "the audit stops (exit 2) saying to mark it `@fa.selector(k=N)` or give `--k N`" in flat
    (tmp_path / "s.py").write_text("def choose(scores, rng):\n    return list(range(3))\n")
    res = _cli(["check", "s.py", "--checks", "broome", "--draws", "20", "--no-html"], tmp_path)
    assert res.exit_code == 2 and "mark it @fa.selector(k=3) or give --k 3" in res.output


def test_the_dask_json_differs_from_a_local_run_only_in_created_and_command():
    assert "The JSON is the same as a local run's but for `created` (the time) and `command`" in _flat(README)
    # tests/test_dask.py compares a cluster run's JSON with the local one's after dropping exactly these
    src = (ROOT / "tests" / "test_dask.py").read_text()
    assert 'd.pop("created"), d.pop("command")' in src and src.count(".pop(") == 2


def test_the_configuration_paragraph_names_the_schemas_keys_and_its_errors(tmp_path):
    from fairaudit.config import known_keys
    para = _flat(README[README.index("**Configuration.**"):])
    listed = re.findall(r"`(\w+)`", para[para.index("the one definition of them):"):para.index("tables of check")])
    assert sorted(set(listed) - {"params"}) == sorted(set(known_keys()) - {"params"})
    quoted = "pyproject.toml:4: unknown key 'chekcs' in [tool.fairaudit]; did you mean 'checks'?"
    assert quoted in para
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.fairaudit]\nchekcs = ["broome"]\n')
    (tmp_path / "sub").mkdir()
    res = _cli(["check", ROOT / "examples" / "allocators" / "top_k.py"], tmp_path)
    assert res.exit_code == 2 and quoted in res.output
    res = _cli(["check", ROOT / "examples" / "allocators" / "top_k.py"], tmp_path / "sub")      # found upward
    assert res.exit_code == 2 and "../" + quoted in res.output
    assert "recorded in the JSON's `config.config_file` and in the report's footer" in para


def test_the_output_conventions_the_readme_states(tmp_path):
    flat = _flat(README)
    assert "`--json -` writes the JSON result to standard output and nothing else" in flat
    assert "`--quiet` prints only the closing tally" in flat
    top_k = ROOT / "examples" / "allocators" / "top_k.py"
    args = ["check", top_k, "--checks", "min_requirement", "--allow-skip"]
    res = _cli(args + ["--json", "-"], tmp_path)
    assert loads(res.stdout)["checks"][0]["verdict"] == "skipped"
    res = _cli(args + ["--quiet", "--no-html"], tmp_path)
    assert re.fullmatch(r"1 skipped in \d+\.\d s\n", res.stdout)
    assert "it holds the report of another target, the new one is written as `fairaudit-report-TARGET.html`" in flat
    (tmp_path / "other.py").write_text((top_k).read_text())
    res = _cli(["check", "other.py", "--checks", "min_requirement", "--allow-skip"], tmp_path)
    assert "→ fairaudit-report-other.html" in res.output and (tmp_path / "fairaudit-report-other.html").is_file()
    assert "JUnit (`--junit`) gives each test case the seconds its check took" in flat
    from fairaudit.junit import junit_xml
    xml = junit_xml({"checks": [{"id": "a", "verdict": "pass", "message": "m"}], "config": {}, "target": {}},
                    times={"a": 1.25})
    assert 'name="a" time="1.250"' in xml


def test_an_error_verdict_shows_where_the_allocator_raised(tmp_path):
    assert "the JSON, the terminal and the report show where in your code it raised, `file:line`" in _flat(README)
    (tmp_path / "bad.py").write_text("import fairaudit as fa\n\n\n@fa.selector(k=2)\ndef allocate(scores, k, rng):\n"
                                     "    raise ValueError('boom')\n")
    res = _cli(["check", "bad.py", "--checks", "broome", "--draws", "20", "--json", "r.json", "--html", "r.html"],
               tmp_path)
    assert res.exit_code == 1
    frame = "bad.py:6 in allocate: raise ValueError('boom')"
    assert "at " + frame in res.output
    assert loads((tmp_path / "r.json").read_text())["checks"][0]["evidence"]["allocator_traceback"] == [frame]
    assert "bad.py:6 in allocate" in (tmp_path / "r.html").read_text()


@pytest.mark.slow      # loads scikit-learn in a worker process (~9 s)
def test_a_model_without_column_names_is_refused_before_any_draw_when_the_data_disagrees(tmp_path):
    assert ("a model fitted on a bare array, with no column names, gets the data's feature columns in file order, "
            "and is refused the same way, before any draw, when their number differs") in _flat(README)
    sklearn = pytest.importorskip("sklearn.linear_model")
    import joblib
    import pandas as pd
    credit = ROOT / "examples" / "models" / "credit.csv"
    d = pd.read_csv(credit)
    joblib.dump(sklearn.LogisticRegression().fit(d[["income", "debt_ratio"]].to_numpy(), d["label"]),
                tmp_path / "two.joblib")
    res = _cli(["check", "two.joblib", "--data", credit, "--checks", "selection_rates", "--no-html"], tmp_path)
    assert res.exit_code == 2 and "fitted without column names (no feature_names_in_) on 2 features" in res.output
    assert "[1/1]" not in res.output            # refused before the check started: nothing drawn
