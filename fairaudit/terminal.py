"""What the audit shows on the terminal while it runs (stderr), and its closing tally.

On a terminal: a :mod:`rich.progress` display, one bar per check ("3/7 tv_stability")
whose total is the check's own plan (:mod:`fairaudit.progress`), labelled in words, with
the check's draws so far, elapsed time and the time left at the measured rate; a spinner
from start-up to the first draw and while the report is written; a finished check
collapses to its verdict line; the live line is cleared before anything else is printed
(warnings, the allocator's own output) and when the audit ends. Off a terminal (CI logs):
one plain line when a check starts and one when it ends, with its time.

The engine calls :meth:`AuditProgress.check_started` / :meth:`check_finished` around
each check (and a check :meth:`AuditProgress.step`); the sampler calls ``plan``,
``expect`` and ``advance``. Timing here is for display only; it never
reaches a result.

Everything shown that could come from the user goes through :func:`fairaudit.text.inert`
and is rendered by rich as plain :class:`~rich.text.Text` (never as markup).
"""
from __future__ import annotations

import contextlib
import sys
import time

from .text import inert

#: verdict → rich style
STYLES = {"pass": "green", "fail": "bold red", "error": "bold red", "inconclusive": "yellow", "skipped": "dim"}
#: the order verdicts are counted and listed in: what needs action first
VERDICT_ORDER = ("fail", "error", "inconclusive", "pass", "skipped")


def seconds_text(s: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``."""
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, r = divmod(int(round(s)), 60)
    return f"{m} min {r:02d} s"


def wrap_text(text: str, indent: str = "", width: int | None = None) -> str:
    """``text`` (already made inert) wrapped at word boundaries to the terminal's width (or
    ``width``), every line but the first prefixed with ``indent``; the first line is
    ``len(indent)`` shorter, as the caller prints it after ``indent`` (or a verdict column
    as wide). Nothing is cut: a long finding reads whole, not cut mid-word at a limit."""
    import shutil
    import textwrap
    if width is None:
        width = shutil.get_terminal_size(fallback=(100, 24)).columns
    width = max(int(width), len(indent) + 40)
    lines = []
    for para in str(text).split("\n"):
        wrapped = textwrap.wrap(para, width=width - len(indent), break_long_words=False, break_on_hyphens=False) or [""]
        lines += wrapped
    return ("\n" + indent).join(lines)


def tally_line(verdicts: list[str], seconds: float, html_path: str | None = None) -> str:
    """``2 fail · 3 pass · 2 skipped in 41 s → report.html`` (counts in
    :data:`VERDICT_ORDER`, zero counts left out; ``html_path`` escaped)."""
    counts = [f"{verdicts.count(v)} {v}" for v in VERDICT_ORDER if verdicts.count(v)]
    line = f"{' · '.join(counts) or 'no checks'} in {seconds_text(seconds)}"
    return line + (f" → {inert(html_path, 300)}" if html_path else "")


class _Above:
    """A text stream that, while the live display runs, prints whole lines above it
    through rich's console (as plain Text), else passes them to ``raw``."""

    def __init__(self, progress: "AuditProgress", raw):
        self.progress, self.raw, self._buf = progress, raw, ""

    def write(self, s):
        s = str(s)
        live = self.progress._live
        if live is None:
            return self.raw.write(s)
        from rich.text import Text
        self._buf += s
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            live.console.print(Text(inert(line, None)), soft_wrap=True)
        return len(s)

    def flush(self):
        if self._buf and self.progress._live is not None:
            self.write("\n")
        with contextlib.suppress(Exception):
            self.raw.flush()

    def isatty(self):
        return False

    def writable(self):
        return True


class AuditProgress:
    """Progress of an audit on ``stream`` (default: stderr). ``live`` forces the rich
    display on or off (default: on when ``stream`` is a terminal).

    On a terminal, one bar per running check whose total is the check's own plan
    (:class:`fairaudit.progress.CheckProgress`: sequential sampling looks toward its
    maximum draws, a check's steps — probes, searches, years — count as it declares them),
    labelled in words ("anonymity · permutation probe 3"), with the draws made, the time
    taken and the time left at the measured rate; a spinner while the audit starts (before
    the first draw) and while the report is written (:meth:`status`). The sampler calls
    :meth:`plan`, :meth:`expect` and :meth:`advance`; a check calls
    :meth:`step` (through :meth:`fairaudit.engine.AuditContext.step`)."""

    def __init__(self, stream=None, *, live: bool | None = None, width: int | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.is_terminal = bool(self.stream.isatty()) if live is None else bool(live)
        self.width = width
        self._live = None          # the rich Progress while it runs
        self._task = None
        self._waiting = None       # the spinner task before a check's first draw
        self._check = None         # (index, total, id, started)
        self.current = None        # the running check's CheckProgress
        self.verdicts: list[str] = []
        self.times: dict[str, float] = {}      # seconds per check id (for JUnit's time; never in a result)
        self.started = time.monotonic()

    def __deepcopy__(self, memo):          # AuditConfig is copied with dataclasses.asdict
        return self

    # -- the audit's hooks -----------------------------------------------------
    def check_started(self, index: int, total: int, check_id: str) -> None:
        from .progress import CheckProgress
        cid = inert(check_id, 60)
        self._check = (index, total, cid, time.monotonic())
        self.current = CheckProgress(str(check_id))
        if not self.is_terminal:
            self._plain(f"[{index}/{total}] {cid} …")
            return
        live = self._ensure_live()
        self._drop_waiting()
        self._task = live.add_task(f"{index}/{total} {cid}", total=None, words="starting", draws="",
                                   check=self.current)

    # -- the sampler's hooks (display only) ----------------------------------------
    def plan(self, streams, max_draws: int) -> None:
        if self.current is not None:
            self.current.plan(streams, max_draws)
            self._refresh()

    def expect(self, streams, counts) -> None:
        if self.current is not None:
            self.current.expect(streams, counts)
            self._refresh()

    def advance(self, stream: str, n: int) -> None:
        if self.current is not None:
            self.current.advance(stream, n)
            self._refresh()

    def step(self, words: str, i: int, n: int) -> None:
        """The check says which step of its work runs: the ``i``-th ``words`` of ``n``."""
        if self.current is not None:
            self.current.step(words, i, n)
            self._refresh()

    def phase(self, words: str, k: int, n: int, shares=None) -> None:
        """The check says which part of its work runs: the ``k``-th of ``n``."""
        if self.current is not None:
            self.current.phase(words, k, n, shares)
            self._refresh()

    def check_finished(self, result) -> None:
        """``result``: a CheckResult (or a dict with ``verdict`` and ``id``)."""
        verdict = getattr(result, "verdict", None) or result["verdict"]
        self.verdicts.append(verdict)
        index, total, cid, started = self._check or (len(self.verdicts), len(self.verdicts), "?", time.monotonic())
        rid = getattr(result, "id", None) or (result.get("id") if isinstance(result, dict) else None)
        if rid is not None:
            self.times[str(rid)] = time.monotonic() - started
        took = seconds_text(time.monotonic() - started)
        self._check = None
        self.current = None
        if not self.is_terminal:
            self._plain(f"[{index}/{total}] {cid}: {verdict} in {took}")
            return
        from rich.text import Text
        live = self._ensure_live()
        if self._task is not None:
            live.remove_task(self._task)
            self._task = None
        line = Text()
        line.append(f"{verdict.upper():<13}", style=STYLES.get(verdict, ""))
        line.append(f"{index}/{total} {cid}")
        line.append(f"  {took}", style="dim")
        live.console.print(line)

    @contextlib.contextmanager
    def status(self, words: str):
        """A spinner with ``words`` while something without draws runs (the report being
        written); nothing off a terminal."""
        if not self.is_terminal:
            yield self
            return
        live = self._ensure_live()
        task = live.add_task(inert(words, 60), total=None, words="", draws="", check=None)
        try:
            yield self
        finally:
            with contextlib.suppress(Exception):
                live.remove_task(task)
            if self._task is None and self._waiting is None:
                self.stop()

    def stop(self) -> None:
        """Clear the live line (nothing left on the terminal but the verdict lines)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._task = None
            self._waiting = None

    @contextlib.contextmanager
    def running(self):
        """While the audit runs, what is written to sys.stdout / sys.stderr is printed
        above the live display (the line is cleared first) rather than through it. A
        spinner shows from the start until the first check starts."""
        if not self.is_terminal:
            try:
                yield self
            finally:
                self.stop()
            return
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Above(self, out), _Above(self, err)
        live = self._ensure_live()
        self._waiting = live.add_task("starting", total=None, words="loading the target", draws="", check=None)
        try:
            yield self
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            sys.stdout, sys.stderr = out, err
            self.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- helpers ---------------------------------------------------------------
    def _drop_waiting(self) -> None:
        if self._waiting is not None and self._live is not None:
            with contextlib.suppress(Exception):
                self._live.remove_task(self._waiting)
        self._waiting = None

    def _refresh(self) -> None:
        """Show the running check's state on its bar (its plan as 1000 parts)."""
        if self._live is None or self._task is None or self.current is None:
            return
        cp = self.current
        words = cp.words()
        if cp.draws == 0:                      # still starting: the spinner, no bar yet
            self._live.update(self._task, words=words or "starting")
            return
        # at most 999 of 1000 while the check runs: rich marks a bar that touches its total finished for good
        self._live.update(self._task, total=1000, completed=min(999, round(1000 * cp.fraction())), words=words,
                          draws=f"{cp.draws:,} draws")

    def _plain(self, line: str) -> None:
        self.stream.write(line + "\n")
        with contextlib.suppress(Exception):
            self.stream.flush()

    def _ensure_live(self):
        if self._live is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
            console = Console(file=self.stream, force_terminal=True, highlight=False, width=self.width)
            self._live = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                                  TextColumn("{task.fields[words]}", markup=False, style="dim"),
                                  BarColumn(bar_width=20), TaskProgressColumn(),
                                  TextColumn("{task.fields[draws]}", markup=False),
                                  _EtaColumn(),
                                  console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        return self._live


class _EtaColumn:
    """The check's own time taken and time left of its plan at its measured rate
    (:meth:`CheckProgress.remaining`), computed when the display is drawn. (rich's elapsed
    column stops for good the first time a bar touches its total, which a check's bar may
    do between its parts.)"""

    def __new__(cls, *a, **kw):
        from rich.progress import ProgressColumn
        from rich.text import Text

        from .progress import eta_text

        class EtaColumn(ProgressColumn):
            def render(self, task):
                cp = task.fields.get("check")
                if cp is None:
                    return Text("")
                try:
                    left = eta_text(cp.remaining())
                except RuntimeError:           # its counts changed while being read: next frame
                    left = "ETA …"
                return Text.assemble((seconds_text(cp.elapsed()), "yellow"), " ", (left, "cyan"))
        return EtaColumn(*a, **kw)


def print_verdicts(rows, stream=None, *, width: int | None = None, terminal: bool | None = None,
                   indent: int = 14) -> None:
    """The verdict lines after the audit: ``rows`` of (verdict, check id, statistic text,
    [message lines]) in the report's order. On a terminal, rich wraps each message at the
    terminal's width between words, continuation lines indented under the check (and keeps
    the verdict colours); off a terminal (CI logs, pipes) :func:`wrap_text` wraps them the
    same way at ``$COLUMNS`` (default 100). User text arrives inert and is shown as plain
    Text (never markup)."""
    stream = stream if stream is not None else sys.stdout
    terminal = bool(getattr(stream, "isatty", lambda: False)()) if terminal is None else terminal
    if not terminal:        # click strips the colours unless asked to keep them (color=True)
        import click
        colours = {"pass": "green", "fail": "red", "error": "red", "inconclusive": "yellow"}
        for verdict, cid, stat, messages in rows:
            click.echo(click.style(f"{verdict.upper():<13}", fg=colours.get(verdict)) + f" {cid:<20} {stat}".rstrip(),
                       file=stream)
            for i, m in enumerate(messages):
                text = wrap_text(m, " " * indent, width)
                bold = i == 0 and verdict != "skipped" and len(messages) > 1
                click.echo(" " * indent + (click.style(text, bold=True) if bold else text), file=stream)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    console = Console(file=stream, force_terminal=True, highlight=False, width=width, soft_wrap=False)
    for verdict, cid, stat, messages in rows:
        grid = Table.grid(padding=0)        # a hanging indent: everything after the verdict column wraps under it
        grid.add_column(width=indent, no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
        grid.add_row(Text(f"{verdict.upper():<13}", style=STYLES.get(verdict, "")), Text(f"{cid:<20} {stat}".rstrip()))
        for i, m in enumerate(messages):
            bold = i == 0 and verdict != "skipped" and len(messages) > 1
            grid.add_row("", Text(m, style="bold" if bold else ""))
        console.print(grid)
