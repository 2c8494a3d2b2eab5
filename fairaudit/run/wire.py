"""What crosses the process boundary: requests to a worker, and its replies as data only.

The audit process never unpickles what a worker sends (issue 26.1): a worker runs the
allocator, and an allocator that finds the reply pipe could otherwise write a pickle
that runs code in the audit process. A reply is one *frame*:

    magic (4 bytes) | secret (16 bytes) | header length (uint32) | header (JSON, UTF-8)
    | for each array in the header: its raw bytes

The header is JSON (no code can run when it is read); arrays are raw little-endian
bytes of a whitelisted dtype and a stated shape (``np.frombuffer``, no pickle), booleans
packed eight to a byte. :func:`read_frame` caps the header and the arrays, reads with a
timeout on every read, and checks the per-audit secret the worker was given when it
loaded the allocator. :func:`decode_reply` then checks every field's type and turns the
header into one of the named reply types below; anything else is a :class:`WireError`
(the pool kills the worker and fails its task). The audit process re-validates every
outcome it receives (:mod:`fairaudit.run.sampler`), so a forged frame can at most claim
outcomes the allocator could have returned itself.

Requests (audit → worker) are trusted data the audit process makes; they go to the
worker pickled (:mod:`multiprocessing.connection`).
"""
from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from dataclasses import dataclass

import numpy as np

MAGIC = b"FAR1"
SECRET_BYTES = 16
#: the most a reply's JSON header may hold
HEADER_CAP = 4 * 2**20
#: the most a reply's arrays may hold together (outcomes of one task)
ARRAY_CAP = 2 * 2**30
#: seconds a read of a reply may wait for more bytes once the reply has begun
READ_TIMEOUT = 30.0
_DTYPES = {"<i8": np.int64, "|b1": np.bool_}
_TEXT_CAP = 20000


class WireError(Exception):
    """A reply that is not a well-formed fairaudit frame (or a stalled one)."""


# ---------------------------------------------------------------------------
# Requests (audit → worker)
# ---------------------------------------------------------------------------

@dataclass
class DrawItem:
    """Draws ``start .. stop-1`` of ``stream`` on ``inst`` (the audit process's Instance)."""
    inst: object
    seed: int
    stream: str
    start: int
    stop: int
    chunk: int


@dataclass
class DrawTask:
    """A batch of draw ranges, one round trip; ``budget_left``: seconds of ``--budget``
    left (None: no budget)."""
    items: list
    budget_left: float | None = None

    @property
    def draws(self) -> int:
        return sum(i.stop - i.start for i in self.items)


@dataclass
class ReproTask:
    """The reproducibility probe on ``inst``."""
    inst: object
    seed: int


# ---------------------------------------------------------------------------
# Replies (worker → audit)
# ---------------------------------------------------------------------------

@dataclass
class Failure:
    """Why a task failed, and where (draw, generator index, batch size, batch item)."""
    problem: str
    draw: int | None = None
    generator_index: int | None = None
    size: int | None = None
    timeout: bool = False
    item: int = 0
    traceback: str | None = None
    #: the allocator's own frames of its exception (``file:line in function: code``), innermost last
    frames: list | None = None


@dataclass
class Loaded:
    meta: dict


@dataclass
class LoadFailed:
    problem: str


@dataclass
class Done:
    """The outcomes of each item of a :class:`DrawTask`, the allocator calls made and the
    seconds the task took in the worker."""
    tid: int
    outcomes: list
    calls: int
    seconds: float


@dataclass
class BudgetCut:
    """``--budget`` ran out during item ``item``: the outcomes of the items before it,
    and ``partial`` the draws of item ``item`` that were made (``done`` of them)."""
    tid: int
    outcomes: list
    item: int
    done: int
    partial: np.ndarray | None
    calls: int
    seconds: float


@dataclass
class Failed:
    tid: int | None
    failure: Failure


@dataclass
class Resend:
    """The worker no longer holds an input the task named by key: send the task again."""
    tid: int


@dataclass
class Repro:
    """The reproducibility probe's answer (None: a call failed; the draws will say why)."""
    tid: int
    result: dict | None


@dataclass
class Notes:
    """Carried by a reply: the allocator's warnings and NaN outputs during its task."""
    data: dict | None = None


Reply = Done | BudgetCut | Failed | Resend | Repro


# ---------------------------------------------------------------------------
# Encoding (in the worker)
# ---------------------------------------------------------------------------

def _array_header(arr: np.ndarray) -> tuple[dict, bytes]:
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        shape = list(arr.shape)
        packed = np.packbits(np.ascontiguousarray(arr), axis=-1) if arr.ndim else np.packbits(arr.reshape(1))
        return {"dtype": "bits", "shape": shape}, packed.tobytes()
    a = np.ascontiguousarray(arr, dtype=np.int64)
    return {"dtype": "<i8", "shape": list(a.shape)}, a.tobytes()


def encode(kind: str, secret: bytes, fields: dict, arrays=()) -> bytes:
    """One frame: ``kind`` and ``fields`` in the JSON header, then the arrays' bytes."""
    heads, blobs = [], []
    for a in arrays:
        if a is None:
            heads.append(None)
            continue
        h, b = _array_header(a)
        heads.append(h)
        blobs.append(b)
    header = json.dumps({"t": kind, **fields, "arrays": heads}, allow_nan=False).encode("utf-8")
    return b"".join([MAGIC, secret, struct.pack("<I", len(header)), header, *blobs])


def write_frame(fd: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ---------------------------------------------------------------------------
# Decoding (in the audit process)
# ---------------------------------------------------------------------------

def _read_exact(fd: int, n: int, timeout: float) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while got < n:
        if not poller.poll(timeout * 1000):
            raise WireError(f"the worker stopped sending its reply ({got:,} of {n:,} bytes after {timeout:g} s)")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the worker's reply pipe closed")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    return buf


def _nbytes(h: dict) -> int:
    shape = h["shape"]
    if h["dtype"] == "bits":
        if not shape:
            return 1
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        return rows * ((shape[-1] + 7) // 8)
    return math.prod(shape) * np.dtype(_DTYPES[h["dtype"]]).itemsize


def _check_array_header(h) -> dict | None:
    if h is None:
        return None
    if not isinstance(h, dict) or set(h) != {"dtype", "shape"} or h["dtype"] not in ("bits", *_DTYPES):
        raise WireError("an array of the reply is not described as fairaudit describes arrays")
    shape = h["shape"]
    if (not isinstance(shape, list) or len(shape) > 4
            or not all(type(d) is int and 0 <= d < 2**40 for d in shape)):
        raise WireError("an array of the reply has an impossible shape")
    return h


def read_frame(fd: int, secret: bytes, *, timeout: float = READ_TIMEOUT,
               array_cap: int = ARRAY_CAP) -> tuple[dict, list]:
    """Read one frame from ``fd`` (readable now): its JSON header and arrays. Raises
    :class:`WireError` on a wrong magic or secret, an oversized or malformed header or
    array, or a reply that stalls (``timeout`` per read); EOFError when the pipe closed."""
    return _parse(lambda n: _read_exact(fd, n, timeout), secret, array_cap)


def frame_from_bytes(data: bytes, secret: bytes, *, array_cap: int = ARRAY_CAP) -> tuple[dict, list]:
    """:func:`read_frame` of a frame held in memory (a Dask task's reply)."""
    if not isinstance(data, (bytes, bytearray)):
        raise WireError("a Dask task's reply is not a fairaudit frame")
    pos = [0]

    def take(n):
        if pos[0] + n > len(data):
            raise WireError("a reply ended before its announced length")
        out = bytearray(data[pos[0]:pos[0] + n])
        pos[0] += n
        return out
    return _parse(take, secret, array_cap)


def _parse(read, secret: bytes, array_cap: int) -> tuple[dict, list]:
    head = read(len(MAGIC) + SECRET_BYTES + 4)
    if bytes(head[:len(MAGIC)]) != MAGIC:
        raise WireError("its reply pipe carried bytes that are not a fairaudit reply")
    import hmac
    if not hmac.compare_digest(bytes(head[len(MAGIC):len(MAGIC) + SECRET_BYTES]), secret):
        raise WireError("a reply did not carry this audit's secret (it did not come from fairaudit's worker code)")
    (n,) = struct.unpack("<I", head[-4:])
    if n > HEADER_CAP:
        raise WireError(f"a reply header of {n:,} bytes is over the {HEADER_CAP:,}-byte cap")
    try:
        header = json.loads(bytes(read(n)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WireError("a reply header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), str) or not isinstance(header.get("arrays"), list):
        raise WireError("a reply header is not a fairaudit reply")
    heads = [_check_array_header(h) for h in header["arrays"]]
    total = sum(_nbytes(h) for h in heads if h is not None)
    if total > array_cap:
        raise WireError(f"a reply announced {total:,} bytes of outcomes, over the {array_cap:,}-byte cap")
    arrays = []
    for h in heads:
        if h is None:
            arrays.append(None)
            continue
        buf = read(_nbytes(h))
        shape = tuple(h["shape"])
        if h["dtype"] == "bits":
            bits = np.frombuffer(buf, dtype=np.uint8)
            if not shape:
                arrays.append(np.unpackbits(bits)[0].astype(bool))
                continue
            rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
            arr = np.unpackbits(bits.reshape(rows, -1), axis=-1, count=shape[-1]).astype(bool).reshape(shape)
        else:
            arr = np.frombuffer(buf, dtype=_DTYPES[h["dtype"]]).reshape(shape)
        arrays.append(arr)
    return header, arrays


def _int(v, what, lo=None, none=False):
    if v is None and none:
        return None
    if type(v) is not int or (lo is not None and v < lo):
        raise WireError(f"a reply's {what} is not a {'non-negative ' if lo == 0 else ''}integer")
    return v


def _num(v, what):
    if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
        raise WireError(f"a reply's {what} is not a number of seconds")
    return float(v)


def _text(v, what, none=False):
    if v is None and none:
        return None
    if not isinstance(v, str):
        raise WireError(f"a reply's {what} is not text")
    return v[:_TEXT_CAP]


def _notes(v) -> dict | None:
    """The allocator's warnings as the worker reported them, re-typed (they are its words)."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise WireError("a reply's notes are not a record of warnings")
    out = {"warnings": [], "more": _int(v.get("more", 0), "notes count", 0),
           "nan_outputs": _int(v.get("nan_outputs", 0), "NaN count", 0)}
    for w in v.get("warnings", ()) or ():
        if not isinstance(w, dict):
            raise WireError("a reply's warning is not a record")
        out["warnings"].append({"category": _text(w.get("category"), "warning category"),
                                "message": _text(w.get("message"), "warning message"),
                                "where": _text(w.get("where"), "warning place"),
                                "count": _int(w.get("count"), "warning count", 0)})
    return out


def failure_fields(f: Failure) -> dict:
    return {"problem": f.problem, "draw": f.draw, "generator_index": f.generator_index, "size": f.size,
            "timeout": bool(f.timeout), "item": int(f.item), "traceback": f.traceback, "frames": f.frames}


def _failure(v) -> Failure:
    if not isinstance(v, dict):
        raise WireError("a reply's failure is not a record")
    if type(v.get("timeout", False)) is not bool:
        raise WireError("a reply's timeout flag is not true or false")
    return Failure(problem=_text(v.get("problem"), "problem"), draw=_int(v.get("draw"), "draw", 0, none=True),
                   generator_index=_int(v.get("generator_index"), "generator index", 0, none=True),
                   size=_int(v.get("size"), "size", 0, none=True), timeout=v.get("timeout", False),
                   item=_int(v.get("item", 0), "item", 0), traceback=_text(v.get("traceback"), "traceback", none=True),
                   frames=_frames(v.get("frames")))


def _frames(v) -> list | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > 50:
        raise WireError("a reply's traceback frames are not a short list")
    return [_text(x, "traceback frame") for x in v]


_META_TEXT = ("kind", "name", "path", "sha256", "doc", "claims")


def _meta(v) -> dict:
    if not isinstance(v, dict):
        raise WireError("a worker's description of the allocator is not a record")
    out = {k: _text(v.get(k), k) for k in _META_TEXT}
    out["load_spec"] = _text(v.get("load_spec"), "load spec", none=True)
    out["k"] = _int(v.get("k"), "k", 0, none=True)
    out["n_inputs"] = _int(v.get("n_inputs"), "n_inputs", 0, none=True)
    for flag in ("vectorized", "accepts_var_kwargs", "kind_guessed"):
        if type(v.get(flag)) is not bool:
            raise WireError(f"a worker's description of the allocator has a bad {flag}")
        out[flag] = v[flag]
    for lst in ("arg_names", "columns"):
        if not isinstance(v.get(lst), list):
            raise WireError(f"a worker's description of the allocator has a bad {lst}")
        out[lst] = [_text(x, lst) for x in v[lst]]
    return out


def _repro(v) -> dict | None:
    if v is None:
        return None
    if not isinstance(v, dict) or any(type(v.get(k)) is not bool for k in ("differ", "numpy_global", "python_global")):
        raise WireError("a reply's reproducibility probe is not three true/false answers")
    return {k: v[k] for k in ("differ", "numpy_global", "python_global")}


def decode_reply(header: dict, arrays: list):
    """The named reply (and the notes it carries) a frame holds; :class:`WireError` when
    a field is missing or of the wrong type."""
    t = header["t"]
    notes = _notes(header.get("notes"))
    if t == "loaded":
        return Loaded(_meta(header.get("meta"))), notes
    if t == "load_error":
        return LoadFailed(_text(header.get("problem"), "problem")), notes
    tid = _int(header.get("tid"), "task id", 0, none=(t == "fail"))
    if t == "done":
        outs = arrays
        if any(a is None for a in outs):
            raise WireError("a reply's outcomes are missing")
        return Done(tid, list(outs), _int(header.get("calls"), "call count", 0),
                    _num(header.get("seconds"), "duration")), notes
    if t == "budget":
        item = _int(header.get("item"), "item", 0)
        if len(arrays) != item + 1 or any(a is None for a in arrays[:item]):
            raise WireError("a budget reply's outcomes do not match its items")
        done = _int(header.get("done"), "draws done", 0)
        partial = arrays[item]
        if partial is not None and len(partial) != done:
            raise WireError("a budget reply's partial outcomes do not match its count")
        return BudgetCut(tid, list(arrays[:item]), item, done, partial, _int(header.get("calls"), "call count", 0),
                         _num(header.get("seconds"), "duration")), notes
    if t == "fail":
        return Failed(tid, _failure(header.get("failure"))), notes
    if t == "resend":
        return Resend(tid), notes
    if t == "repro":
        return Repro(tid, _repro(header.get("result"))), notes
    raise WireError(f"a reply of unknown type {t[:40]!r}")


def encode_reply(reply, secret: bytes, notes: dict | None = None) -> bytes:
    """The frame of a named reply (in the worker; also on a Dask worker, to send back)."""
    base = {"notes": notes}
    if isinstance(reply, Loaded):
        return encode("loaded", secret, {**base, "meta": reply.meta})
    if isinstance(reply, LoadFailed):
        return encode("load_error", secret, {**base, "problem": reply.problem})
    if isinstance(reply, Done):
        return encode("done", secret, {**base, "tid": reply.tid, "calls": int(reply.calls),
                                       "seconds": float(reply.seconds)}, reply.outcomes)
    if isinstance(reply, BudgetCut):
        return encode("budget", secret, {**base, "tid": reply.tid, "item": reply.item, "done": int(reply.done),
                                         "calls": int(reply.calls), "seconds": float(reply.seconds)},
                      list(reply.outcomes) + [reply.partial])
    if isinstance(reply, Failed):
        return encode("fail", secret, {**base, "tid": reply.tid, "failure": failure_fields(reply.failure)})
    if isinstance(reply, Resend):
        return encode("resend", secret, {**base, "tid": reply.tid})
    if isinstance(reply, Repro):
        return encode("repro", secret, {**base, "tid": reply.tid, "result": reply.result})
    raise TypeError(f"not a reply: {reply!r}")


def wait_readable(fds, timeout: float) -> list:
    """The file descriptors of ``fds`` with something to read within ``timeout`` s."""
    if not fds:
        time.sleep(max(timeout, 0.0))
        return []
    r, _, _ = select.select(list(fds), [], [], max(timeout, 0.0))
    return r


__all__ = ["DrawItem", "DrawTask", "ReproTask", "Failure", "Loaded", "LoadFailed", "Done", "BudgetCut", "Failed",
           "Resend", "Repro", "Notes", "Reply", "WireError", "encode_reply", "decode_reply", "read_frame",
           "write_frame", "frame_from_bytes"]
