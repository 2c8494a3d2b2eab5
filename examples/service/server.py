"""The example decision service: a small ASGI app (Starlette, served by uvicorn) on
127.0.0.1 exposing the two rules of rules.py, for ``fairaudit check examples/service/ranker.toml``.

    python examples/service/server.py            # http://127.0.0.1:8765 (or $EXAMPLE_SERVICE_PORT)

Routes (JSON in, JSON out; the service draws its own randomness — it cannot be seeded):

    POST /rank           {"predictions": [[p0, p1, …], …]}  → {"ranking": [i, …]}     (top first)
    POST /screen         {"applicant": {"zip_score": …, …}}  → {"decision": {"approve": true}}
    POST /screen/batch   {"applicants": [{…}, …]}            → {"approve": [true, …]}
    GET  /stats          → {"requests": N}  (requests received, /stats excluded)
    POST /moved, /elsewhere   307 to /rank on the same host, or on ``localhost`` (another host by name)

``--token T`` (or $EXAMPLE_SERVICE_TOKEN): every request needs ``Authorization: Bearer T``,
else 401. ``--latency MS``: each answer waits that long. ``--faults``: fault injection —
a 429 with ``Retry-After`` on every 5th request, and, drawn per request from
``--fault-seed``: 500 on 10%, an answer slower than ``--slow`` seconds on 2%, malformed
JSON on 2%, a connection dropped mid-answer on 2%.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rules  # noqa: E402

DEFAULT_PORT = 8765


class Faults:
    """Which fault request ``c`` (1-based) meets: fixed by the counter and the seed."""

    def __init__(self, seed: int = 0, retry_after: str = "1", slow: float = 2.0):
        self.seed, self.retry_after, self.slow = seed, retry_after, slow

    def of(self, c: int) -> str | None:
        if c % 5 == 0:
            return "429"
        u = np.random.default_rng([self.seed, c]).random()
        for name, edge in (("500", 0.10), ("slow", 0.12), ("malformed", 0.14), ("drop", 0.16)):
            if u < edge:
                return name
        return None


def make_app(*, token: str | None = None, latency_ms: float = 0.0, faults: Faults | None = None) -> Starlette:
    state = {"requests": 0}
    lock = threading.Lock()
    rng = np.random.default_rng()          # the service's own randomness: not seedable from outside

    async def answer(payload):
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000.0)
        return JSONResponse(payload)

    async def rank(request):
        body = await request.json()
        out = rules.rank(np.asarray(body["predictions"], dtype=float), rng)
        return await answer({"ranking": [int(i) for i in out]})

    def decide(applicants: list[dict]) -> list[bool]:
        feats = pd.DataFrame(applicants)
        return [bool(v) for v in rules.screen(feats, rng)]

    async def screen(request):
        body = await request.json()
        return await answer({"decision": {"approve": decide([body["applicant"]])[0]}})

    async def screen_batch(request):
        body = await request.json()
        return await answer({"approve": decide(body["applicants"])})

    async def moved(request):        # the same endpoint on the same host: followed
        return RedirectResponse(str(request.url.replace(path="/rank")), status_code=307)

    async def elsewhere(request):    # another host (localhost is not 127.0.0.1 by name): refused by fairaudit
        return RedirectResponse(str(request.url.replace(hostname="localhost", path="/rank")), status_code=307)

    async def stats(request):
        return JSONResponse({"requests": state["requests"]})

    app = Starlette(routes=[Route("/rank", rank, methods=["POST"]), Route("/screen", screen, methods=["POST"]),
                            Route("/screen/batch", screen_batch, methods=["POST"]), Route("/stats", stats),
                            Route("/moved", moved, methods=["POST"]), Route("/elsewhere", elsewhere, methods=["POST"])])

    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/stats":
            return await app(scope, receive, send)
        with lock:
            state["requests"] += 1
            c = state["requests"]
        headers = dict(scope.get("headers") or [])
        if token is not None and headers.get(b"authorization", b"").decode() != f"Bearer {token}":
            return await JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)(scope, receive, send)
        fault = faults.of(c) if faults is not None and scope["method"] != "HEAD" else None
        if fault == "429":
            return await JSONResponse({"error": "slow down"}, status_code=429,
                                      headers={"Retry-After": faults.retry_after})(scope, receive, send)
        if fault == "500":
            return await JSONResponse({"error": "internal"}, status_code=500)(scope, receive, send)
        if fault == "slow":
            await asyncio.sleep(faults.slow)
        if fault == "malformed":
            return await Response('{"ranking": [0, 1', media_type="application/json")(scope, receive, send)
        if fault == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b'{"rank', "more_body": True})
            raise ConnectionAbortedError("fault injection: connection dropped mid-answer")
        return await app(scope, receive, send)

    asgi.state = state
    return asgi


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("EXAMPLE_SERVICE_PORT", DEFAULT_PORT)))
    ap.add_argument("--token", default=os.environ.get("EXAMPLE_SERVICE_TOKEN"))
    ap.add_argument("--latency", type=float, default=0.0, help="milliseconds added to each answer")
    ap.add_argument("--faults", action="store_true")
    ap.add_argument("--fault-seed", type=int, default=0)
    ap.add_argument("--retry-after", default="1")
    ap.add_argument("--slow", type=float, default=2.0)
    a = ap.parse_args(argv)
    import uvicorn
    faults = Faults(a.fault_seed, a.retry_after, a.slow) if a.faults else None
    print(f"example service on http://127.0.0.1:{a.port} (POST /rank, /screen, /screen/batch; GET /stats)", flush=True)
    uvicorn.run(make_app(token=a.token, latency_ms=a.latency, faults=faults), host="127.0.0.1", port=a.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
