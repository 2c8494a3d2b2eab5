"""The documentation site's page of each check, written from the check registry so it
cannot drift from the code: what the check tests (its ``definition``), what it applies
to, its parameters (:class:`~fairaudit.params.Param`: default, what it accepts, help),
the verdict rule, its rows of the validation table (``docs/VALIDATION.md``) and an
example. ``docs/_hooks/checks.py`` adds these pages to the MkDocs build.

>>> from fairaudit.check import discover
>>> page = check_page(discover()["selection_rates"], validation="")
>>> page.splitlines()[0]
'# Selection rates and impact ratios (`selection_rates`)'
>>> "## Parameters" in page and "## Verdict" in page
True
"""
from __future__ import annotations

import re

from .labels import kinds_phrase

VERDICT_RULE = (
    "Every statistic comes with an interval valid at the audit's confidence (`--confidence`, "
    "default 0.95). Where larger is worse, the check **fails** when the whole interval lies above "
    "the tolerance, **passes** when the whole interval lies at or below it, and is **inconclusive** "
    "otherwise (more draws or records may decide); where smaller is worse, the same rule mirrored. "
    "A check made of several statistics fails when any of them fails and passes when all pass "
    "(`fairaudit.result.decide` and `fairaudit.result.combine`: one rule for every check).")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_STATISTIC = re.compile(r"""Statistic\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def statistics_of(cls) -> dict[str, str]:
    """statistic id → what it is in words: the check's declared ``statistic_labels``, else
    the statistics its code constructs (``Statistic("name", …)`` in its module, or in every
    module of its package), named by :func:`fairaudit.labels.statistic_label` and, where
    the headline has one, its sentence."""
    declared = getattr(cls, "statistic_labels", None)
    if declared:
        return dict(declared)
    import importlib
    import inspect
    from pathlib import Path

    from .headline import SUBJECTS
    from .labels import statistic_label
    mod = importlib.import_module(cls.__module__)
    path = Path(inspect.getfile(mod))
    files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
    # and the fairaudit modules it takes its machinery from (e.g. the comparisons of anonymity)
    for value in vars(mod).values():
        home = getattr(value, "__module__", None) if callable(value) else None
        if isinstance(home, str) and home.startswith("fairaudit.") and home != cls.__module__:
            try:
                f = Path(inspect.getfile(importlib.import_module(home)))
            except (TypeError, ImportError):
                continue
            if f not in files:
                files.append(f)
    names: dict[str, str] = {}
    for f in files:
        for name in _STATISTIC.findall(f.read_text(encoding="utf-8")):
            words = statistic_label(name)
            subject = SUBJECTS.get(name, (None,))[0]
            if subject:
                words += ": " + subject.replace("{est}", "…")
            names.setdefault(name, words)
    return names


def validation_rows(check_id: str, table: str) -> list[str]:
    """The rows of the validation table (Markdown text) that are about ``check_id``."""
    return [ln for ln in table.splitlines() if ln.startswith(f"| `{check_id}` |")]


def validation_header(table: str) -> list[str]:
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    return lines[:2]


def check_page(cls, validation: str = "") -> str:
    """Markdown of the page of check class ``cls``; ``validation`` is the text of
    docs/VALIDATION.md (its rows for this check are shown)."""
    out = [f"# {cls.title} (`{cls.id}`)", ""]
    if cls.summary:
        out += [cls.summary, ""]
    out += ["## Definition", "", cls.definition or "(no definition given)", ""]
    sources = " and ".join({"allocator": "an allocator (called on inputs)",
                            "log": "a decisions log"}.get(s, s) for s in cls.sources)
    out += ["## Applies to", "",
            f"Targets that make {kinds_phrase(cls.kinds)}; audits {sources}."
            + ("" if getattr(cls, "default", True) else
               f" Not run by default: ask for it with `--checks {cls.id}`."), ""]
    labels = statistics_of(cls)
    if labels:
        out += ["## Statistics", "", "The numbers the verdict is decided on (names as in the JSON):", "",
                "| statistic | what it is |", "|---|---|"]
        out += [f"| `{_cell(k)}` | {_cell(v)} |" for k, v in labels.items()]
        out += [""]
    out += ["## Verdict", "", VERDICT_RULE, ""]
    if cls.params:
        out += ["## Parameters", "",
                f"Set with `--param {cls.id}.NAME=VALUE` or `[tool.fairaudit.params.{cls.id}]` in pyproject.toml.", "",
                "| parameter | default | accepts | meaning |", "|---|---|---|---|"]
        for name, p in cls.params.items():
            default = "" if p.default is None else p.default
            out.append(f"| `{_cell(name)}` | `{_cell(default)}` | {_cell(p.describe())} | {_cell(p.help)} |")
        out += [""]
    rows = validation_rows(cls.id, validation)
    out += ["## Validation", ""]
    if rows:
        out += ["From the [validation table](../VALIDATION.md) (fixed seeds; false fails on fair allocators "
                "at most α, detection on violating ones):", ""]
        out += validation_header(validation) + rows + [""]
    else:
        out += ["No row of the [validation table](../VALIDATION.md) covers this check yet.", ""]
    needs = getattr(cls, "data_needs", None)
    out += ["## Example", ""]
    if needs:
        what, command = needs
        out += [f"It needs {what}:", "", "```bash", command, "```", ""]
    else:
        out += ["```bash", f"fairaudit check my_allocator.py --data people.csv --checks {cls.id}", "```", ""]
    out += ["From Python:", "", "```python", "import fairaudit as fa",
            f'result = fa.audit("my_allocator.py", data="people.csv", checks=["{cls.id}"])',
            "result.to_frame()", "```", ""]
    return "\n".join(out)


def checks_index(registry: dict) -> str:
    """The Checks page: one line per check, linking its page."""
    out = ["# Checks", "",
           "Each check tests one fairness property and returns pass, fail or inconclusive from an "
           "interval (the [verdict rule](#the-verdict-rule)). `fairaudit checks` lists them in the terminal.",
           "", "| check | applies to | what it tests |", "|---|---|---|"]
    for cid, cls in sorted(registry.items()):
        out.append(f"| [`{cid}`]({cid}.md) | {_cell(kinds_phrase(cls.kinds))} | {_cell(cls.summary or cls.title)} |")
    out += ["", "## The verdict rule", "", VERDICT_RULE, ""]
    return "\n".join(out)


def slug(check_id: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", check_id.lower())
