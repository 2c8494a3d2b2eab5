"""The command line (click), as in DESIGN.md.

    fairaudit check TARGET [--checks ...] [--data FILE] [--config FILE] [--seed N]
                           [--confidence 0.95] [--draws N | --budget SECONDS]
                           [--html PATH] [--json PATH] [--junit PATH] [--jobs N]
                           [--fail-on fail|inconclusive] [--param CHECK.NAME=VALUE ...] [--require]
                           [--allow-skip] [--quiet] [--timeout S] [--in-process] [--memory-limit SIZE]
                           [--scheduler tcp://HOST:PORT]
    fairaudit report RESULT.json --html PATH
    fairaudit compare BASELINE.json CURRENT.json [--tolerance X] [--html PATH] [--json PATH]
                      [--allow-new-failures] [--strict]
    fairaudit checks [CHECK]

Exit codes: 0 every check that ran passed (the others skipped); 1 any fail or error (or
inconclusive under ``--fail-on inconclusive``, or skipped under ``--require``); 2 the audit
could not start (an unknown check id or parameter, a parameter value the check does not
accept, a bad configuration file (:mod:`fairaudit.config`), a check named in ``--checks``
that cannot run on this target and data unless ``--allow-skip``
(:mod:`fairaudit.preflight`), an output path that cannot be written — all caught before
anything is drawn — a setup problem found at the first call (a hard-coded k, an argument
the audit cannot supply), or no check could run at all); 130/143/129 when interrupted by
SIGINT/SIGTERM/SIGHUP (every process the audit started is ended first; see
:mod:`fairaudit.run.containment`).


Everything printed that came from the user (messages, names, values, the allocator's own
output) goes through :func:`fairaudit.text.inert` — control characters other than newline
are shown escaped, on a terminal or not — and continuation lines of user text are indented
(what user code prints while the audit runs is prefixed ``[output]``), so user text can never start a line the way
fairaudit's verdict lines do.
"""
from __future__ import annotations

import contextlib
import io
import json
import shlex
import sys
from pathlib import Path

import click

from ._version import __version__
from .errors import FairauditError, ParamError
from .labels import kinds_phrase
from .text import JSON_CHARS, TERMINAL_CHARS, indent_lines, inert

#: continuation lines of a check's message start here (after the verdict column)
MESSAGE_INDENT = " " * 14
#: a check's finding on the terminal is wrapped, and cut only beyond this (a message is
#: fairaudit's sentence, well under it; the cap guards against a user value of megabytes)
MESSAGE_CHARS = 4 * TERMINAL_CHARS


def _user(text, indent: str = "", limit: int | None = JSON_CHARS) -> str:
    """User-derived text for the terminal: escaped, capped, continuation lines indented."""
    return indent_lines(inert(text, limit), indent)


def _error(message, code: int = 2):
    click.echo(f"fairaudit: error: {_user(message, ' ' * 18, TERMINAL_CHARS * 4)}", err=True)
    sys.exit(code)


class _InertLines(io.TextIOBase):
    """A text stream that passes whole lines on to ``raw`` escaped with :func:`inert` and
    prefixed, so an allocator's ``print`` cannot move the cursor or forge a line."""

    def __init__(self, raw, prefix: str = "[output] ", limit: int = 4 * TERMINAL_CHARS):
        self.raw, self.prefix, self.limit, self._buf = raw, prefix, limit, ""

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        self._buf += s
        if "\n" in self._buf:
            *lines, self._buf = self._buf.split("\n")
            for line in lines:
                self.raw.write(self.prefix + inert(line, self.limit) + "\n")
        if len(self._buf) > self.limit:      # a very long line without newline
            self.raw.write(self.prefix + inert(self._buf, self.limit) + "\n")
            self._buf = ""
        return len(s)

    def flush(self):
        if self._buf:
            self.raw.write(self.prefix + inert(self._buf, self.limit) + "\n")
            self._buf = ""
        with contextlib.suppress(Exception):
            self.raw.flush()

    def isatty(self):
        return False


@contextlib.contextmanager
def _inert_user_output(to_stderr: bool = False):
    """While the audit runs, what user code writes to sys.stdout/sys.stderr reaches the
    terminal escaped and prefixed (output of worker processes and of C code writing to the
    file descriptors directly is not intercepted); all of it to stderr with ``to_stderr``
    (stdout then carries the JSON alone)."""
    out, err = _InertLines(sys.stderr if to_stderr else sys.stdout), _InertLines(sys.stderr)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.flush()
        err.flush()


def _load_config(path: str | None):
    """Options from ``--config FILE``, else from the configuration file found upward from
    the current folder (:mod:`fairaudit.config`); a bad file exits 2 naming file, line, key."""
    from .config import ConfigError, load_config
    try:
        return load_config(path)
    except ConfigError as e:
        _error(e)


def _split(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _mapping(value) -> dict:
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for part in _split(value):
        if "=" not in part:
            raise click.UsageError(f"--columns expects ROLE=COLUMN pairs, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parse_params(values: tuple[str, ...]) -> dict:
    """``--param broome.min_chance=0.001`` → {"broome": {"min_chance": 0.001}}. The value is
    read as JSON when it parses (numbers, true/false, lists), else kept as text; the
    engine then parses it by the parameter's declared type."""
    out: dict = {}
    for v in values:
        if "=" not in v or "." not in v.split("=", 1)[0]:
            raise click.UsageError(f"--param expects CHECK.NAME=VALUE, got {v!r}")
        key, val = v.split("=", 1)
        check, name = (p.strip() for p in key.split(".", 1))
        try:
            parsed = json.loads(val)
        except json.JSONDecodeError:
            parsed = val
        out.setdefault(check, {})[name] = parsed
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fairaudit")
def main():
    """fairaudit — audit allocators, rankers and decision logs for fairness properties."""


@main.command()
@click.argument("target", required=False)
@click.option("--query", "query", help="Audit the log a DuckDB SQL query returns, in place of TARGET "
              "(e.g. \"select * from read_parquet('logs/*.parquet') where year = 2025\").")
@click.option("--checks", "checks_opt", help="Comma-separated check ids (default: all applicable).")
@click.option("--data", type=str, help="Population file (.csv/.parquet): scores, groups, labels, features.")
@click.option("--config", "config_path", type=str, help="TOML file with options ([tool.fairaudit] or top-level).")
@click.option("--seed", type=int, help="Seed of every draw (default 0).")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999999, max_open=False), help="1 − α (default 0.95).")
@click.option("--draws", type=click.IntRange(1), help="Maximum draws per input (each check has a default).")
@click.option("--budget", type=click.FloatRange(0, min_open=True), help="Time budget in seconds for sequential sampling.")
@click.option("--html", "html_path", type=str, help="HTML report path (default fairaudit-report.html; `--html -` or --no-html: none).")
@click.option("--no-html", "no_html", is_flag=True, default=False, help="Write no HTML report.")
@click.option("--json", "json_path", type=str, help="Write the JSON result here (`--json -`: to standard output, everything else to stderr).")
@click.option("--junit", "junit_path", type=str, help="Write JUnit XML here (one test case per check, with its time).")
@click.option("--quiet", "-q", "quiet", is_flag=True, default=False, help="Print only the closing tally (errors still go to stderr).")
@click.option("--jobs", type=click.IntRange(-1),
              help="Worker processes drawing in parallel: N of them (default 1); 0 or -1 = one per core. The same "
                   "for a file, a module:function and every other allocator a check opens; results do not depend "
                   "on it.")
@click.option("--fail-on", type=click.Choice(["fail", "inconclusive"]), help="Also exit 1 on inconclusive.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), help="Per-call allocator timeout, seconds (default 30).")
@click.option("--k", "k_opt", type=click.IntRange(1), help="k for selection when the allocator does not fix it.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="A fitted model decides yes when predict_proba[:, 1] >= THRESHOLD (default: its predict).")
@click.option("--groups", help="Comma-separated group columns (default: the non-numeric columns).")
@click.option("--columns", help="Column mapping ROLE=COLUMN,... (e.g. selected=hired,score=rating).")
@click.option("--param", "param_opts", multiple=True, help="Check parameter CHECK.NAME=VALUE (repeatable).")
@click.option("--encoding", help="Text encoding of CSV logs and data, e.g. cp1252 or latin-1 (default UTF-8).")
@click.option("--require", "require", is_flag=True, default=None,
              help="Exit 1 when any check is skipped (not applicable), with its reason.")
@click.option("--allow-skip", "allow_skip", is_flag=True, default=None,
              help="A check named in --checks that cannot run on this target/data is skipped (exit 0) instead of stopping the audit (exit 2).")
@click.option("--in-process", "in_process", is_flag=True, default=None,
              help="Call the allocator inside this process (debugging; no isolation: it can hang, crash or end the audit).")
@click.option("--memory-limit", "memory_limit", type=str,
              help="Memory cap per worker process, e.g. 4G (default), 512M; 0 = none.")
@click.option("--scheduler", type=str, help="Run the draws on the Dask cluster at tcp://HOST:PORT (the dask extra: pip install -e \".[dask]\" in the fairaudit checkout).")
@click.option("--export-ll144", "export_ll144", type=str,
              help="Write selection_rates' NYC LL144 bias-audit table (DCWP layout) to this CSV.")
@click.option("--max-queries", "max_queries", type=click.IntRange(1),
              help="A service target (.toml): at most N HTTP requests in the whole audit, retries included.")
@click.option("--record", "record_path", type=str,
              help="A service target: record every request and response here (default: beside the JSON).")
@click.option("--from-recording", "from_recording", type=str,
              help="A service target: replay the audit offline from this recording (no network).")
def check(target, query, checks_opt, data, config_path, seed, confidence, draws, budget, html_path, no_html, json_path,
          junit_path, jobs, fail_on, timeout, k_opt, threshold, groups, columns, param_opts, encoding, require,
          in_process, memory_limit, scheduler, allow_skip, quiet, max_queries=None, record_path=None,
          from_recording=None, export_ll144=None):
    """Audit TARGET: an allocator .py file, module:function, a fitted scikit-learn model
    (.joblib/.skops, or module:name of an estimator), a decisions log (.csv/.parquet, a glob,
    a Parquet directory, duckdb:///db.duckdb?table=NAME — four slashes before an
    absolute path), or the log a --query returns.

    \b
    Examples:
      fairaudit check my_allocator.py --data people.csv --checks selection_rates
      fairaudit check my_package.module:allocate --seed 1 --draws 50000
      fairaudit check decisions.csv --columns selected=hired,score=rating --json result.json
      fairaudit check my_allocator.py --param broome.min_gain=0.2 --no-html
      fairaudit check model.joblib --data people.csv --threshold 0.5
      fairaudit check --query "select * from read_parquet('logs/*.parquet')"
      fairaudit check "duckdb:///audit.duckdb?table=decisions"
    (`fairaudit checks` lists the check ids; `fairaudit checks CHECK` its parameters.)

    \b
    Exit codes:
      0  every check that could run passed (the others were skipped, not applicable)
      1  a check failed or errored (also inconclusive with --fail-on inconclusive,
         skipped with --require)
      2  the audit could not start (bad option, config, target, data, parameter or an
         output path that cannot be written; a check named in --checks that cannot
         run on this target/data, unless --allow-skip; no check could run at all),
         or an output could not be written
    130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM; 129 by SIGHUP

    \b
    A module:function target is imported from Python's path and, after it, the current
    folder (the same with --in-process). An allocator file's own folder is put on the
    path, so its sibling imports work. Options may also come from --config FILE, a
    fairaudit.toml, or [tool.fairaudit] of a pyproject.toml found upward from here."""
    from .engine import AuditConfig, audit
    from .preflight import NotApplicableError
    from .run.workers import DEFAULT_MEMORY_LIMIT, parse_memory

    loaded = _load_config(config_path)
    cfg = loaded.values
    if target is None and query is None and cfg.get("target"):
        target = str(cfg["target"])          # [tool.fairaudit] target = "service.toml" (or any target)
    if (target is None) == (query is None):
        raise click.UsageError("give a TARGET (allocator, module:function or log) or --query SQL, exactly one")

    def pick(cli, key, default=None):
        return cli if cli is not None else cfg.get(key, default)

    cfg_params = cfg.get("params") or {}
    if not isinstance(cfg_params, dict):
        raise click.UsageError(f"{loaded.origin}: params must be a table of [params.CHECK] tables")
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg_params.items()}
    origin = {(k, n): loaded.param_origin(k, n) for k, v in params.items() for n in (v if isinstance(v, dict) else [None])}
    origin.update({(k, None): loaded.param_origin(k) for k in params})
    for chk, kv in _parse_params(param_opts).items():
        if not isinstance(params.get(chk, {}), dict):
            params[chk] = {}
        params.setdefault(chk, {}).update(kv)
        origin[(chk, None)] = "--param"
        origin.update({(chk, n): "--param" for n in kv})
    config = AuditConfig(
        seed=int(pick(seed, "seed", 0)), confidence=float(pick(confidence, "confidence", 0.95)),
        draws=pick(draws, "draws"), budget=pick(budget, "budget"), timeout=float(pick(timeout, "timeout", 30.0)),
        fail_on=pick(fail_on, "fail_on", "fail"), k=pick(k_opt, "k"), threshold=pick(threshold, "threshold"), groups=_split(pick(groups, "groups")),
        columns=_mapping(pick(columns, "columns")), params=params, jobs=int(pick(jobs, "jobs", 1)),
        encoding=pick(encoding, "encoding"),
        require=_flag(pick(require, "require", False), "require"),
        allow_skip=_flag(pick(allow_skip, "allow_skip", False), "allow_skip"), config_file=loaded.path,
        in_process=bool(pick(in_process, "in_process", False)), scheduler=pick(scheduler, "scheduler"),
        memory_limit=pick(memory_limit, "memory_limit", DEFAULT_MEMORY_LIMIT),
        max_queries=pick(max_queries, "max_queries"), from_recording=pick(from_recording, "from_recording"))
    try:
        parse_memory(config.memory_limit)
    except ValueError as e:
        raise click.UsageError(f"--memory-limit: {e}")
    from .terminal import AuditProgress
    progress = AuditProgress(io.StringIO() if quiet else sys.stderr, live=False if quiet else None)
    config.progress = progress
    data = pick(data, "data")
    html_given = pick(html_path, "html")
    html_path = None if no_html else (html_given if html_given is not None else "fairaudit-report.html")
    if html_path in ("", "-", False):
        html_path = None
    json_path = pick(json_path, "json")
    to_stdout = json_path == "-"        # the JSON alone on stdout; everything else on stderr
    junit_path = pick(junit_path, "junit")
    from .service import is_service_spec
    if target is not None and is_service_spec(target) and not config.from_recording:
        from .service.source import default_recording_path
        config.record = pick(record_path, "record") or default_recording_path(json_path)
    elif record_path:
        config.record = record_path
    command = "fairaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    from .outputs import preflight
    from .run.containment import AuditScope, exit_code_of, interruptible
    if config.in_process and target is not None and not is_log_target(target):
        click.echo("warning: --in-process runs the allocator inside this process and trusts the allocator "
                   "completely: it can end the audit with any exit code (even 0), stall it, or write its "
                   "outputs (README, Threat model). Do not gate on it.", err=True)
    try:        # every output path is checked before anything is drawn (exit 2)
        preflight({"--json": None if to_stdout else json_path, "--html": html_path, "--junit": junit_path, "--export-ll144": export_ll144})
    except FairauditError as e:
        _error(e)
    try:
        # SIGTERM/SIGHUP raise like Ctrl-C; every process the audit started is ended (and
        # reaped) before anything is written, so nothing the allocator left can write after
        with interruptible(), AuditScope(strict=True):
            with progress.running(), _inert_user_output(to_stderr=to_stdout):
                if query is not None:       # the log a DuckDB query returns (validated like a scanned file)
                    from .logs.load import load_query
                    target = load_query(query, columns=config.columns, groups=config.groups)
                result = audit(target, checks=_split(pick(checks_opt, "checks")), data=data, config=config,
                               command=command)
            from .run.workers import close_parked
            close_parked()
    except KeyboardInterrupt as e:
        click.echo(f"fairaudit: interrupted ({'SIGINT' if type(e) is KeyboardInterrupt else e}); no result written",
                   err=True)
        sys.exit(exit_code_of(e))
    except NotApplicableError as e:
        for line in e.lines:
            click.echo(f"fairaudit: error: {_user(line, ' ' * 18, TERMINAL_CHARS * 2)}", err=True)
        click.echo(f"fairaudit: {_user(e.summary, '', TERMINAL_CHARS)}", err=True)
        sys.exit(2)
    except ParamError as e:
        where = origin.get((e.check, e.name)) or origin.get((e.check, None))
        _error(f"{e}" + (f" (set by {where})" if where else ""))
    except FairauditError as e:
        _error(e)
    d = result.to_dict()
    for c in d["checks"]:
        rc = (c.get("evidence") or {}).get("replay_command")
        if isinstance(rc, str) and "RESULT.json" in rc:
            c["evidence"]["replay_command"] = (rc.replace("RESULT.json", shlex.quote(json_path))
                                               if json_path and not to_stdout else
                                               rc + "   (after rerunning the audit with --json RESULT.json)")
    if html_path and html_given is None and not no_html:
        from .report_paths import default_report_path
        html_path = default_report_path(html_path, d)
    if not quiet:       # the verdicts first: a write error cannot hide them
        _print_summary(d, html_path, json_path, err=to_stdout)
    with progress.status("writing the report"):
        _write_outputs(d, json_path, html_path, junit_path, times=progress.times)
    if export_ll144:
        from .ll144 import write_ll144
        try:
            write_ll144(d, export_ll144)
        except FairauditError as e:
            _error(e)
    for c in result.required_but_skipped():
        reason = c.message[len("Skipped: "):] if c.message.startswith("Skipped: ") else c.message
        click.echo(f"fairaudit: check {_user(c.id, '', 60)!r} was skipped under --require: "
                   f"{_user(reason, '  ', TERMINAL_CHARS)}", err=True)
    code = result.exit_code
    # a requested check that found only while running that it cannot run (e.g. the allocator's
    # declared k exceeds the check's inputs) was not audited either: exit 2 (outputs kept)
    from .preflight import late_skips
    late = late_skips(d, requested=bool(_split(pick(checks_opt, "checks"))), allow_skip=config.allow_skip)
    for line in late:
        click.echo(f"fairaudit: error: {_user(line, ' ' * 18, TERMINAL_CHARS)}", err=True)
    if late:
        code = 2
    elif code == 2:
        click.echo("fairaudit: nothing was audited: every check was skipped (--allow-skip accepts that, exit 0)",
                   err=True)
    from .terminal import tally_line
    click.echo(tally_line([c["verdict"] for c in d["checks"]], progress.elapsed(), html_path or None), err=to_stdout)
    sys.exit(code)


def _write_outputs(d: dict, json_path, html_path, junit_path, times=None) -> None:
    """JSON (sealed with its digest; ``-``: to standard output), HTML and JUnit (with each
    check's time), each written atomically; a failure is one line and exit 2 (the verdict
    lines are already printed)."""
    from .outputs import seal, write_text
    from .report import render_html
    jobs = []
    if json_path == "-":           # the JSON alone on stdout (everything else went to stderr)
        sys.stdout.write(seal(d) + "\n")
        sys.stdout.flush()
    elif json_path:
        jobs.append(("--json", json_path, lambda: seal(d)))
    if html_path:
        jobs.append(("--html", html_path, lambda: render_html(d)))
    if junit_path:
        from .junit import junit_xml
        jobs.append(("--junit", junit_path, lambda: junit_xml(d, times)))
    for option, path, render in jobs:
        try:
            write_text(path, render())
        except OSError as e:
            _error(f"could not write {option} {path}: {e.strerror or e}; the verdicts above are the audit's")


def is_log_target(target) -> bool:
    from .logs.load import is_log_path
    return is_log_path(str(target)) or str(target).startswith("duckdb://")


def _flag(value, key: str) -> bool:
    """A boolean option from the command line or the config file."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise click.UsageError(f"config option {key} must be true or false, got {value!r}")


def _print_summary(d: dict, html_path, json_path, err: bool = False):
    """The verdicts in the report's order (fail and error first), wrapped to the terminal's
    width on a terminal; on stderr when stdout carries the JSON (``--json -``)."""
    from .headline import headline
    from .labels import cite
    from .report import observations, ordered_checks
    from .terminal import print_verdicts
    from .text import fmt_interval, fmt_number
    confidence = float(d["config"].get("confidence", 0.95))
    for w in d.get("warnings", []):
        click.echo(click.style("warning: ", fg="yellow") + _user(w, " " * 9, TERMINAL_CHARS), err=True)
    rows = []
    for c in ordered_checks(d["checks"]):
        s = c.get("statistic")
        stat = f"{s['name']}={fmt_number(s['estimate'])} {fmt_interval(s['ci'])}" if s else ""
        messages = []
        if c["verdict"] != "skipped":       # a skipped check's reason is its message
            messages.append(inert(headline(c, confidence, observations(d)), MESSAGE_CHARS))
        messages.append(inert(cite(c["message"], short=True), MESSAGE_CHARS))
        for fr in ((c.get("evidence") or {}).get("allocator_traceback") or []):   # where the allocator raised
            messages.append(inert(f"at {fr}", TERMINAL_CHARS))
        q = c.get("queries")
        if q and c["verdict"] != "skipped":
            messages.append(f"queries: {q.get('requests', 0):,} ({q.get('retries', 0):,} retries) "
                            f"for {q.get('draws', 0):,} draws"
                            + (" — the query budget cut sampling short" if c.get("budget_exhausted") else ""))
        rows.append((c["verdict"], inert(c["id"], 60), inert(stat, 200), messages))
    print_verdicts(rows, sys.stderr if err else sys.stdout)
    svc = (d.get("target") or {}).get("service")
    if svc and svc.get("recording"):
        rec = svc["recording"]
        click.echo(f"recording: {_user(rec.get('path'))} (sha256 {str(rec.get('sha256'))[:16]}…; "
                   f"{svc.get('requests', 0):,} requests, {svc.get('retries', 0):,} retries)", err=err)
    if json_path and json_path != "-":           # the report's path closes the tally line
        click.echo(f"result: {_user(json_path)}", err=err)


def _read_result(path) -> dict:
    """A saved result, validated against the schema (one line and exit 2 if it is not
    one), with a note when its digest says it was altered."""
    from .outputs import integrity_note, read_result
    try:
        d, state = read_result(path)
    except FairauditError as e:
        _error(e)
    note = integrity_note(path, state)
    if note:
        click.echo(click.style("warning: ", fg="yellow") + _user(note, " " * 9, TERMINAL_CHARS), err=True)
    return d


@main.command()
@click.argument("result_json", type=click.Path(exists=True, dir_okay=False))
@click.option("--html", "html_path", default="fairaudit-report.html", show_default=True, help="Where to write the report.")
def report(result_json, html_path):
    """Re-render a saved JSON result as an HTML report."""
    from .outputs import preflight, write_text
    from .report import render_html
    try:
        preflight({"--html": html_path})
    except FairauditError as e:
        _error(e)
    d = _read_result(result_json)
    try:
        write_text(html_path, render_html(d))
    except OSError as e:
        _error(f"could not write --html {html_path}: {e.strerror or e}")
    click.echo(f"report: {_user(html_path)}")


@main.command()
@click.argument("baseline", type=str)
@click.argument("current", type=str)
@click.option("--tolerance", "tolerances", multiple=True,
              help="Allowed worsening, in the statistic's units: a number, or CHECK=X / CHECK.STATISTIC=X (repeatable; default 0).")
@click.option("--html", "html_path", type=str, help="Write an HTML diff report here.")
@click.option("--json", "json_path", type=str, help="Write the comparison as JSON here.")
@click.option("--junit", "junit_path", type=str, help="Write JUnit XML here (one test case per check; a regression fails).")
@click.option("--fail-on", type=click.Choice(["regression", "inconclusive"]), default="regression", show_default=True,
              help="Also exit 1 when a check went from pass to inconclusive.")
@click.option("--allow-new-failures", is_flag=True, default=False,
              help="A check absent from BASELINE that fails or errors in CURRENT is listed, not a regression.")
@click.option("--strict", is_flag=True, default=False,
              help="A check present in BASELINE but missing from CURRENT is a regression (exit 1).")
def compare(baseline, current, tolerances, html_path, json_path, junit_path, fail_on, allow_new_failures, strict):
    """Regression gate: has CURRENT.json got worse than BASELINE.json, with confidence?

    Exit 0 no regression; 1 a statistic got worse beyond its tolerance with confidence, a
    verdict flipped to fail/error, a check absent from BASELINE fails or errors in CURRENT
    (unless --allow-new-failures), or a check disappeared under --strict; 2 the results
    cannot be compared (different kind, seed, confidence, data or settings) or could not be read."""
    from .compare import IncomparableError, terminal_table
    tol: dict = {}
    for t in tolerances:
        key, _, val = t.rpartition("=")
        try:
            tol[key or "*"] = float(val)
        except ValueError:
            raise click.UsageError(f"--tolerance expects a number or CHECK[.STATISTIC]=NUMBER, got {t!r}")
    from .outputs import preflight, write_text
    try:
        preflight({"--html": html_path, "--json": json_path, "--junit": junit_path})
    except FairauditError as e:
        _error(e)
    for p in (baseline, current):
        if not Path(p).is_file():
            _error(f"cannot compare: {p}: no such file")
    base_d, cur_d = _read_result(baseline), _read_result(current)
    try:
        from .compare import compare as compare_results
        cmp = compare_results(base_d, cur_d, tolerance=tol, fail_on=fail_on,
                              allow_new_failures=allow_new_failures, strict=strict)
    except IncomparableError as e:
        click.echo(f"fairaudit: cannot compare {_user(baseline)} with {_user(current)}: "
                   f"{_user(e, ' ' * 18, TERMINAL_CHARS * 4)}", err=True)
        sys.exit(2)
    for n in cmp.notes:
        click.echo(click.style("note: ", fg="cyan") + _user(n, " " * 6, TERMINAL_CHARS))
    click.echo(_user(terminal_table(cmp), "", None))
    for line in cmp.summary_lines():
        color = "red" if line.startswith(("REGRESSION", "NEW FAILURE")) or (strict and line.startswith("MISSING")) \
            else "yellow"
        head, _, rest = line.partition(":")
        click.echo(click.style(_user(head, "", 200), fg=color) + ":" + _user(rest, "  ", TERMINAL_CHARS))
    if not cmp.regressions:
        click.echo("no regression: no check got worse by more than its tolerance with confidence")
    try:
        if html_path:
            from .compare import render_html as render_cmp_html
            write_text(html_path, render_cmp_html(cmp))
            click.echo(f"report: {_user(html_path)}")
        if json_path:
            from .result import dumps
            write_text(json_path, dumps(cmp.to_dict()))
            click.echo(f"result: {_user(json_path)}")
        if junit_path:
            from .junit import comparison_junit_xml
            write_text(junit_path, comparison_junit_xml(cmp))
    except OSError as e:
        _error(f"could not write {e.filename or 'an output'}: {e.strerror or e}")
    sys.exit(cmp.exit_code)


def _fmt_figures(v) -> str:
    import numpy as np  # only here: --help, --version and argument errors import no numpy
    a = np.asarray(v, dtype=float)
    return np.array2string(np.round(a, 4), separator=", ", threshold=40, max_line_width=110)


@main.command()
@click.argument("result_json", type=click.Path(exists=True, dir_okay=False))
@click.argument("check_id")
@click.option("--accept-changed-target", "accept_changed", is_flag=True, default=False,
              help="Run the target even when its file's sha256 differs from the one the result records.")
def replay(result_json, check_id, accept_changed):
    """Re-draw CHECK_ID's counterexample in RESULT_JSON exactly as audited and print its
    figures next to the audit's (exit 1 if they differ), or replay the allocator call
    behind an error verdict.

    \b
    The target runs only in isolated worker processes, with the audit's per-call timeout
    and memory limit, and only when its file has the sha256 the result records (else
    exit 2, unless --accept-changed-target)."""
    from .draw_records import has_counterexample_draws
    from .replay import redraw, replay as do_replay, verify_target
    from .run.containment import AuditScope, exit_code_of, interruptible
    d = _read_result(result_json)
    chk = next((c for c in d["checks"] if c.get("id") == check_id), None)
    if chk is None:
        _error(f"the result has no check {check_id!r}")
    try:
        path, recorded, actual = verify_target(d, accept_changed=accept_changed)
    except FairauditError as e:
        _error(e)
    click.echo(f"target: {_user(path, '', 300)}  sha256 {recorded or '(none recorded)'}"
               + ("" if actual == recorded else f"  (file now: {actual or 'not found'}; run as asked)"))
    try:
        with interruptible(), AuditScope(strict=True):
            if chk.get("verdict") != "error" and has_counterexample_draws(chk):
                with _inert_user_output():
                    rows = redraw(d, check_id)
            else:
                rows = None
                with _inert_user_output():
                    out, problem = do_replay(d, check_id)
            from .run.workers import close_parked
            close_parked()
    except KeyboardInterrupt as e:
        click.echo("fairaudit: interrupted", err=True)
        sys.exit(exit_code_of(e))
    except FairauditError as e:
        _error(e)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:   # a record the schema lets through
        _error(f"{result_json}: check {check_id!r} has a malformed replay record ({type(e).__name__}: {e})")
    if rows is not None:
        what = chk["evidence"]["redraw"].get("what", "")
        click.echo(_user(f"{check_id}: {what}" if what else check_id, "  ", TERMINAL_CHARS))
        for r in rows:
            click.echo(_user(f"{r['label']} — {r['draws']} draws of stream {r['stream']!r}", "  ", TERMINAL_CHARS))
            click.echo(f"  members:  {_user(r['members'] if r['members'] is not None else 'all', '  ', TERMINAL_CHARS)}")
            click.echo(f"  audited:  {_fmt_figures(r['observed'])}")
            click.echo(f"  replayed: {_fmt_figures(r['replayed'])}")
        same = all(r["identical"] for r in rows)
        click.echo("Identical to the audit." if same else "The replayed draws differ from the audit's.")
        sys.exit(0 if same else 1)
    if problem:
        click.echo(f"invalid outcome: {_user(problem, '  ', TERMINAL_CHARS)}", err=True)
        sys.exit(1)
    click.echo(f"outcome: {_user(repr(out), '  ', TERMINAL_CHARS * 4)}")
    click.echo("The outcome is valid now.")


@main.command()
@click.option("--setup", default="paper", show_default=True,
              help="paper | uniform | heavy | misspecified (Kearns, Roth and Wu; see fairaudit.populations).")
@click.option("--n", "n", type=click.IntRange(2), default=150, show_default=True, help="Candidates per pool.")
@click.option("--pools", type=click.IntRange(1), default=1, show_default=True, help="Number of pools.")
@click.option("--start", type=click.IntRange(0), default=0, show_default=True, help="Index of the first pool.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed (pool r is the same for any --pools).")
@click.option("--ratio", default="2,1", show_default=True, help="Population size ratio, e.g. 2,1 or 1,1,1.")
@click.option("--out", "out_path", required=True, help="CSV to write: [pool,] id, score, population, quality.")
def simulate(setup, n, pools, start, seed, ratio, out_path):
    """Write simulated cross-population pools (true-CDF quality column) to CSV."""
    from .populations import SETUPS, pool_generator, pools_frame, simulate_pool
    if setup not in SETUPS:
        raise click.UsageError(f"--setup must be one of {', '.join(SETUPS)}")
    try:
        rat = [float(v) for v in ratio.split(",")]
    except ValueError:
        raise click.UsageError(f"--ratio expects numbers separated by commas, got {ratio!r}")
    ps = [simulate_pool(setup, n, pool_generator(seed, r), ratio=rat) for r in range(start, start + pools)]
    frame = ps[0].frame() if pools == 1 else pools_frame(ps).assign(pool=lambda f: f["pool"] + start)
    frame.to_csv(out_path, index=False)
    click.echo(f"wrote {len(frame)} candidates in {pools} pool(s) to {out_path}")


@main.command(name="checks")
@click.argument("check_id", required=False)
def list_checks(check_id):
    """List the available checks with one-line descriptions; with CHECK_ID, that check's
    definition and parameters (default, what each accepts)."""
    from .check import discover
    registry = discover()
    if check_id is None:
        for cid, cls in sorted(registry.items()):
            kinds = ",".join(cls.kinds)
            click.echo(_user(f"{cid:<20} {cls.summary}  [{kinds}]", " " * 21, TERMINAL_CHARS))
        return
    if check_id not in registry:
        from .params import unknown_checks
        _error(unknown_checks([check_id], registry, what="check"))
    cls = registry[check_id]
    click.echo(f"{cls.id} — {cls.title}  [{', '.join(cls.kinds)}; from {' or '.join(cls.sources)}]")
    click.echo(cls.definition)
    needs, example = cls.data_needs or (
        "nothing beyond the target: built-in inputs" if "log" not in cls.sources else "the target: an allocator or a log",
        f"fairaudit check my_allocator.py --checks {cls.id}")
    click.echo(f"\napplies to: {kinds_phrase(cls.kinds)}, from {' or a '.join(('an ' + s) if s == 'allocator' else s for s in cls.sources)}")
    click.echo(f"needs: {needs}")
    click.echo(f"example: {example}")
    if cls.params:
        click.echo("\nparameters (--param " + cls.id + ".NAME=VALUE):")
        for name, p in cls.params.items():
            default = json.dumps(p.default) if not isinstance(p.default, str) else repr(p.default)
            click.echo(f"  {name} = {default}  ({p.describe()})")
            if p.help:
                click.echo(f"      {p.help}")


if __name__ == "__main__":  # pragma: no cover
    main()
