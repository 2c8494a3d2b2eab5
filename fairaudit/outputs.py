"""Output files that cannot be lost, half-written or silently altered (issue 26, item 4).

- :func:`preflight` checks every output path before the audit draws anything (a missing
  folder, a path that is a folder or a device such as ``/dev/full``, a folder one cannot
  write to): the command line refuses it with exit 2 instead of losing the result at the
  end.
- :func:`write_text` writes atomically: a temporary file in the same folder, flushed and
  synced, then ``os.replace`` d over the target, so a failed write leaves any previous
  file whole and a reader never sees half a file.
- :func:`seal` adds ``content_sha256`` to a result: the SHA-256 of the result's canonical
  JSON (sorted keys, no whitespace, ASCII) without that member and without ``created``
  (so two audits with the same seed carry the same digest). :func:`read_result`
  validates a result against the shipped schema and says whether its digest still
  matches. The digest catches a result edited by hand or by a tool that does not know
  it; it is not a signature — whoever can write the file can recompute it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from .errors import FairauditError, UsageError

DIGEST_KEY = "content_sha256"


class MalformedResult(FairauditError):
    """A file that is not a readable fairaudit result (one line; exit 2)."""


# ---------------------------------------------------------------------------
# Before the first draw
# ---------------------------------------------------------------------------

def problem_with(path: str) -> str | None:
    """Why ``path`` cannot be written as an output file, or None."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        return f"cannot be checked ({e.strerror or e})"
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return "is a folder"
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file (a device, pipe or socket); give a file path"
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        return f"its folder {str(folder)!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)!r} is not a folder"
    try:            # the folder takes a new file (the atomic write's temporary file)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:40]}.", suffix=".check", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return f"its folder {str(folder)!r} cannot be written ({e.strerror or e})"
    if st is not None and not os.access(p, os.W_OK):
        return "is not writable"
    return None


def preflight(outputs: dict[str, str | None]) -> None:
    """Refuse (:class:`UsageError`, exit 2) output paths that could not be written:
    ``outputs`` maps an option name (``--json``) to its path (None or ``-``: none)."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if not path or path == "-":
            continue
        why = problem_with(path)
        if why:
            raise UsageError(f"{option} {path}: {why}; nothing was run")
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {path}; give each its own")
        seen[key] = option


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``); an existing file keeps its permissions."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:40]}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------
# The digest
# ---------------------------------------------------------------------------

def _canonical(raw: dict) -> bytes:
    body = {k: v for k, v in raw.items() if k not in (DIGEST_KEY, "created")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def digest_of(raw: dict) -> str:
    """SHA-256 of a result's canonical JSON without its ``content_sha256`` and ``created``."""
    return hashlib.sha256(_canonical(raw)).hexdigest()


def seal(d: dict) -> str:
    """The JSON text of result ``d`` (:func:`fairaudit.result.dumps`) with its digest."""
    from .result import dumps
    raw = json.loads(dumps({k: v for k, v in d.items() if k != DIGEST_KEY}))
    raw[DIGEST_KEY] = digest_of(raw)
    return json.dumps(raw, indent=2, allow_nan=False, ensure_ascii=False)


def integrity(raw: dict) -> str:
    """``"intact"`` (the digest matches), ``"altered"`` (it does not) or ``"unsealed"``."""
    got = raw.get(DIGEST_KEY)
    if not isinstance(got, str):
        return "unsealed"
    try:
        return "intact" if digest_of(raw) == got else "altered"
    except (TypeError, ValueError):
        return "altered"


def integrity_note(path, state: str) -> str | None:
    """The line to print about a result's digest (None when intact)."""
    if state == "altered":
        return (f"{path} was altered after fairaudit wrote it: its content no longer matches its "
                f"{DIGEST_KEY}")
    if state == "unsealed":
        return f"{path} carries no {DIGEST_KEY}: fairaudit cannot tell whether it was altered"
    return None


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema
        from .result import result_schema
        _VALIDATOR = jsonschema.Draft202012Validator(result_schema())
    return _VALIDATOR


def _where(err) -> str:
    path = "/".join(str(p) for p in err.absolute_path)
    return f"at /{path}" if path else "at the top level"


def _short(text, limit: int = 160) -> str:
    from .text import inert
    return inert(str(text), limit).replace("\n", "\\n")


def validate(raw, name) -> None:
    """Raise :class:`MalformedResult` (one line) unless ``raw`` is a result of a readable
    schema version: version 2 against the shipped JSON Schema, version 1 for its shape."""
    from .result import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION
    if not isinstance(raw, dict):
        raise MalformedResult(f"{name} is not a fairaudit JSON result (a JSON {type(raw).__name__}, not an object)")
    version = raw.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS:
        raise MalformedResult(f"{name} has schema_version {_short(repr(version), 40)}; expected "
                              f"{' or '.join(map(str, READABLE_SCHEMA_VERSIONS))}")
    if version == SCHEMA_VERSION:
        import jsonschema
        err = jsonschema.exceptions.best_match(_validator().iter_errors(raw))
        if err is not None:
            raise MalformedResult(f"{name} is not a valid fairaudit result: {_where(err)}: {_short(err.message)}")
        return
    checks = raw.get("checks")
    if not isinstance(checks, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("verdict"), str)
            for c in checks):
        raise MalformedResult(f"{name} is not a valid fairaudit result: 'checks' must be a list of checks, each "
                              f"with an id and a verdict")


def read_result(path) -> tuple[dict, str]:
    """Read, validate and decode the result at ``path``: ``(result, integrity)`` with
    integrity ``"intact"``, ``"altered"`` or ``"unsealed"``. Every problem is one line
    (:class:`MalformedResult`)."""
    from .result import restore_unbounded
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MalformedResult(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MalformedResult(f"{path} is a folder, not a JSON result") from None
    except UnicodeDecodeError as e:
        raise MalformedResult(f"{path} is not a fairaudit JSON result (not UTF-8 text: {e.reason})") from None
    except OSError as e:
        raise MalformedResult(f"{path} cannot be read ({e.strerror or e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedResult(f"{path} is not a fairaudit JSON result ({e})") from None
    except RecursionError:
        raise MalformedResult(f"{path} is not a fairaudit JSON result (nested too deeply)") from None
    validate(raw, path)
    state = integrity(raw)
    try:
        return restore_unbounded(raw), state
    except Exception as e:  # noqa: BLE001 - a malformed 'unbounded' marker map
        raise MalformedResult(f"{path} is not a valid fairaudit result ({type(e).__name__}: {_short(e)})") from None
