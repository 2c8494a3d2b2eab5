"""A deployed service as the source of a sampler's draws (in place of worker processes).

The sampler asks for draw ranges ``(instance, stream, start, n)``, exactly as it asks its
worker pool. Here draw ``j`` of ``stream`` on an instance is one HTTP request per *part*
(the whole instance, or each person / batch of people for ``per = "person"``), its key
``(stream, j, part, digest of the request body)``. A service cannot be seeded, so the key
is what makes the audit reproducible:

* a key asked for again is answered from memory (the same draw, as a seeded allocator
  gives the same draw for the same generator) — it costs no query;
* every attempt is written to the recording (:mod:`fairaudit.service.recording`), and
  ``--from-recording`` answers each key from it, offline: the same outcomes in the same
  order, the same budget cuts, the same errors — the same JSON.

Transport (live): ``httpx.AsyncClient`` (pooled connections, TLS verified, redirects
followed only on the same host), ``tenacity`` retries with exponential backoff and
jitter honouring ``Retry-After``, an ``aiolimiter`` rate limit and ``concurrency``
requests in flight, on an event loop in a thread of its own. A retried 429/5xx, a
timeout, a dropped connection or a body that is not JSON is retried; only the answer
finally received counts, once. ``--max-queries`` (every request counts, retries and the
reachability probe included) and ``--budget`` cut sampling like a time budget does.
"""
from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import numpy as np

from ..errors import AllocatorError, BudgetExhausted, TargetError
from ..instance import Instance
from ..targets import DEFAULT_CLAIMS, Target, validate_outcomes
from .recording import RecordingWriter, canonical, read_recording
from .spec import ServiceSpec, load_service

#: characters of a response body quoted in an error
EXCERPT = 200
#: the probe's statuses that stop the audit before any check (exit 2)
REFUSED = {401: "401 Unauthorized: check the credentials in the file's headers",
           403: "403 Forbidden: the credentials in the file's headers are not allowed this endpoint",
           404: "404 Not Found: no such endpoint; check the url",
           407: "407 Proxy Authentication Required"}


class _Cut(Exception):
    """The query budget or the time budget is spent: this attempt is not made."""


@dataclass
class _Part:
    body: object
    digest: str
    people: tuple          # person indices this part decides (per = "person"); () = the whole instance


def _jsonable(v):
    from ..result import jsonable
    return jsonable(v)


def _records(df) -> list | None:
    if df is None:
        return None
    return _jsonable(df.to_dict(orient="records"))


def _compact(n: int):
    """The smallest integer type holding indices below ``n`` (answers kept in memory)."""
    return np.int16 if n < 2 ** 15 else np.int32 if n < 2 ** 31 else np.int64


def _fill(template, values: dict):
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str) and template.startswith("${") and template.endswith("}"):
        return values.get(template[2:-1])
    return template


class ServiceTarget(Target):
    """The :class:`~fairaudit.targets.Target` of a service: what checks see (kind, the
    arguments it takes, k); its description names the service and the recording."""

    source: "ServiceSource" = None

    def describe(self) -> dict:
        d = super().describe()
        if self.source is not None:
            d["service"] = self.source.describe()
        return d


def _not_here(**kwargs):
    raise RuntimeError("a service target is called over HTTP by its sampler, not as a function")


def service_target(spec: ServiceSpec) -> ServiceTarget:
    return ServiceTarget(func=_not_here, kind=spec.kind, name=spec.name, path=spec.path, sha256=spec.sha256,
                         k=spec.k, vectorized=False, arg_names=spec.arg_names, accepts_var_kwargs=False,
                         doc=spec.description, load_spec=spec.path, remote=True,
                         claims=spec.claims or DEFAULT_CLAIMS[spec.kind])


class ServiceSource:
    """Draws of a service: live (recording every attempt to ``record``) or replayed from
    the recording ``from_recording``. See the module docstring."""

    def __init__(self, spec: ServiceSpec, *, seed: int, max_queries: int | None = None, record=None,
                 from_recording=None, command: str = ""):
        self.spec = spec
        self.seed = int(seed)
        self.max_queries = max_queries
        self.target = service_target(spec)
        self.target.source = self
        self.used = 0                     # requests made (live) or read (replay), probe included
        self.retries = 0
        self._usage = {"requests": 0, "retries": 0, "draws": 0, "reused": 0}
        self._answers: dict = {}          # key → validated outcome row (a key asked again is not re-queried)
        self._bodies_seen: set = set()
        self._parts_cache: dict = {}
        self.deadline: float | None = None
        self.command = command
        self.writer = None
        self.replay = None
        self.loop = None
        if from_recording is not None:
            header, records, hashes = read_recording(from_recording)
            self._check_header(header, from_recording)
            self.replay = self._index(records)
            # the live audit named the recording by its head when the checks had drawn: the
            # record before the closing one
            self.recording = {"path": header.get("path"), "sha256": hashes[-2]}
            self.recorded_command = header.get("command", "")
            self.recorded_service = header.get("service") or {}
            probe = self.replay.get(("probe", 0, 0, ""))
            self.used = probe["attempts"] if probe else 0
        else:
            self.recording_path = str(record)
            self.writer = RecordingWriter(record, self._header())
            self._start_loop()

    # -- recording -------------------------------------------------------------
    def _header(self) -> dict:
        return {"path": self.recording_path, "service": self.spec.describe(), "service_sha256": self.spec.sha256,
                "kind": self.spec.kind, "seed": self.seed, "max_queries": self.max_queries,
                "command": self.spec.redact(self.command)}

    def _check_header(self, header: dict, path) -> None:
        if header.get("service_sha256") != self.spec.sha256:
            raise TargetError(f"{path}: recorded from another service file (its sha256 differs from "
                              f"{self.spec.path}'s); replay it with the file it was recorded with")
        for name, mine, opt in (("seed", self.seed, "--seed"), ("max_queries", self.max_queries, "--max-queries")):
            if header.get(name) != mine:
                raise TargetError(f"{path}: recorded with {opt} {header.get(name)}, not {mine}: replay with the "
                                  f"recorded options ({header.get('command', '')})")

    def _index(self, records: list[dict]) -> dict:
        """key → {"attempts": n, "final": record | None, "cut": bool}; the probe's record counted."""
        idx: dict = {}
        for r in records:
            if r.get("type") not in ("attempt", "cut"):
                continue
            key = tuple(r["key"])
            e = idx.setdefault(key, {"attempts": 0, "final": None, "cut": False})
            if r["type"] == "cut":
                e["cut"] = True
            else:
                e["attempts"] += 1
                if r.get("final"):
                    e["final"] = r
        return idx

    def _record(self, rec: dict) -> None:
        if self.writer is not None:
            self.writer.append(rec)

    # -- the event loop (live) ------------------------------------------------------
    def _start_loop(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fairaudit-service", daemon=True)
        self._thread.start()
        self._run(self._setup())

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _setup(self):
        import httpx
        from aiolimiter import AsyncLimiter
        s = self.spec
        # idle connections are dropped after 2 s, before a server's keep-alive timeout closes them (uvicorn: 5 s,
        # nginx: 75 s): a request sent on a connection the server is closing never reaches it, and would be
        # counted as a query the service did not see
        limits = httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency,
                              keepalive_expiry=2.0)
        self.client = httpx.AsyncClient(headers=s.headers, timeout=httpx.Timeout(s.timeout), verify=s.verify,
                                        follow_redirects=False, limits=limits)
        self.sem = asyncio.Semaphore(s.concurrency)
        rate = s.rate_limit
        self.limiter = None if not rate else (AsyncLimiter(rate, 1.0) if rate >= 1 else AsyncLimiter(1, 1.0 / rate))

    async def _teardown(self):
        await self.client.aclose()

    def close(self) -> None:
        if self.loop is not None:
            try:
                self._run(self._teardown())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(5)
                self.loop.close()
                self.loop = None
        if self.writer is not None:
            self.writer.close()

    # -- one request, retried --------------------------------------------------------
    def _excerpt(self, text) -> str:
        t = self.spec.redact(text if text is not None else "")
        return t if len(t) <= EXCERPT else t[:EXCERPT] + "…"

    async def _send(self, body):
        """One HTTP exchange (same-host redirects followed): (status, text, headers)."""
        s = self.spec
        url = s.url
        for _ in range(6):
            kw = {} if s.method == "GET" else {"json": body}
            resp = await self.client.request(s.method, url, **kw)
            if resp.is_redirect and "location" in resp.headers:
                nxt = urljoin(url, resp.headers["location"])
                a, b = urlsplit(url), urlsplit(nxt)
                if (a.scheme, a.netloc) != (b.scheme, b.netloc):
                    return resp.status_code, resp.text, resp.headers, (
                        f"redirected to another host ({self.spec.redact(b.scheme + '://' + b.netloc)}); "
                        f"fairaudit follows redirects on the service's own host only")
                url = nxt
                continue
            return resp.status_code, resp.text, resp.headers, None
        return resp.status_code, resp.text, resp.headers, "more than 5 redirects"

    async def _attempt(self, key, body, digest, number: int, probe: bool = False) -> dict:
        """One attempt, recorded: ``{"rec": record, "retry": bool, "retry_after": s}``."""
        import httpx
        s = self.spec
        async with self.sem:
            if self.limiter is not None:
                await self.limiter.acquire()
            if not probe:
                if self.max_queries is not None and self.used >= self.max_queries:
                    raise _Cut()
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise _Cut()
            self.used += 1
            t0 = time.perf_counter()
            status = text = headers = problem = None
            try:
                if probe:
                    resp = await self.client.request("HEAD", s.url)
                    status, text, headers = resp.status_code, "", resp.headers
                else:
                    status, text, headers, problem = await self._send(body)
            except httpx.TimeoutException:
                problem = f"no answer within the {s.timeout:g} s timeout"
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            latency = (time.perf_counter() - t0) * 1000.0
        ra = None
        if headers is not None and "retry-after" in headers:
            try:
                ra = max(0.0, float(headers["retry-after"]))
            except ValueError:
                ra = None              # an HTTP date: back off as usual
        if probe:
            retry = status in s.retry.on_status
            ok = status is not None and status not in REFUSED and not retry
        elif status is None:                        # transport failure (timeout, dropped connection): retried
            ok, retry = False, True
        else:
            ok, retry, problem = self._classify(status, text, problem)
        final = ok or not retry or number >= s.retry.attempts
        rec = {"type": "attempt", "key": list(key), "body": digest, "attempt": number, "final": final,
               "status": status, "latency_ms": round(latency, 3), "ok": ok,
               "problem": self.spec.redact(problem) if problem else None,
               "response": self.spec.redact(text) if text is not None else None}
        self._record(rec)
        self._note_attempt(key, retried=not final)
        return {"rec": rec, "retry": not final, "retry_after": ra}

    def _classify(self, status, text, problem) -> tuple[bool, bool, str | None]:
        """(ok, retry, problem) of one received response."""
        if problem is not None:
            return False, False, problem
        if status in self.spec.retry.on_status:
            return False, True, f"status {status}"
        if not 200 <= status < 300:
            return False, False, f"status {status}"
        try:
            json.loads(text)
        except ValueError:
            return False, True, "the response is not JSON"
        return True, False, None

    def _wait(self, rs) -> float:
        r = self.spec.retry
        got = rs.outcome.result()
        if got.get("retry_after") is not None:
            return min(got["retry_after"], r.max_retry_after)
        # exponential backoff with jitter (wall-clock only: no result depends on it)
        return min(r.max_backoff, r.backoff * 2.0 ** (rs.attempt_number - 1)) + (random.uniform(0, r.jitter) if r.jitter else 0.0)

    async def _request(self, key, body, digest, probe: bool = False) -> dict:
        """Attempts of one request until an answer that counts, a failure that is not
        retried, or the attempts are spent (every attempt recorded as it is made): the
        final attempt's record, or ``{"type": "cut"}`` when a budget stopped it."""
        from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt
        if digest not in self._bodies_seen and not probe:
            self._bodies_seen.add(digest)
            self._record({"type": "body", "body": digest, "request": _jsonable(body)})
        number = 0
        retrying = AsyncRetrying(stop=stop_after_attempt(self.spec.retry.attempts), wait=self._wait,
                                 retry=retry_if_result(lambda g: g["retry"]),
                                 retry_error_callback=lambda rs: rs.outcome.result())
        got = None
        try:
            async for attempt in retrying:
                with attempt:
                    number += 1
                    got = await self._attempt(key, body, digest, number, probe=probe)
                if not attempt.retry_state.outcome.failed:
                    attempt.retry_state.set_result(got)
        except _Cut:
            self._record({"type": "cut", "key": list(key)})
            return {"type": "cut"}
        return got["rec"]

    def _note_attempt(self, key, retried: bool) -> None:
        if key[0] == "probe":
            return
        self._usage["requests"] += 1
        if retried:
            self._usage["retries"] += 1
            self.retries += 1

    # -- the probe ---------------------------------------------------------------------
    def probe(self) -> None:
        """One HEAD request before any check: a refused connection, an unknown host, a
        401/403/404 stop the audit here (exit 2) with one line naming the cause."""
        if self.replay is not None:
            return
        rec = self._run(self._request(("probe", 0, 0, ""), None, "", probe=True))
        s = self.spec
        if rec.get("status") is None:
            raise TargetError(f"{s.path}: the service at {s.redact(s.url)} cannot be reached: {rec.get('problem')}")
        if rec["status"] in REFUSED:
            raise TargetError(f"{s.path}: the service at {s.redact(s.url)} refused the first request: "
                              f"{REFUSED[rec['status']]}")
        if rec["status"] in s.retry.on_status:
            raise TargetError(f"{s.path}: the service at {s.redact(s.url)} answered the first request with status "
                              f"{rec['status']} on each of {s.retry.attempts} attempts")

    # -- instances → request parts -------------------------------------------------------
    def parts(self, inst: Instance) -> list[_Part]:
        key = id(inst)
        hit = self._parts_cache.get(key)
        if hit is not None and hit[0] is inst:
            return hit[1]
        s = self.spec
        n = inst.n
        k = self.target.effective_k(inst)
        scores = None if inst.scores is None else _jsonable(np.asarray(inst.scores))
        feats, groups = _records(inst.features), _records(inst.groups)
        labels = None if inst.labels is None else _jsonable(np.asarray(inst.labels))

        def person(i):
            return {"score": None if scores is None else scores[i], "features": None if feats is None else feats[i],
                    "groups": None if groups is None else groups[i], "label": None if labels is None else labels[i],
                    "index": i, "n": n, "k": k}
        if s.per == "instance":
            people = [{**(feats[i] if feats else {}), **(groups[i] if groups else {}),
                       **({"score": scores[i]} if scores is not None else {})} for i in range(n)] \
                if "people" in s.placeholders else None
            values = {"scores": scores, "k": k, "n": n, "features": feats, "groups": groups, "labels": labels,
                      "people": people,
                      "predictions": None if inst.predictions is None else _jsonable(np.asarray(inst.predictions))}
            bodies = [(_fill(s.body, values), ())]
        elif s.batch == 1:
            bodies = [(_fill(s.body, person(i)), (i,)) for i in range(n)]
        else:
            bodies = []
            for a in range(0, n, s.batch):
                idx = tuple(range(a, min(a + s.batch, n)))
                bodies.append((_fill(s.body, {"items": [_fill(s.item, person(i)) for i in idx], "n": n, "k": k}), idx))
        out = [_Part(b, sha256(canonical(b).encode()).hexdigest()[:20], idx) for b, idx in bodies]
        self._parts_cache = {key: (inst, out)}      # the last instance only: ranges come instance by instance
        return out

    # -- draws ---------------------------------------------------------------------------
    def draw(self, sampler, requests, partial: bool) -> list:
        """The outcomes of each ``(instance, stream, start, n)`` range (None where n is 0),
        as the sampler's worker pool gives them; the first failing draw in request order
        raises its :class:`AllocatorError`; a budget cut keeps the prefix drawn before it
        (``partial``) or raises :class:`BudgetExhausted`."""
        self.deadline = None if self.replay is not None else sampler.deadline
        plan = []          # (range index, draw index, keys of its parts)
        for r, (inst, stream, start, n) in enumerate(requests):
            if n <= 0:
                continue
            ps = self.parts(inst)
            for j in range(start, start + n):
                plan.append((r, j, [(stream, j, p, part.digest) for p, part in enumerate(ps)]))
        finals = self._finals(plan, requests)
        return self._assemble(sampler, plan, finals, requests, partial)

    def _finals(self, plan, requests) -> dict:
        """key → final attempt record, ``{"type": "cut"}`` or None (not asked: a draw before it failed)."""
        todo = []
        out: dict = {}
        for r, j, keys in plan:
            for key in keys:
                if key in self._answers or key in out:
                    continue
                out[key] = None
                todo.append((r, key))
        if self.replay is not None:
            for _, key in todo:
                e = self.replay.get(key)
                if e is None:
                    continue
                self._usage["requests"] += e["attempts"]
                self._usage["retries"] += e["attempts"] - (1 if e["final"] is not None else 0)
                self.retries += e["attempts"] - (1 if e["final"] is not None else 0)
                self.used += e["attempts"]
                out[key] = e["final"] if e["final"] is not None else ({"type": "cut"} if e["cut"] else None)
            return out
        bodies = {}
        for r, j, keys in plan:
            ps = self.parts(requests[r][0])
            for key in keys:
                bodies[key] = ps[key[2]].body
        out.update(self._run(self._fetch_all([k for _, k in todo], bodies)))
        return out

    async def _fetch_all(self, keys, bodies) -> dict:
        stop = asyncio.Event()
        got: dict = {}

        async def one(key):
            if stop.is_set():
                return
            rec = await self._request(key, bodies[key], key[3])
            got[key] = rec
            if rec.get("type") == "attempt" and not rec.get("ok"):
                stop.set()           # a draw failed: the draws after it are not needed
        # tasks start in order; the semaphore lets ``concurrency`` of them send at once
        await asyncio.gather(*(one(k) for k in keys))
        return got

    def _outcome(self, rec: dict, part: _Part):
        """The outcome a final record carries (for its part), or raise ValueError(problem)."""
        import jmespath
        if not rec.get("ok"):
            raise ValueError(rec.get("problem") or "no answer")
        value = jmespath.search(self.spec.outcome, json.loads(rec["response"]))
        if value is None:
            raise ValueError(f"the outcome expression {self.spec.outcome!r} finds nothing in the response")
        if part.people:
            vals = value if self.spec.batch > 1 else [value]
            if not isinstance(vals, list) or len(vals) != len(part.people):
                raise ValueError(f"the outcome expression gives {json.dumps(value)[:80]}; expected "
                                 f"{len(part.people)} yes/no value(s) for this request's people")
            return vals
        return value

    def _fail(self, inst, stream, j, rec, problem: str, body_digest: str) -> AllocatorError:
        s = self.spec
        status = rec.get("status") if rec else None
        attempts = rec.get("attempt") if rec else None
        msg = (f"the service ({s.method} {s.redact(s.url)}, request {body_digest}) "
               + (f"answered status {status}" if status is not None else "gave no answer")
               + (f" on attempt {attempts} of {s.retry.attempts}" if attempts else "")
               + f": {problem}"
               + (f"; body: {self._excerpt(rec.get('response'))!r}" if rec and rec.get("response") else ""))
        return AllocatorError(msg, input_label=inst.label, draw=j, stream=stream, inputs=inst.to_jsonable())

    def _assemble(self, sampler, plan, finals, requests, partial):
        rows: dict = {}          # (r, j) → outcome row
        bad: list = []           # (position, "fail" | "cut" | "missing", AllocatorError | None), in plan order
        for pos, (r, j, keys) in enumerate(plan):
            inst, stream = requests[r][0], requests[r][1]
            ps = self.parts(inst)
            if all(k in self._answers for k in keys):
                rows[(r, j)] = (np.concatenate([self._answers[k] for k in keys]) if ps[0].people
                                else self._answers[keys[0]])
                self._usage["reused"] += 1
                continue
            what = None
            for k in keys:
                if k in self._answers:
                    continue
                rec = finals.get(k)
                if rec is None:
                    what = what or ("missing", None)
                elif rec.get("type") == "cut":
                    what = what or ("cut", None)
                elif not rec.get("ok"):
                    what = ("fail", self._fail(inst, stream, j, rec, rec.get("problem") or "no answer", k[3]))
                    break
            if what is None:
                try:
                    rows[(r, j)] = self._validated(inst, ps, keys, finals)
                    self._usage["draws"] += 1
                    continue
                except ValueError as e:
                    rec = next((finals.get(k) for k in keys if finals.get(k) is not None), None)
                    what = ("fail", self._fail(inst, stream, j, rec, str(e), keys[0][3]))
            bad.append((pos,) + what)
            if what[0] == "fail":
                break
        cut_at = None
        if bad:
            pos, what, err = bad[0]
            if what == "missing":
                err = next((e for _, w, e in bad if w == "fail"), None)
                if err is None:
                    r, j, _ = plan[pos]
                    raise AllocatorError(
                        "the recording holds no answer for this draw: it was recorded with other checks or options "
                        "(replay with the recorded command)" if self.replay is not None else
                        "the service gave no answer for this draw",
                        input_label=requests[r][0].label, draw=j, stream=requests[r][1])
                raise err
            if what == "fail":
                raise err
            cut_at = pos
        cut_r, cut_j = (plan[cut_at][0], plan[cut_at][1]) if cut_at is not None else (None, None)
        outs: list = []
        for r, (inst, stream, start, n) in enumerate(requests):
            if n <= 0 or (cut_r is not None and r > cut_r):
                outs.append(None)
                continue
            stop = cut_j if r == cut_r else start + n
            got = [rows[(r, j)] for j in range(start, stop)]
            arr = np.stack(got).astype(bool if self.spec.kind == "decision" else np.int64) if got else None
            sampler.draws_made += len(got)
            sampler.calls += len(got)
            if r == cut_r:
                if not partial:
                    why = (f"the query budget (--max-queries {self.max_queries:,})" if self.spent()
                           else "the time budget (--budget)")
                    raise BudgetExhausted(f"{why} ran out while drawing {n:,} outcomes on input '{inst.label}' "
                                          f"(stream '{stream}'; {len(got):,} made)", done=len(got), outcomes=arr)
                sampler.budget_cut = True
            else:
                sampler._hook("expect", [stream], [n])
                sampler._hook("advance", stream, n)
            outs.append(arr)
        return outs

    def _validated(self, inst, ps, keys, finals) -> np.ndarray:
        """The draw's outcome from its parts' answers, checked against the kind's contract
        (ValueError naming what is wrong); its parts' answers kept for a repeated key."""
        if not ps[0].people:
            value = self._outcome(finals[keys[0]], ps[0])
            try:
                out = validate_outcomes(self.spec.kind, [value], inst, 1, self.target.effective_k(inst))[0]
            except ValueError as e:
                raise ValueError(f"its outcome {e}") from None
            self._answers[keys[0]] = out.astype(_compact(inst.n))
            return out
        dec: list = [None] * inst.n
        for p, k in enumerate(keys):
            vals = list(self._answers[k]) if k in self._answers else self._outcome(finals[k], ps[p])
            for i, v in zip(ps[p].people, vals):
                dec[i] = v
        try:
            out = validate_outcomes("decision", [dec], inst, 1, None)[0]
        except ValueError as e:
            raise ValueError(f"its yes/no answers {e}") from None
        for p, k in enumerate(keys):
            self._answers[k] = out[list(ps[p].people)]
        return out

    # -- accounting ----------------------------------------------------------------------
    def spent(self) -> bool:
        """Is the query budget spent (sampling should stop as on a spent time budget)?"""
        return self.max_queries is not None and self.used >= self.max_queries

    def take_usage(self) -> dict:
        """Requests, retries and draws since the last call (one check's cost)."""
        u, self._usage = self._usage, {"requests": 0, "retries": 0, "draws": 0, "reused": 0}
        return u

    def describe(self) -> dict:
        d = {**self.spec.describe()}
        if self.replay is not None:           # as recorded (the url may have come from the environment)
            d = {**d, **self.recorded_service}
            d["recording"] = dict(self.recording)
        else:
            self.writer._f.flush()
            d["recording"] = {"path": self.recording_path, "sha256": self.writer.head}
        d["requests"] = self.used
        d["retries"] = self.retries
        if self.max_queries is not None:
            d["max_queries"] = self.max_queries
        return d


def default_recording_path(json_path) -> str:
    """Beside the JSON result (``result.json`` → ``result.recording.jsonl``), else
    ``fairaudit-recording.jsonl``."""
    if json_path:
        p = Path(json_path)
        return str(p.with_name(p.stem + ".recording.jsonl"))
    return "fairaudit-recording.jsonl"


def open_source(path, *, seed: int, max_queries=None, record=None, from_recording=None, command: str = "") -> ServiceSource:
    """Load and validate the service file, then (live) probe the service: every problem
    is a :class:`TargetError` (exit 2) before any check runs."""
    spec = load_service(path)
    src = ServiceSource(spec, seed=seed, max_queries=max_queries, record=record or default_recording_path(None),
                        from_recording=from_recording, command=command)
    try:
        src.probe()
    except BaseException:
        src.close()
        if src.writer is not None:        # the audit did not start: no recording is left behind
            Path(src.recording_path).unlink(missing_ok=True)
        raise
    return src
