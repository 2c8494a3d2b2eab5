"""Configuration files, found and checked the way pytest and ruff find theirs.

Where the options come from, first found wins:

1. ``--config FILE`` (TOML: its ``[tool.fairaudit]`` table when it has one, else its
   top-level keys);
2. searching upward from the current folder, in each folder: ``fairaudit.toml`` (top-level
   keys, or a ``[tool.fairaudit]`` table), then ``pyproject.toml`` when it has a
   ``[tool.fairaudit]`` table (a ``pyproject.toml`` without one is passed over, as ruff does).

The keys are defined once, by the JSON Schema shipped in the package
(``fairaudit/schema/config.schema.json``, :func:`config_schema`). A file with an unknown
key (with the closest known key as a did-you-mean), a value of the wrong type, or TOML that
does not parse is refused with a :class:`ConfigError` naming the file, the line and the
key — the audit exits 2 before anything is loaded or drawn. Relative paths in a file
(``data``, ``html``, ``json``, ``junit``, ``record``, ``from_recording``, and ``target``
when it names a file there) are read relative to that file's folder. Which
file was used is recorded in the JSON result's ``config.config_file`` and in the report's
footer.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import UsageError

#: keys whose values are paths, resolved against the configuration file's folder
PATH_KEYS = ("data", "html", "json", "junit", "record", "from_recording")
TABLE = ("tool", "fairaudit")


class ConfigError(UsageError):
    """A configuration file that cannot be used: not TOML, an unknown key, a wrong type."""


@lru_cache(maxsize=1)
def config_schema() -> dict:
    """The JSON Schema of the configuration keys (the one definition of them)."""
    from importlib import resources
    return json.loads(resources.files("fairaudit").joinpath("schema/config.schema.json").read_text(encoding="utf-8"))


def known_keys() -> list[str]:
    return list(config_schema()["properties"])


@dataclass
class LoadedConfig:
    """The options of one configuration file (or none)."""

    values: dict = field(default_factory=dict)
    path: str | None = None          # the file, as shown (relative to the current folder when below it)
    table: str | None = None         # "[tool.fairaudit]" or None for top-level keys
    text: str = ""                   # the file's text (to name the line of a key)

    def param_origin(self, check: str, name: str | None = None) -> str:
        """Where ``[params.CHECK] NAME`` was set: ``[tool.fairaudit] in pyproject.toml:7``."""
        prefix = TABLE if self.table else ()
        line = _key_line(self.text, prefix + ("params",), check, [name] if name else None)
        return self.origin + (f":{line}" if line != "?" else "")

    @property
    def origin(self) -> str:
        """How messages name where an option was set: ``[tool.fairaudit] in pyproject.toml``."""
        if self.path is None:
            return "the configuration"
        return f"{self.table} in {self.path}" if self.table else self.path


def _shown(p: Path, cwd: Path) -> str:
    try:
        rel = os.path.relpath(p, cwd)
    except ValueError:          # another drive (Windows)
        return str(p)
    return rel if len(rel) <= len(str(p)) else str(p)


def find_config(start: Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the current folder):
    searching upward, ``fairaudit.toml``, else a ``pyproject.toml`` with ``[tool.fairaudit]``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        own = folder / "fairaudit.toml"
        if own.is_file():
            return own
        pp = folder / "pyproject.toml"
        if pp.is_file():
            text = _read(pp, pp.name)
            try:
                doc = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                if re.search(r"^\s*\[+\s*tool\.fairaudit\b", text, re.M):
                    raise _toml_error(pp.name if folder == here else str(pp), e, text) from None
                continue
            if isinstance(doc.get("tool"), dict) and "fairaudit" in doc["tool"]:
                return pp
    return None


def _read(p: Path, shown: str) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{shown}: not UTF-8 text ({e.reason} at byte {e.start}); a TOML file must be UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{shown}: cannot be read ({e.strerror or e})") from None


def _toml_error(shown: str, e: tomllib.TOMLDecodeError, text: str = "") -> ConfigError:
    msg = str(e)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    where = f"{shown}:{m.group(1)}" if m else shown
    what = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if m else msg
    col = f" (column {m.group(2)})" if m else ""
    if not m and "(at end of document)" in msg:
        where = f"{shown}:{max(1, len(text.splitlines()))}"
        what, col = msg.replace(" (at end of document)", ""), " (at the end of the file)"
    return ConfigError(f"{where}: not valid TOML: {what}{col}; no option of this file was used")


def load_config(path: str | None = None, *, cwd: Path | None = None) -> LoadedConfig:
    """The options of ``path`` (``--config``), else of the file :func:`find_config` finds,
    validated against the schema, with relative paths resolved against the file's folder."""
    cwd = Path(cwd or Path.cwd())
    if path:
        p = Path(path)
        if not p.is_absolute():
            p = cwd / p
        if not p.is_file():
            raise ConfigError(f"config file not found: {path}")
        shown = str(path)
    else:
        p = find_config(cwd)
        if p is None:
            return LoadedConfig()
        shown = _shown(p, cwd)
    text = _read(p, shown)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(shown, e, text) from None
    tool = doc.get("tool")
    if isinstance(tool, dict) and "fairaudit" in tool:
        values, table = tool["fairaudit"], "[tool.fairaudit]"
        if not isinstance(values, dict):
            raise ConfigError(f"{shown}:{_key_line(text, ('tool',), 'fairaudit')}: tool.fairaudit must be a table")
        prefix = TABLE
    elif p.name == "pyproject.toml":      # named by --config, but holds no options of fairaudit's
        raise ConfigError(f"{shown}: has no [tool.fairaudit] table; put the options there (or in a fairaudit.toml)")
    else:
        values, table, prefix = doc, None, ()
    validate(values, shown, text, prefix)
    values = dict(values)
    base = os.path.dirname(shown)
    for key in PATH_KEYS:
        v = values.get(key)
        if isinstance(v, str) and v not in ("", "-") and base and not os.path.isabs(v) and "://" not in v:
            values[key] = os.path.join(base, v)
    t = values.get("target")        # a file beside the config (not a module:function or URL)
    if isinstance(t, str) and base and not os.path.isabs(t) and "://" not in t and \
            os.path.exists(os.path.join(cwd, base, t)):
        values["target"] = os.path.join(base, t)
    return LoadedConfig(values=values, path=shown, table=table, text=text)


def validate(values: dict, shown: str, text: str, prefix: tuple[str, ...] = TABLE) -> None:
    """Refuse (ConfigError: file, line, key) the first unknown key or wrong value of ``values``."""
    import jsonschema
    keys = known_keys()
    where = "[" + ".".join(prefix) + "]" if prefix else "the file's top level"
    for key in values:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the keys are {', '.join(keys)}"
            raise ConfigError(f"{shown}:{_key_line(text, prefix, key)}: unknown key '{key}' in {where}{hint}")
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        e = errors[0]
        path = [str(p) for p in e.absolute_path]
        key = path[0] if path else "?"
        line = _key_line(text, prefix, key, path[1:] if len(path) > 1 else [])
        name = ".".join(path) or key
        what = e.message
        if e.validator == "type":
            want = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
            what = f"expected {' or '.join(_TYPE_WORDS.get(w, w) for w in want)}, got {json.dumps(e.instance, default=str)}"
        elif e.validator == "enum":
            what = f"expected one of {', '.join(json.dumps(v) for v in e.validator_value)}, got {json.dumps(e.instance, default=str)}"
        elif e.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            what = f"{json.dumps(e.instance)} is out of range ({e.message.split(' is ', 1)[-1]})"
        raise ConfigError(f"{shown}:{line}: {name}: {what}")


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a table"}


def _key_line(text: str, prefix: tuple[str, ...], key: str, sub: list[str] | None = None) -> int | str:
    """The line of the file that sets ``key`` in the table ``prefix`` (``[tool.fairaudit]``),
    or the line of the table ``[prefix.key]`` / ``[prefix.key.SUB]`` that holds it; "?" when
    not found (a key set by an inline table or dotted key elsewhere)."""
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    current: tuple[str, ...] = ()
    want_table = prefix + (key,)
    found = None
    for i, line in enumerate(text.splitlines(), 1):
        m = header.match(line)
        if m:
            current = tuple(s.strip().strip('"\'') for s in m.group(1).split("."))
            if current[:len(want_table)] == want_table:
                if sub and len(current) > len(want_table) and current[len(want_table)] == sub[0]:
                    return i
                found = found or i
            continue
        if current == prefix and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=.]", line):
            return i
        if sub and current == want_table and re.match(rf"^\s*[\"']?{re.escape(sub[0])}[\"']?\s*=", line):
            return i
    return found if found is not None else "?"
