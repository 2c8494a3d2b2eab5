"""What the audit shows on the terminal while it runs (stderr), and its closing tally.

On a terminal: a :mod:`rich.progress` display, one task per check ("3/7 tv_stability"),
a bar over the current draw call of that check (stream, draws done of its budget),
the check's draws so far, elapsed time and ETA; a finished check collapses to its verdict
line; the live line is cleared before anything else is printed (warnings, the
allocator's own output) and when the audit ends. Off a terminal (CI logs): one plain
line when a check starts and one when it ends, with its time.

The engine calls :meth:`AuditProgress.check_started` / :meth:`check_finished` around
each check, and the sampler calls the object itself with ``(stream, done, total)``.
Timing here is for display only; it never reaches a result.

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
    display on or off (default: on when ``stream`` is a terminal)."""

    def __init__(self, stream=None, *, live: bool | None = None, width: int | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.is_terminal = bool(self.stream.isatty()) if live is None else bool(live)
        self.width = width
        self._live = None          # the rich Progress while it runs
        self._task = None
        self._check = None         # (index, total, id, started)
        self._base = self._last_done = 0
        self._last_call = None
        self.verdicts: list[str] = []
        self.times: dict[str, float] = {}      # seconds per check id (for JUnit's time; never in a result)
        self.started = time.monotonic()

    def __deepcopy__(self, memo):          # AuditConfig is copied with dataclasses.asdict
        return self

    # -- the audit's hooks -----------------------------------------------------
    def check_started(self, index: int, total: int, check_id: str) -> None:
        cid = inert(check_id, 60)
        self._check = (index, total, cid, time.monotonic())
        self._base = self._last_done = 0
        self._last_call = None
        if not self.is_terminal:
            self._plain(f"[{index}/{total}] {cid} …")
            return
        live = self._ensure_live()
        self._task = live.add_task(f"{index}/{total} {cid}", total=None, stream="", draws="")

    def __call__(self, stream: str, done: int, total: int) -> None:
        """The sampler's callback: ``done`` of ``total`` draws of the current call on ``stream``."""
        call = (stream, total)
        if call != self._last_call or done < self._last_done:
            self._base += self._last_done if self._last_call is not None else 0
            self._last_call = call
        self._last_done = done
        if self._live is None or self._task is None:
            return
        self._live.update(self._task, completed=done, total=max(total, 1), stream=self._stream_label(stream),
                          draws=f"{self._base + done:,} draws")

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

    def stop(self) -> None:
        """Clear the live line (nothing left on the terminal but the verdict lines)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._task = None

    @contextlib.contextmanager
    def running(self):
        """While the audit runs, what is written to sys.stdout / sys.stderr is printed
        above the live display (the line is cleared first) rather than through it."""
        if not self.is_terminal:
            try:
                yield self
            finally:
                self.stop()
            return
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Above(self, out), _Above(self, err)
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
    def _stream_label(self, stream) -> str:
        """The draw stream, without the check id it starts with, cut to 24 characters."""
        parts = str(stream).split("/")
        if self._check and len(parts) > 1 and parts[0] == self._check[2]:
            parts = parts[1:]
        label = inert("/".join(parts))
        return label if len(label) <= 24 else label[:23] + "…"

    def _plain(self, line: str) -> None:
        self.stream.write(line + "\n")
        with contextlib.suppress(Exception):
            self.stream.flush()

    def _ensure_live(self):
        if self._live is None:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            console = Console(file=self.stream, force_terminal=True, highlight=False, width=self.width)
            self._live = Progress(TextColumn("{task.description}", markup=False),
                                  TextColumn("{task.fields[stream]}", markup=False, style="dim"),
                                  BarColumn(bar_width=20), TaskProgressColumn(),
                                  TextColumn("{task.fields[draws]}", markup=False),
                                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                  console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        return self._live


def print_verdicts(rows, stream=None, *, width: int | None = None, terminal: bool | None = None,
                   indent: int = 14) -> None:
    """The verdict lines after the audit: ``rows`` of (verdict, check id, statistic text,
    [message lines]) in the report's order. On a terminal, rich wraps each message at the
    terminal's width between words, continuation lines indented under the check (and keeps
    the verdict colours); off a terminal (CI logs, pipes) each message stays one line, for
    grep and for the log viewer to wrap. All text is shown as plain Text (never markup)."""
    stream = stream if stream is not None else sys.stdout
    terminal = bool(getattr(stream, "isatty", lambda: False)()) if terminal is None else terminal
    if not terminal:        # click strips the colours unless asked to keep them (color=True)
        import click
        colours = {"pass": "green", "fail": "red", "error": "red", "inconclusive": "yellow"}
        for verdict, cid, stat, messages in rows:
            click.echo(click.style(f"{verdict.upper():<13}", fg=colours.get(verdict)) + f" {cid:<20} {stat}".rstrip(),
                       file=stream)
            for i, m in enumerate(messages):
                text = m.replace("\n", "\n" + " " * indent)
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
