"""A deployed service audited over HTTP (issue 27): what concurrency and sequential
stopping buy when every answer costs a round trip.

    python benchmarks/bench_service.py [--latency 50] [--pairs 2] [--draws 40]

The example service (examples/service/server.py) runs in a subprocess on 127.0.0.1 with
``--latency`` milliseconds added to each answer.

1. Concurrency: the same audit of the example ranker (anonymity without the search,
   ``--draws`` per stream: a fixed number of requests) with ``concurrency = 1`` and
   ``concurrency = 8``, paired A B A B; the speed-up is the median of the per-pair ratios
   of wall times (aim ≥ 6×).
2. Queries to a verdict: the screening rule (batched) on examples/service/applicants.csv,
   ``selection_rates`` with sequential stopping (looks of 256, 512, … draws; stops at the
   first look that decides) vs a fixed-size design that commits to its ``max_draws``
   (2,048) requests up front (aim ≤ 0.5×). Both reach the same verdict; the fixed design
   spends all of its planned queries whatever the effect size.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import fairaudit as fa

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "service"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(port: int, latency: float) -> subprocess.Popen:
    env = {**os.environ, "EXAMPLE_SERVICE_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(EX / "server.py"), "--latency", str(latency)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2):
                return proc
        except OSError:
            if time.monotonic() > end or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the example service did not start")
            time.sleep(0.2)


def with_concurrency(folder: Path, name: str, c: int) -> Path:
    text = (EX / name).read_text().replace("concurrency = 8", f"concurrency = {c}").replace("rate_limit = 2000\n", "")
    p = folder / f"{Path(name).stem}-c{c}.toml"
    p.write_text(text)
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=50.0)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--draws", type=int, default=40)
    a = ap.parse_args(argv)
    port = free_port()
    os.environ["EXAMPLE_SERVICE_PORT"] = str(port)
    proc = start_server(port, a.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            params = {"anonymity": {"search": 0, "permutations": 1}}
            tomls = {c: with_concurrency(tmp, "ranker.toml", c) for c in (1, 8)}
            print(f"example ranker behind {a.latency:g} ms, anonymity (no search) with --draws {a.draws}")
            # warm-up (imports, the checks' registry): not timed
            fa.audit(str(tomls[8]), checks=["anonymity"], draws=4, params=params, record=str(tmp / "warm.jsonl"))
            ratios = []
            for pair in range(a.pairs):
                secs = {}
                for c in (1, 8):
                    t0 = time.perf_counter()
                    r = fa.audit(str(tomls[c]), checks=["anonymity"], draws=a.draws, params=params,
                                 record=str(tmp / f"c{c}-{pair}.jsonl"))
                    secs[c] = time.perf_counter() - t0
                    q = r.checks[0].queries
                    print(f"  pair {pair + 1} concurrency {c}: {secs[c]:6.2f} s, {q['requests']} requests "
                          f"({q['requests'] / secs[c]:.0f}/s), verdict {r.checks[0].verdict}")
                ratios.append(secs[1] / secs[8])
            print(f"speed-up of concurrency 8 over 1 (median of {a.pairs} paired ratios): "
                  f"{statistics.median(ratios):.2f}x   (ratios {', '.join(f'{x:.2f}' for x in ratios)})")

            screen = with_concurrency(tmp, "screen_batch.toml", 8)
            data = str(EX / "applicants.csv")
            fixed = 2048
            t0 = time.perf_counter()
            r = fa.audit(str(screen), checks=["selection_rates"], data=data,
                         params={"selection_rates": {"max_draws": fixed}}, record=str(tmp / "seq.jsonl"))
            c = r.checks[0]
            print(f"screening rule, selection_rates: sequential stopping used {c.queries['requests']} queries "
                  f"({c.draws} draws, {time.perf_counter() - t0:.1f} s) to verdict {c.verdict}; a fixed-size "
                  f"design of {fixed} draws uses {fixed} queries: ratio {c.queries['requests'] / fixed:.3f}x")
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
