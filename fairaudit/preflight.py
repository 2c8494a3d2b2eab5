"""What was asked must be audited (issue 32): before anything is drawn, which of the
selected checks cannot run on this target and data, and the one line that says what is
missing and the exact option that supplies it.

A check named in ``--checks`` (or ``checks`` in the configuration, or ``checks=`` in
Python) that cannot run stops the audit with :class:`NotApplicableError` (exit 2), one
line per check, unless ``allow_skip`` (``--allow-skip``). Without ``--checks`` the checks
that cannot run are skipped, each with its reason and the option that would enable it;
when none can run the audit stops too ("nothing was audited").

The lines say what was found: the columns of the data, and a 0/1 or small-integer column
whose name or values look like a category (read as numeric, so not a group by default)
offered as ``--groups NAME``; a numeric column offered as ``--columns score=NAME``.
"""
from __future__ import annotations

import re

import numpy as np

from .errors import UsageError
from .labels import kinds_phrase

#: column names that read as a category (a protected attribute or a group)
CATEGORY_NAME = re.compile(r"(sex|gender|race|ethnic|group|population|age_?band|age_?group|region|religion|"
                           r"disab|nationality|origin|minority|cohort|class|cluster|segment|category|band|caste|"
                           r"marital|veteran|protected|attr)", re.I)
#: 0/1 column names that are an outcome, not a group
OUTCOME_NAME = re.compile(r"^(label|y|target|outcome|selected|hired|decision|chosen|admitted|qualified|default|"
                          r"repaid|approved|pred|prediction|yhat|y_true|y_pred)$", re.I)
ID_NAME = re.compile(r"(^|_)(id|index|idx|row|key|uuid)$", re.I)
DECORATORS = {"selection": "@fa.selector", "ranking": "@fa.ranker", "assignment": "@fa.assigner",
              "decision": "@fa.decider"}


class NotApplicableError(UsageError):
    """Requested checks that cannot run on this target and data (exit 2, before any draw);
    ``lines``: one per check, saying what is missing and the option that supplies it."""

    def __init__(self, lines: list[str], summary: str):
        self.lines, self.summary = list(lines), summary
        super().__init__("\n".join(self.lines + [summary]))


def _columns_text(cols) -> str:
    cols = [str(c) for c in cols]
    return ", ".join(cols[:20]) + (f", … ({len(cols)} columns)" if len(cols) > 20 else "")


def group_candidates(frame, exclude=()) -> list[tuple[str, str]]:
    """Numeric columns that look like categories: (name, how they are coded). A column of
    0/1 (or two integer values), or of a few small integers whose name reads as a category."""
    import pandas as pd
    out = []
    if frame is None:
        return out
    for c in frame.columns:
        name = str(c)
        if c in exclude or ID_NAME.search(name) or OUTCOME_NAME.match(name) or name.startswith("p_"):
            continue
        s = frame[c]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        v = s.dropna().to_numpy(dtype=float)
        if v.size == 0 or not np.all(np.isfinite(v)) or not np.all(v == np.round(v)):
            continue
        u = np.unique(v)
        if len(u) <= 2 and (set(u.tolist()) <= {0.0, 1.0} or CATEGORY_NAME.search(name)):
            out.append((name, "0/1 coded" if set(u.tolist()) <= {0.0, 1.0} else "2 integer values"))
        elif len(u) <= 12 and u.min() >= 0 and u.max() <= 20 and CATEGORY_NAME.search(name):
            out.append((name, f"{len(u)} small-integer values"))
    return out


def score_candidates(frame, exclude=()) -> list[str]:
    """Numeric columns that could be scores (not ids, not 0/1 categories or outcomes)."""
    import pandas as pd
    if frame is None:
        return []
    cats = {c for c, _ in group_candidates(frame, exclude)}
    out = []
    for c in frame.columns:
        name = str(c)
        if c in exclude or name in cats or ID_NAME.search(name) or OUTCOME_NAME.match(name):
            continue
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.dropna().to_numpy(dtype=float)
            if v.size and len(np.unique(v)) > 2:
                out.append(name)
    return out


def label_candidates(frame, exclude=()) -> list[str]:
    import pandas as pd
    if frame is None:
        return []
    out = []
    for c in frame.columns:
        s = frame[c]
        if c in exclude or not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            continue
        v = s.dropna().to_numpy(dtype=float)
        if v.size and set(np.unique(v).tolist()) <= {0.0, 1.0} and OUTCOME_NAME.match(str(c)):
            out.append(str(c))
    return out


def _data_of(ctx):
    """(what the data is called, its columns, its frame or None, its role columns)."""
    if ctx.log is not None:
        frame = getattr(ctx.log, "_frame", None)
        roles = set(ctx.log.group_cols) | {"decision_id", "selected", "score", "position", "pick_order", "label"}
        return "the log", list(ctx.log.columns), frame, roles
    pop = ctx.population
    if pop is None:
        return None, [], None, set()
    roles = {c for c in (pop.score_col, pop.label_col, pop.id_col) if c} | set(pop.pred_cols) | set(pop.group_cols)
    return pop.path or "the data", list(pop.frame.columns), pop.frame, roles


def explain(cls, ctx, reason: str) -> tuple[str, str]:
    """(one line: "ID needs WHAT: what was found — give OPTION", the fix alone) for a check
    that cannot run for ``reason``."""
    cid = cls.id
    if ctx.kind not in cls.kinds:
        tgt = ctx.target
        deco = DECORATORS.get(cls.kinds[0], "")
        guessed = tgt is not None and getattr(tgt, "kind_guessed", False)
        fix = (f"mark the function {deco} if it makes {cls.kinds[0]} decisions (its kind {ctx.kind} was guessed "
               f"from its name), or leave {cid} out of --checks") if guessed else ""
        what = "per-person yes/no decisions (kind decision)" if ctx.kind == "decision" else f"{ctx.kind} decisions"
        return (f"{cid} applies to {kinds_phrase(cls.kinds)}; this target makes {what} — "
                f"{fix or f'leave {cid} out of --checks'}"), fix
    if ctx.source not in cls.sources:
        fix = "audit the allocator itself (its .py file or module:function) in place of the log"
        return f"{cid} needs an allocator to call; a log cannot answer it — {fix}", fix
    low = reason.lower()
    name, cols, frame, roles = _data_of(ctx)
    if name is None and ("data" in low or "group" in low or "label" in low or "feature" in low):
        needs = ("group columns" if "group" in low else "a label column" if "label" in low
                 else "numeric feature columns" if "feature" in low else "a score column" if "score" in low else "")
        fix = "give --data FILE (a .csv or .parquet with one row per person)"
        return f"{cid} needs population data{' with ' + needs if needs else ''}; none was given — {fix}", fix
    if "group" in low:
        cands = group_candidates(frame, roles) if frame is not None else []
        if cands:
            found = "; ".join(f"{c} ({how}, read as numeric)" for c, how in cands)
            fix = f"give --groups {','.join(c for c, _ in cands)}"
            return f"{cid} needs group columns: found {found} in {name} — {fix}", fix
        fix = "give --groups COLUMN (a column naming each person's group)"
        return f"{cid} needs group columns: {name} has none; its columns are {_columns_text(cols)} — {fix}", fix
    if "score" in low or "claim" in low:
        cands = score_candidates(frame, roles) if frame is not None else []
        fix = f"give --columns score={cands[0] if cands else 'COLUMN'}"
        return f"{cid} needs a score column: columns are {_columns_text(cols)} — {fix}", fix
    if "label" in low:
        cands = label_candidates(frame, roles) if frame is not None else []
        fix = f"give --columns label={cands[0] if cands else 'COLUMN'} (1 = positive outcome)"
        return f"{cid} needs a label column: columns are {_columns_text(cols)} — {fix}", fix
    if "feature" in low:
        fix = "give --data FILE with numeric feature columns"
        return f"{cid} needs numeric feature columns: columns are {_columns_text(cols)} — {fix}", fix
    if "prediction" in low:
        fix = "name the prediction columns p_<label> in the data"
        return f"{cid} needs prediction columns (p_<label>): columns are {_columns_text(cols)} — {fix}", fix
    m = re.search(r"(--[a-z][\w-]*(?:[ =][^\s;),]+)?)", reason)
    fix = f"give {m.group(1)}" if m else "see `fairaudit checks " + cid + "` for what it needs"
    return f"{cid} cannot run: {reason} — {fix}", fix


def skip_reason_of(cls, ctx) -> str | None:
    """Why ``cls`` cannot run here, as the engine decides it (kind, source, its own
    ``skip_reason``), or None; a crash in ``skip_reason`` is left to the run (an error)."""
    if ctx.kind not in cls.kinds:
        return (f"applies to {kinds_phrase(cls.kinds)}; this target makes "
                + ("per-person yes/no decisions (kind decision)" if ctx.kind == "decision" else f"{ctx.kind} decisions"))
    if ctx.source not in cls.sources:
        return f"cannot be computed from a {ctx.source}" + (" (it needs an allocator to call)" if ctx.source == "log" else "")
    try:
        return cls().skip_reason(ctx)
    except Exception:      # noqa: BLE001 - the run reports it as the check's error
        return None


def preflight(ctx, selected, *, requested: bool, allow_skip: bool) -> dict[str, tuple[str, str]]:
    """{check id: (reason, fix)} of the selected checks that cannot run. Raises
    :class:`NotApplicableError` when a requested check cannot run, or when none can,
    unless ``allow_skip``."""
    out: dict[str, tuple[str, str]] = {}
    lines = []
    for cls in selected:
        reason = skip_reason_of(cls, ctx)
        if reason:
            line, fix = explain(cls, ctx, reason)
            out[cls.id] = (reason, fix)
            lines.append(line)
    if allow_skip or not out:
        return out
    if requested:
        n = len(lines)
        raise NotApplicableError(lines, f"{n} requested check{'s' if n > 1 else ''} cannot run on this target and "
                                        f"data; nothing was drawn (--allow-skip skips {'them' if n > 1 else 'it'} instead)")
    if len(out) == len(selected):
        # unrequested: the checks some data would enable, each with its option; the others by kind, counted
        kind_ids = [cls.id for cls in selected if ctx.kind not in cls.kinds]
        fixable = [ln for cls, ln in zip([c for c in selected if c.id in out], lines) if cls.id not in kind_ids]
        made = "per-person yes/no decisions" if ctx.kind == "decision" else f"{ctx.kind} decisions"
        tail = (f"; {len(kind_ids)} other check(s) do not apply to {made} ({', '.join(kind_ids)})"
                if kind_ids else "")
        raise NotApplicableError(fixable or lines, "nothing was audited: no check can run on this target and data"
                                 + tail + " (--allow-skip reports them as skipped, exit 0)")
    return out


def with_fix(reason: str, fix: str | None) -> str:
    """A skipped check's message: its reason and, unless the reason names it already, the
    option that would enable it."""
    msg = f"Skipped: {reason.rstrip('.')}."
    if not fix:
        return msg
    flag = re.search(r"--[a-z][\w-]*", fix)
    concrete = not re.search(r"\b[A-Z]{3,}\b", fix)       # names a column, not a placeholder
    if flag and flag.group(0) in reason and not concrete:
        return msg
    return msg + f" To run it: {fix}."


_HARD_K = re.compile(r"allocator returned (?:(\d+) indices|a mask selecting (\d+) individuals); expected k=(\d+)")
_MISSING_ARG = re.compile(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+?)(?: on input '|\s*\(draw |$)")
_ADAPTER = re.compile(r"allocator raised TargetError: (.+?)(?: on input '.*)?$", re.S)
_ARG_DATA = {"groups": "group columns", "features": "numeric feature columns", "labels": "a label column",
             "predictions": "prediction columns p_<label>", "scores": "a score column"}


def setup_problem(message: str, ctx) -> str | None:
    """The setup problem (exit 2, with its fix) behind an ``error`` verdict's message, when
    it is one rather than a finding about the allocator: a k hard-coded in a function that
    takes no ``k`` and disagrees with the audit's; a required argument this audit does not
    supply; fairaudit's model adapter refusing the data (TargetError). None otherwise."""
    tgt = ctx.target
    if tgt is None or not message:
        return None
    name = tgt.name
    m = _HARD_K.search(message)
    if m and tgt.kind == "selection" and "k" not in tgt.arg_names and not tgt.accepts_var_kwargs and tgt.k is None:
        got, want = int(m.group(1) or m.group(2)), int(m.group(3))
        return (f"{tgt.path}: '{name}' returned {got} people where k={want} was expected; it takes no k, so its k "
                f"seems fixed at {got} — mark it @fa.selector(k={got}) or give --k {got} (or let it take k: "
                f"def {name}(scores, k, rng)); if it decides per person (any number of yeses), mark it @fa.decider"
                + ("; its kind, selection, was guessed from its name" if getattr(tgt, "kind_guessed", False) else ""))
    m = _MISSING_ARG.search(message)
    if m:
        args = re.findall(r"'(\w+)'", m.group(1))
        needs = [f"{a} ({_ARG_DATA[a]})" for a in args if a in _ARG_DATA]
        fix = (f"give --data FILE with {', '.join(_ARG_DATA[a] for a in args if a in _ARG_DATA)}, or "
               if needs else "")
        return (f"{tgt.path}: '{name}' requires the argument(s) {', '.join(args)}, which this audit does not supply "
                f"here — {fix}give {'them' if len(args) > 1 else 'it'} a default in the function's signature "
                f"(e.g. {args[0]}=None)")
    m = _ADAPTER.search(message)
    if m:
        return m.group(1).strip()
    return None


def late_skips(d: dict, *, requested: bool, allow_skip: bool) -> list[str]:
    """One line per requested check that was skipped while it ran (what it found only then,
    e.g. an allocator's declared k larger than the check's inputs), unless ``allow_skip``."""
    if not requested or allow_skip:
        return []
    out = []
    for c in d.get("checks", []):
        if c.get("verdict") == "skipped":
            msg = str(c.get("message") or "")
            reason = msg[len("Skipped: "):] if msg.startswith("Skipped: ") else msg
            out.append(f"{c.get('id')} could not run: {reason.rstrip('.')} (--allow-skip accepts this, exit 0)")
    return out
