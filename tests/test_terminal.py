"""The terminal while an audit runs (fairaudit.terminal): rich progress on a terminal,
plain start/end lines off one, verdict lines, the closing tally, and user text escaped."""
import io
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import fairaudit as fa
from fairaudit.engine import AuditConfig, audit
from fairaudit.terminal import AuditProgress, tally_line

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Tty(io.StringIO):
    def isatty(self):
        return True


CALLS = []


@fa.selector(k=3)
def chatty(scores, k, rng):
    if not CALLS:
        print("hello \x1b[31mred\x1b[0m from the allocator")
    CALLS.append(1)
    return rng.choice(len(scores), size=k, replace=False)


def _run(progress, target=None, checks=("selection_rates", "broome")):
    # selection_rates cannot run without data: skipped (allow_skip), as the progress lines show
    config = AuditConfig(seed=1, draws=2000, progress=progress, allow_skip=True)
    with progress.running():
        return audit(target or str(EX / "uniform_lottery.py"), checks=list(checks), config=config)


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_off_a_terminal_one_plain_line_per_check_start_and_end_with_its_time():
    stream = io.StringIO()
    res = _run(AuditProgress(stream))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/2] selection_rates …" and lines[2] == "[2/2] broome …"
    verdicts = [c.verdict for c in res.checks]
    assert re.fullmatch(rf"\[1/2\] selection_rates: {verdicts[0]} in \d+\.\d s", lines[1]), lines[1]
    assert re.fullmatch(rf"\[2/2\] broome: {verdicts[1]} in \d+\.\d s", lines[3]), lines[3]
    assert len(lines) == 4 and "\x1b" not in stream.getvalue()


def test_on_a_terminal_rich_progress_collapses_to_verdict_lines_and_is_cleared():
    stream = Tty()
    res = _run(AuditProgress(stream, width=100))
    raw = stream.getvalue()
    assert "draws" in raw and "1/2 selection_rates" in raw          # the live task line was shown
    # the last frame is cleared: after the final erase-line nothing but cursor control is left
    tail = raw[raw.rindex("\x1b[2K") + len("\x1b[2K"):]
    assert ANSI.sub("", tail).strip() == ""
    # what stays on the screen: one verdict line per finished check, in order
    screen = [ANSI.sub("", seg).rstrip() for seg in re.split(r"\r|\n", raw)]
    kept = [s for s in screen if s.startswith(("PASS", "FAIL", "INCONCLUSIVE", "ERROR", "SKIPPED"))]
    assert [k.split()[0].lower() for k in kept] == [c.verdict for c in res.checks]
    assert "1/2 selection_rates" in kept[0] and "2/2 broome" in kept[1]


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_user_output_during_the_run_is_printed_above_the_bar_escaped():
    from fairaudit.cli import _inert_user_output
    stream = Tty()
    progress = AuditProgress(stream, width=100)
    # in-process: isolated workers capture the allocator's output into the result instead
    config = AuditConfig(seed=1, draws=300, progress=progress, in_process=True)
    real_out, real_err = sys.stdout, sys.stderr
    with progress.running(), _inert_user_output():
        audit(chatty, checks=["anonymity"], config=config)
    assert (sys.stdout, sys.stderr) == (real_out, real_err)
    raw = stream.getvalue()
    line = "[output] hello \\x1b[31mred\\x1b[0m from the allocator"
    assert line in raw and "\x1b[31mred" not in raw
    # the live line was erased before the output line was written
    i = raw.index(line)
    assert raw.rfind("\x1b[2K", 0, i) > raw.rfind("draws", 0, i) or "draws" not in raw[:i]


def test_tally_counts_in_action_order_and_names_the_report():
    v = ["pass", "fail", "skipped", "pass", "fail", "pass", "skipped"]
    assert tally_line(v, 41.2, "report.html") == "2 fail · 3 pass · 2 skipped in 41 s → report.html"
    assert tally_line(["pass"], 3.04) == "1 pass in 3.0 s"
    assert tally_line(["error", "inconclusive"], 125, "a\x1bb.html") == "1 error · 1 inconclusive in 2 min 05 s → a\\x1bb.html"


def test_cli_prints_the_tally_last_and_plain_progress_on_stderr(tmp_path):
    with CliRunner().isolated_filesystem(temp_dir=tmp_path):
        res = CliRunner().invoke(main_cmd(), ["check", str(EX / "uniform_lottery.py"), "--checks",
                                              "selection_rates,multiaccuracy", "--draws", "2000",
                                              "--data", str(ROOT / "examples" / "data" / "population.csv"),
                                              "--html", "out.html", "--allow-skip"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1].startswith("1 pass · 1 skipped in ")
    assert res.stdout.strip().endswith("→ out.html")
    # the plain headline, with the statistic's own estimate, under the verdict line
    assert "The least-selected group is selected at " in res.stdout
    assert "[1/2] selection_rates …" in res.stderr and "[2/2] multiaccuracy: skipped in" in res.stderr


def main_cmd():
    from fairaudit.cli import main
    return main
