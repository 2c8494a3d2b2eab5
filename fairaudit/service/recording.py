"""The recording of a service audit: every request and response, JSON Lines, in a hash chain.

Line 0 is a header (what was audited, the seed, the command); then one line per HTTP
attempt (``"type": "attempt"``: the draw key ``[stream, draw, part]``, the digest of the
request body, the attempt number, whether it is the draw's final answer, status, latency,
the response text or the transport error) or per draw the budget cut (``"type": "cut"``);
the last line closes it (``"type": "end"`` with the number of records). Each line carries
``hash`` = SHA-256 of the previous line's hash followed by the line's canonical JSON
without its ``hash``: changing, removing or reordering any byte breaks the chain from
that record on, and :func:`read_recording` refuses it naming the record number.

Secrets never reach it: request headers are not recorded, and every text written
passes the service's redaction.
"""
from __future__ import annotations

import json
import threading
from hashlib import sha256
from pathlib import Path

from ..errors import TargetError

FORMAT = "fairaudit-recording/1"
GENESIS = "0" * 64


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain(prev: str, record: dict) -> str:
    return sha256((prev + canonical(record)).encode("utf-8")).hexdigest()


class RecordingWriter:
    """Appends records to ``path`` (created afresh), each flushed as written."""

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self.head = GENESIS
        self.count = 0
        self.append({"type": "header", "format": FORMAT, **header})

    def append(self, record: dict) -> str:
        with self._lock:
            rec = {**record, "n": self.count}
            h = chain(self.head, rec)
            self._f.write(canonical({**rec, "hash": h}) + "\n")
            self._f.flush()
            self.head, self.count = h, self.count + 1
            return h

    def close(self) -> None:
        if self._f.closed:
            return
        self.append({"type": "end", "records": self.count})
        self._f.close()


def read_recording(path) -> tuple[dict, list[dict], list[str]]:
    """(header, records between the header and the closing record, the hash of every
    record) of the recording at ``path``, its chain verified; a record that was altered,
    removed or added is refused naming its number."""
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"recording not found: {path}")
    prev = GENESIS
    records: list[dict] = []
    hashes: list[str] = []
    with open(p, "rb") as f:
        raw_lines = f.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for i, raw in enumerate(raw_lines):
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            raise TargetError(f"{path}: record {i} is not valid JSON: the recording was altered; refused") from None
        h = rec.pop("hash", None)
        if rec.get("n") != i or h != chain(prev, rec):
            raise TargetError(f"{path}: record {i} does not match its hash chain: the recording was altered "
                              f"at or before it; refused")
        prev = h
        records.append(rec)
        hashes.append(h)
    if not records or records[0].get("type") != "header" or records[0].get("format") != FORMAT:
        raise TargetError(f"{path}: not a fairaudit recording (its first record is not a {FORMAT} header)")
    if records[-1].get("type") != "end" or records[-1].get("records") != len(records) - 1:
        raise TargetError(f"{path}: record {len(records)}: the recording ends without its closing record "
                          f"(cut short, or records were removed); refused")
    return records[0], records[1:-1], hashes
