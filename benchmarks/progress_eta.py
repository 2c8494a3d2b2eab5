"""How well the terminal's ETA tells the time (issue 31, item 2).

Runs ``fairaudit check ARGS…`` in a detached tmux pane (a real terminal, so the rich
display is on), captures the pane every ``--every`` seconds, and for each capture reads
the running check ("2/3 anonymity") and its ``ETA m:ss``. When the audit is over it knows
when each check ended (its verdict line appeared, or its bar was gone) and prints, for each check, the ETA
shown nearest half-way through it against the real time that was left then
(ratio = shown / real; "within a factor 2" is 0.5 ≤ ratio ≤ 2). All captures are written
to ``--out`` with their times.

    python benchmarks/progress_eta.py --out /tmp/capture.txt -- \\
        examples/allocators/uniform_lottery.py --data examples/data/population.csv --no-html
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time

ETA = re.compile(r"(\d+)/(\d+) (\S+) .*ETA (?:(\d+):)?(\d+):(\d\d)")
RUNNING = re.compile(r"(\d+)/(\d+) (\S+)")
DONE = re.compile(r"^(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\s+(\d+)/(\d+) (\S+)", re.M)


def seconds(h, m, s) -> int:
    return int(h or 0) * 3600 + int(m) * 60 + int(s)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--width", type=int, default=150)
    ap.add_argument("args", nargs="+")
    a = ap.parse_args()
    session = f"fa_eta_{int(time.time())}"
    cmd = "fairaudit check " + " ".join(shlex.quote(x) for x in a.args) + "; echo FAIRAUDIT-EXIT $?; sleep 600"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(a.width), "-y", "30", cmd], check=True)
    t0 = time.monotonic()
    captures: list[tuple[float, str]] = []
    ended: dict[str, float] = {}
    etas: list[tuple[float, str, int]] = []
    starts: dict[str, float] = {}          # when a check's line first showed
    last_running: set[str] = set()
    try:
        while True:
            time.sleep(a.every)
            t = time.monotonic() - t0
            pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            captures.append((t, pane))
            for m in DONE.finditer(pane):
                ended.setdefault(m.group(4), t)
            running_now = set()
            for line in pane.splitlines():
                r = RUNNING.search(line)
                if r and not DONE.match(line):
                    starts.setdefault(r.group(3), t)
                    running_now.add(r.group(3))
                m = ETA.search(line)
                if m:
                    etas.append((t, m.group(3), seconds(m.group(4), m.group(5), m.group(6))))
            for cid in last_running:                 # its bar is gone: it ended by now
                if cid not in running_now:
                    ended.setdefault(cid, t)
            last_running = running_now
            if "FAIRAUDIT-EXIT" in pane:
                break
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    total = captures[-1][0]
    lines = [f"# fairaudit check {' '.join(a.args)}", f"# captured every {a.every:g} s; audit ran {total:.1f} s", ""]
    summary = []
    for cid, end in ended.items():
        seen = [(t, eta) for t, c, eta in etas if c == cid]
        if not seen:
            continue
        begin = starts[cid]
        half = begin + (end - begin) / 2
        t, eta = min(seen, key=lambda x: abs(x[0] - half))
        real = end - t
        ratio = eta / real if real > 0 else float("nan")
        summary.append(f"{cid}: shown at {begin:.1f} s, ended at {end:.1f} s; at {t:.1f} s the ETA shown was "
                       f"{eta} s, the real time left {real:.1f} s: ratio {ratio:.2f}"
                       f" ({'within' if 0.5 <= ratio <= 2 else 'NOT within'} a factor 2)")
    lines += ["## ETA at half-way through each check", *summary, ""]
    for t, pane in captures:
        lines += [f"---- capture at {t:.1f} s ----", pane.rstrip(), ""]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
