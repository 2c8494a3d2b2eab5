"""Where the command line writes what it writes, when the user did not say (issue 32).

The default HTML report is ``fairaudit-report.html``; when that file already holds the
report of *another* target, the new report is named after its own target
(``fairaudit-report-<target name>.html``) rather than overwriting the other one. A report
of the same target is replaced, as a re-run should. The target a report belongs to is
read from its ``<meta name="fairaudit-target">`` (older reports: their ``<title>``).
"""
from __future__ import annotations

import html
import re
from pathlib import Path

_META = re.compile(r'<meta name="fairaudit-target" content="([^"]*)"')
_TITLE = re.compile(r"<title>fairaudit report — (.*?)</title>", re.S)


def target_name(path: str) -> str:
    """A file-name-safe name of a target: ``my_allocator`` for ``src/my_allocator.py``,
    ``module_allocate`` for ``module:allocate``."""
    base = re.split(r"[\\/]", str(path or "target").rstrip("/\\"))[-1]
    base = re.sub(r"\.(py|csv|parquet|joblib|skops|pkl)$", "", base)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._")
    return base[:60] or "target"


def report_target(path: Path) -> str | None:
    """The target path recorded in an existing report, or None when it cannot be read."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return None
    m = _META.search(head) or _TITLE.search(head)
    if m is None:
        return None
    from urllib.parse import unquote      # the meta tag holds the path percent-encoded (no user text in a tag)
    return unquote(html.unescape(m.group(1))) if m.re is _META else html.unescape(m.group(1))


def default_report_path(default: str, d: dict) -> str:
    """``default`` unless it holds another target's report; then the name carries the target's."""
    p = Path(default)
    target = str((d.get("target") or {}).get("path") or "")
    if not p.exists():
        return default
    other = report_target(p)
    if other is None or other == target:
        return default
    return str(p.with_name(f"{p.stem}-{target_name(target)}{p.suffix}"))
