"""The service target file: a deployed decision API described in TOML, validated up
front against the published schema ``fairaudit/schema/service-v1.schema.json``.

::

    url = "http://127.0.0.1:8765/rank"
    kind = "ranking"                       # selection | ranking | decision
    body = { scores = "${scores}" }        # "${name}": the instance's value of name
    outcome = "ranking"                    # JMESPath into the JSON response
    timeout = 5
    concurrency = 8
    rate_limit = 200                       # requests per second
    [headers]
    Authorization = "Bearer ${SERVICE_TOKEN}"   # read from the environment: a secret
    [retry]
    attempts = 5

Every problem (not TOML, an unknown key, a missing key, an expression that does not
parse, a placeholder that names nothing, an unset environment variable) is one
:class:`~fairaudit.errors.TargetError` naming the key — exit 2 before anything is drawn.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import TargetError

#: placeholders a body template may use, per mode (what the instance supplies)
INSTANCE_FIELDS = ("scores", "k", "n", "predictions", "groups", "features", "labels", "people")
PERSON_FIELDS = ("score", "features", "groups", "label", "index", "n", "k")
BATCH_FIELDS = ("items", "n", "k")
#: the allocator arguments each placeholder reads (the target "takes" them: checks generate them)
ARGS_OF = {"scores": {"scores"}, "score": {"scores"}, "k": {"k"}, "n": set(), "predictions": {"predictions"},
           "groups": {"groups"}, "features": {"features"}, "labels": {"labels"}, "label": {"labels"},
           "people": {"features", "groups", "scores"}, "index": set(), "items": set()}

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WHOLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: secrets shorter than this are not searched for in text (they would redact ordinary words and digits)
MIN_SECRET = 4
REDACTED = "***"


def schema() -> dict:
    """The published JSON Schema of a service file (shipped in the package)."""
    return json.loads(resources.files("fairaudit").joinpath("schema/service-v1.schema.json").read_text(encoding="utf-8"))


def is_service_spec(spec) -> bool:
    """Is ``spec`` a service target file (a ``.toml`` path)?"""
    return isinstance(spec, (str, os.PathLike)) and str(spec).lower().endswith(".toml")


@dataclass
class Retry:
    attempts: int = 5
    backoff: float = 0.1
    max_backoff: float = 10.0
    jitter: float = 0.1
    max_retry_after: float = 60.0
    on_status: tuple = (429, 500, 502, 503, 504)


@dataclass
class ServiceSpec:
    """A validated service file. ``headers`` hold the secrets (interpolated); everything
    meant to be shown goes through :meth:`redact`."""

    path: str
    sha256: str
    url: str
    kind: str
    outcome: str
    method: str = "POST"
    per: str = "instance"
    batch: int = 1
    body: Any = None
    item: Any = None
    k: int | None = None
    claims: str | None = None
    headers: dict = field(default_factory=dict)
    timeout: float = 10.0
    rate_limit: float | None = None
    concurrency: int = 4
    verify: bool = True
    retry: Retry = field(default_factory=Retry)
    name: str = ""
    description: str = ""
    secrets: tuple = ()
    placeholders: frozenset = frozenset()

    @property
    def arg_names(self) -> frozenset:
        out: set = set()
        for p in self.placeholders:
            out |= ARGS_OF.get(p, set())
        return frozenset(out)

    def redact(self, text) -> str:
        """``text`` with every secret replaced by ``***``."""
        text = str(text)
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return text

    def describe(self) -> dict:
        return {"url": self.redact(self.url), "method": self.method, "kind": self.kind, "per": self.per,
                "batch": self.batch, "outcome": self.outcome}


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _interpolate_env(value: str, where: str, path: str) -> tuple[str, list[str]]:
    """``${NAME}`` / ``${NAME:-default}`` from the environment; returns (text, values used)."""
    used: list[str] = []

    def sub(m):
        name, default = m.group(1), m.group(2)
        v = os.environ.get(name)
        if v is None:
            if default is None:
                raise TargetError(f"{path}: {where} reads the environment variable {name}, which is not set "
                                  f"(export {name}=... or write ${{{name}:-default}})")
            v = default
        else:
            used.append(v)
        return v
    return _ENV.sub(sub, value), used


def _placeholders(template, allowed, key: str, path: str, found: set) -> None:
    """Collect ``${name}`` placeholders of a body template; an unknown one is refused."""
    if isinstance(template, dict):
        for k, v in template.items():
            _placeholders(v, allowed, f"{key}.{k}", path, found)
    elif isinstance(template, list):
        for i, v in enumerate(template):
            _placeholders(v, allowed, f"{key}[{i}]", path, found)
    elif isinstance(template, str):
        for m in _ENV.finditer(template):
            name = m.group(1)
            if name not in allowed:
                raise TargetError(f"{path}: {key}: unknown placeholder ${{{name}}}{_did_you_mean(name, allowed)}; "
                                  f"a body may use {', '.join('${' + a + '}' for a in allowed)}")
            if not _WHOLE.match(template):
                raise TargetError(f"{path}: {key}: a placeholder must be the whole string (\"${{{name}}}\"), "
                                  f"got {template!r}")
            found.add(name)


def _schema_error(errors, path: str) -> TargetError:
    sch = schema()
    e = sorted(errors, key=lambda e: (len(e.absolute_path), str(e.message)))[0]
    where = ".".join(str(p) for p in e.absolute_path)
    props = sch["properties"] if not where else sch["properties"].get(where.split(".")[0], {}).get("properties", {})
    if e.validator == "additionalProperties":
        unknown = sorted(set(e.instance) - set(props))
        k = unknown[0]
        full = f"{where}.{k}" if where else k
        return TargetError(f"{path}: unknown key '{full}'{_did_you_mean(k, props)}; "
                           f"{f'[{where}] has' if where else 'a service file has'} {', '.join(sorted(props))}")
    if e.validator == "required":
        m = re.search(r"'([^']+)' is a required property", e.message)
        k = m.group(1) if m else e.message
        return TargetError(f"{path}: missing key '{k}' ({sch['properties'].get(k, {}).get('description', '')})")
    return TargetError(f"{path}: key '{where or '(top)'}': {e.message}")


def load_service(path) -> ServiceSpec:
    """Read and validate the service file at ``path``."""
    try:
        import aiolimiter  # noqa: F401  (the client's, checked here: before anything is drawn)
        import httpx  # noqa: F401
        import jmespath
        import jsonschema
        import tenacity  # noqa: F401
        from jmespath.exceptions import JMESPathError
    except ImportError as e:
        from ..extras import install_hint
        raise TargetError(f"{path}: auditing a service needs {e.name}, from the 'service' extra: "
                          f"{install_hint('service')}") from None
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"service file not found: {path}")
    raw = p.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TargetError(f"{path}: not valid TOML ({e})") from None
    errors = list(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    if errors:
        raise _schema_error(errors, str(path))
    try:
        jmespath.compile(doc["outcome"])
    except JMESPathError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TargetError(f"{path}: key 'outcome': the JMESPath expression {doc['outcome']!r} does not parse ({msg})") from None
    per = doc.get("per", "instance")
    kind = doc["kind"]
    batch = int(doc.get("batch", 1))
    method = doc.get("method", "POST")
    if per == "person" and kind != "decision":
        raise TargetError(f"{path}: key 'per': per = \"person\" is for kind \"decision\" (one yes/no per person); "
                          f"a {kind} service decides a whole instance per request")
    if batch > 1 and per != "person":
        raise TargetError(f"{path}: key 'batch': batching people applies to per = \"person\"")
    if batch > 1 and "item" not in doc:
        raise TargetError(f"{path}: missing key 'item' (the template of one person; batch > 1 sends ${{items}})")
    if "item" in doc and batch == 1:
        raise TargetError(f"{path}: key 'item' is used with batch > 1 only")
    if "body" not in doc and method != "GET":
        raise TargetError(f"{path}: missing key 'body' (the JSON request body template for {method})")
    if "body" in doc and method == "GET":
        raise TargetError(f"{path}: key 'body': a GET request carries no body; use method = \"POST\"")
    found: set = set()
    allowed = BATCH_FIELDS if batch > 1 else (PERSON_FIELDS if per == "person" else INSTANCE_FIELDS)
    _placeholders(doc.get("body"), allowed, "body", str(path), found)
    if batch > 1:
        if "items" not in found:
            raise TargetError(f"{path}: key 'body': with batch > 1 the body must hold \"${{items}}\"")
        _placeholders(doc["item"], PERSON_FIELDS, "item", str(path), found)
    secrets: list[str] = []
    # the environment's values in the url's query string (?api_key=${KEY}) or user info are secrets;
    # in its host, port and path (e.g. ${PORT}) they are not
    base, qmark, query = doc["url"].partition("?")
    url, _ = _interpolate_env(base, "url", str(path))
    query, used = _interpolate_env(query, "url", str(path))
    secrets += [v for v in used if len(v) >= MIN_SECRET]
    userinfo = url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[0]
    secrets += [v for v in userinfo.split(":") if len(v) >= MIN_SECRET]
    url = url + qmark + query
    if not url.startswith(("http://", "https://")):
        raise TargetError(f"{path}: key 'url': {url!r} is not an http:// or https:// address")
    headers = {}
    for k, v in (doc.get("headers") or {}).items():
        value, used = _interpolate_env(v, f"headers.{k}", str(path))
        headers[k] = value.strip()
        secrets += [s for s in used if len(s) >= MIN_SECRET]
    r = doc.get("retry") or {}
    retry = Retry(attempts=int(r.get("attempts", 5)), backoff=float(r.get("backoff", 0.1)),
                  max_backoff=float(r.get("max_backoff", 10.0)), jitter=float(r.get("jitter", 0.1)),
                  max_retry_after=float(r.get("max_retry_after", 60.0)),
                  on_status=tuple(r.get("on_status", (429, 500, 502, 503, 504))))
    spec = ServiceSpec(path=str(path), sha256=hashlib.sha256(raw).hexdigest(), url=url, kind=kind,
                       outcome=doc["outcome"], method=method, per=per, batch=batch, body=doc.get("body"),
                       item=doc.get("item"), k=doc.get("k"), claims=doc.get("claims"), headers=headers,
                       timeout=float(doc.get("timeout", 10.0)), rate_limit=doc.get("rate_limit"),
                       concurrency=int(doc.get("concurrency", 4)), verify=bool(doc.get("verify", True)),
                       retry=retry, description=doc.get("description", ""),
                       secrets=tuple(sorted(set(secrets), key=len, reverse=True)), placeholders=frozenset(found))
    spec.name = doc.get("name") or f"{method} {spec.redact(url)}"
    return spec
