"""Progress that tells the time (issue 31, item 2): the check's plan and ETA
(fairaudit.progress), the sampler's hooks that feed it, stream ids in words, and the
terminal's bar, spinner and step labels. Display only: nothing here changes a result."""
import io
import re

import numpy as np
import pytest

import fairaudit as fa
from fairaudit.engine import AuditConfig, audit
from fairaudit.progress import CheckProgress, eta_text, stream_words
from fairaudit.sampler import Sampler
from fairaudit.terminal import AuditProgress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


class Recorder:
    """A progress display that records the sampler's hooks."""

    def __init__(self):
        self.calls = []

    def plan(self, streams, max_draws):
        self.calls.append(("plan", list(streams), max_draws))

    def expect(self, streams, counts):
        self.calls.append(("expect", list(streams), list(counts)))

    def advance(self, stream, n):
        self.calls.append(("advance", stream, n))

    def advanced(self):
        out = {}
        for c in self.calls:
            if c[0] == "advance":
                out[c[1]] = out.get(c[1], 0) + c[2]
        return out


@fa.selector(k=3)
def lottery(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)


def inst(n=10):
    return fa.Instance("pool", scores=np.linspace(0.1, 1, n), k=3)


@pytest.mark.parametrize("stream, words", [
    ("anonymity/perm/2", "permutation probe 3"),
    ("anonymity/perm/base", "permutation probe baseline"),
    ("anonymity/search/903a0f4e7416/f37d0a9c1e2b", "search for a counterexample"),
    ("anonymity/swap/0/a", "attribute-swap probe 1"),
    ("min_requirement/greedy/year/39", "greedy year 39"),
    ("systemic_exclusion/2/dm0", "2 decision-maker 1"),
    ("selection_rates", ""),
    ("multiplicity/model/p_\x1b[31m", "model p_\\x1b[31m"),      # a user's column name, escaped
])
def test_stream_ids_in_words(stream, words):
    assert stream_words(stream, stream.split("/")[0]) == words


def test_fraction_is_draws_made_over_the_plan_and_settles_when_sampling_stops():
    cp = CheckProgress("c", clock=Clock())
    cp.plan(["c/a", "c/b"], 1000)
    cp.advance("c/a", 250)
    cp.advance("c/b", 250)
    assert cp.fraction() == pytest.approx(0.25)
    cp.expect(["c/d"], [500])            # decided early, then a plain draw call: the rest of the plan stays
    assert cp.fraction() == pytest.approx(500 / 2500)
    cp.plan(["c/e"], 500)                 # ... until the next sequential sampling (or step) drops it
    assert cp.fraction() == pytest.approx(500 / 1500)
    # two draw calls announced on one stream add up
    cp3 = CheckProgress("c", clock=Clock())
    cp3.expect(["c/x", "c/x"], [300, 200])
    cp3.advance("c/x", 250)
    assert cp3.fraction() == pytest.approx(0.5)
    cp3.advance("c/x", 250)
    cp3.expect(["c/x"], [500])           # the next call on the stream
    assert cp3.fraction() == pytest.approx(0.5)
    # the same stream twice in one plan (common random numbers on two inputs) counts twice
    cp2 = CheckProgress("c", clock=Clock())
    cp2.plan(["c/x", "c/x"], 100)
    cp2.advance("c/x", 100)
    assert cp2.fraction() == pytest.approx(0.5)


def test_steps_and_parts_are_equal_shares_and_words():
    cp = CheckProgress("c", clock=Clock())
    cp.phase("search for a counterexample", 1, 2)
    assert cp.words() == "search for a counterexample (part 1 of 2)"
    cp.step("searched input", 1, 4)
    cp.expect(["c/s1"], [100])
    cp.advance("c/s1", 50)
    assert cp.words() == "searched input 1 of 4"
    assert cp.fraction() == pytest.approx((0 + 0.5) / 4 / 2)
    cp.advance("c/s1", 50)
    cp.step("searched input", 2, 4)
    assert cp.fraction() == pytest.approx(1 / 4 / 2)
    cp.phase("relabelling probes", 2, 2)
    assert cp.fraction() == pytest.approx(0.5) and cp.words() == "relabelling probes (part 2 of 2)"
    cp.plan(["c/p"], 1000)
    cp.advance("c/p", 500)
    assert cp.fraction() == pytest.approx(0.75)


def test_parts_may_declare_their_relative_sizes():
    cp = CheckProgress("c", clock=Clock())
    cp.phase("screening", 1, 3, shares=[1, 1, 8])
    cp.plan(["c/s"], 100)
    cp.advance("c/s", 100)
    assert cp.fraction() == pytest.approx(0.1)
    cp.phase("certifying", 3, 3)                  # the shares given once hold for the check
    cp.plan(["c/t"], 100)
    cp.advance("c/t", 50)
    assert cp.fraction() == pytest.approx(0.2 + 0.8 * 0.5)


def test_time_left_is_from_the_rate_measured_since_the_first_draw():
    clock = Clock()
    cp = CheckProgress("c", clock=clock)
    clock.t = 5.0                        # start-up (workers, first call): not progress
    cp.plan(["c/a"], 1000)
    assert cp.remaining() is None
    cp.advance("c/a", 100)
    clock.t = 5.5
    assert cp.remaining() is None        # less than a second of measurement
    clock.t = 15.0
    cp.advance("c/a", 400)               # 400 more in 10 s: 500 left at 40 per s
    assert cp.remaining() == pytest.approx(500 / 40)
    assert eta_text(cp.remaining()) == "ETA 0:12"
    # the plan grows (sequential sampling after a first draw call): the rate is measured afresh
    cp.plan(["c/a", "c/b"], 4000)
    assert cp.remaining() is None
    clock.t = 25.0
    cp.advance("c/b", 1000)               # 1000 of 8000 in 10 s: 6500 left at 100 per s
    assert cp.remaining() == pytest.approx(65.0)


def test_eta_text():
    assert eta_text(3725) == "ETA 1:02:05" and eta_text(0.4) == "ETA 0:00" and eta_text(None) == "ETA …"


def test_the_sampler_plans_sequential_sampling_toward_its_maximum_and_advances_every_draw():
    rec = Recorder()
    s = Sampler(fa.target_from_callable(lottery), seed=1, progress=rec, task_size=256)
    out = s.sample_until(inst(), "c/x", lambda d: len(d) >= 512, max_draws=4096, first=256)
    assert rec.calls[0] == ("plan", ["c/x"], 4096)
    assert rec.advanced() == {"c/x": len(out)} and len(out) == 512
    # every draw call says what it is about to make before it makes it
    first_expect = next(i for i, c in enumerate(rec.calls) if c[0] == "expect")
    first_advance = next(i for i, c in enumerate(rec.calls) if c[0] == "advance")
    assert first_expect < first_advance
    rec2 = Recorder()
    Sampler(fa.target_from_callable(lottery), seed=1, progress=rec2).draw_streams(
        [(inst(), "c/a", 0, 300), (inst(), "c/b", 0, 200)])
    assert rec2.advanced() == {"c/a": 300, "c/b": 200}


def test_batched_draws_in_worker_processes_advance_as_batches_finish():
    rec = Recorder()
    from pathlib import Path
    spec = str(Path(__file__).resolve().parents[1] / "examples" / "allocators" / "uniform_lottery.py")
    with Sampler.open(spec, 1, progress=rec, jobs=1) as s:
        s.draw_streams([(inst(), "c/a", 0, 300), (inst(), "c/b", 0, 200), (inst(), "c/a2", 0, 1)])
    assert rec.advanced() == {"c/a": 300, "c/b": 200, "c/a2": 1}
    assert ("expect", ["c/a", "c/b", "c/a2"], [300, 200, 1]) in rec.calls


def test_a_display_without_the_hooks_is_left_alone():
    out = Sampler(fa.target_from_callable(lottery), seed=1, progress=object(), task_size=256).draw(inst(), 512, "c/x")
    assert out.shape == (512, 3)


def test_progress_changes_no_result():
    import pandas as pd
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"score": rng.random(40), "sex": rng.choice(["F", "M"], 40)})
    plain = audit(lottery, data=df, checks=["selection_rates"], in_process=True, draws=600, seed=2)
    shown = audit(lottery, data=df, checks=["selection_rates"],
                  config=AuditConfig(seed=2, draws=600, in_process=True, progress=AuditProgress(Tty(), width=120)))
    assert plain.checks[0].draws > 0
    assert [c.to_dict() for c in plain.checks] == [c.to_dict() for c in shown.checks]


def test_on_a_terminal_the_bar_names_the_step_in_words_with_its_eta():
    stream = Tty()
    progress = AuditProgress(stream, width=140)
    with progress.running():
        progress._live.refresh()
        assert "starting" in ANSI.sub("", stream.getvalue())     # the spinner before the first check
        progress.check_started(1, 2, "anonymity")
        progress.phase("relabelling probes", 2, 2)
        progress.plan(["anonymity/perm/0", "anonymity/perm/1"], 1000)
        progress.advance("anonymity/perm/0", 300)
        progress.current._first = (progress.current.clock() - 2.0, 0.5)   # two seconds of measured rate
        progress.advance("anonymity/perm/1", 300)
        progress._live.refresh()
        screen = ANSI.sub("", stream.getvalue())
        assert re.search(r"1/2 anonymity\s+relabelling probes \(part 2 of 2\)", screen)
        assert "600 draws" in screen and "65%" in screen         # (1 + 600/2000) / 2
        assert "ETA 0:05" in screen       # 0.15 of the plan in 2 s, 0.35 left: 4.7 s
        assert "anonymity/" not in screen                         # no internal stream ids
        progress.check_finished({"verdict": "pass", "id": "anonymity"})


def test_an_audit_on_a_terminal_shows_the_checks_steps():
    stream = Tty()
    progress = AuditProgress(stream, width=140)
    with progress.running():
        audit(lottery, checks=["determinism"], config=AuditConfig(seed=1, draws=60, in_process=True,
                                                                   progress=progress))
    assert progress.verdicts and "determinism" in ANSI.sub("", stream.getvalue())


def test_a_spinner_while_the_report_is_written_then_cleared():
    stream = Tty()
    progress = AuditProgress(stream, width=100)
    with progress.status("writing the report"):
        pass
    raw = stream.getvalue()
    assert "writing the report" in ANSI.sub("", raw)
    tail = raw[raw.rindex("\x1b[2K") + len("\x1b[2K"):]
    assert ANSI.sub("", tail).strip() == ""
    off = io.StringIO()
    with AuditProgress(off).status("writing the report"):
        pass
    assert off.getvalue() == ""                                  # CI logs: nothing
