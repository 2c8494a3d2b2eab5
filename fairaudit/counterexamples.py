"""A counterexample in words: the small table the report shows above the raw JSON.

A check's ``evidence["counterexample"]`` is a JSON object whose shape is the check's own.
:func:`counterexample_table` reads the shapes the checks write — two chance vectors of a
relabelling (anonymity), a pair of inputs with one individual's chance before and after
(tv_stability), two candidates or cells in named roles (ex_interim, ex_post, ex_ante), or
a flat record — and returns who, what changed, and the chance before → after with its
interval, as rows of plain text. The report renders them; the JSON stays behind a
``<details>``. Nothing is computed here but formatting and picking rows to show.
"""
from __future__ import annotations

from .labels import column_label
from .text import fmt_number as _f

#: at most this many people in a relabelling's table (those whose chance moved most)
MAX_PEOPLE = 5


def _ci(ci) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return ""
    return f" [{_f(ci[0])}, {_f(ci[1])}]"


def _est(v) -> str:
    """``{"estimate": e, "ci": [lo, hi]}`` or a number, as ``e [lo, hi]``."""
    if isinstance(v, dict) and "estimate" in v:
        return _f(v["estimate"]) + _ci(v.get("ci"))
    return _f(v)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _vector(v, limit: int = 6) -> str:
    if not isinstance(v, list):
        return _f(v)
    vals = [_f(x, 2) if _is_number(x) else str(x) for x in v[:limit]]
    return "(" + ", ".join(vals) + (", …" if len(v) > limit else "") + ")"


def _relabelling(ce: dict) -> dict:
    """Anonymity: each person's chance on the original list and after the relabelling."""
    a, b = ce["chance_original"], ce["chance_relabelled"]
    inst = ce.get("instance") if isinstance(ce.get("instance"), dict) else {}
    scores = inst.get("scores")
    groups = inst.get("groups") if isinstance(inst.get("groups"), dict) else {}
    worst = ce.get("worst_individual")
    diffs = [(abs(y - x) if _is_number(x) and _is_number(y) else 0.0, i) for i, (x, y) in enumerate(zip(a, b))]
    people = [i for _, i in sorted(diffs, key=lambda t: (-t[0], t[1]))[:MAX_PEOPLE]]
    if worst is not None and worst in range(len(a)) and worst not in people:
        people = [worst] + people[:-1]
    people.sort(key=lambda i: (i != worst, -diffs[i][0], i))
    columns = ["person"] + (["claim"] if isinstance(scores, list) else []) + [str(g) for g in groups] + \
              ["chance, original list", "chance, relabelled", "change"]
    rows = []
    for i in people:
        row = [f"individual {i}"]
        if isinstance(scores, list):
            row.append(_f(scores[i]) if i < len(scores) else "—")
        for g in groups.values():
            row.append(str(g[i]) if isinstance(g, list) and i < len(g) else "—")
        change = b[i] - a[i] if _is_number(a[i]) and _is_number(b[i]) else None
        txt = ("+" if change is not None and change > 0 else "") + _f(change)
        if i == worst and ce.get("abs_difference_ci"):
            txt += " (|change|" + _ci(ce["abs_difference_ci"]) + ")"
        row += [_f(a[i]), _f(b[i]), txt]
        rows.append(row)
    rel = str(ce.get("relation") or "relabelling")
    pair = ce.get("pair")
    if rel == "swap" and isinstance(pair, list) and len(pair) == 2:
        what = (f"the protected attributes of individuals {pair[0]} and {pair[1]} (equal claims) were swapped; "
                "nothing else changed")
    else:
        what = f"the list was relabelled ({rel}); each person's own claim stayed the same"
    n = ce.get("n")
    cap = f"On an input of {n} people, {what}." if n else f"{what[:1].upper()}{what[1:]}."
    return {"caption": cap, "columns": columns, "rows": rows}


def _input_pair(ce: dict) -> dict:
    """Stability: the inputs before and after a small change, and one individual's chance."""
    P, Q = ce["P"], ce["P_prime"]
    i, pos = ce.get("individual"), ce.get("position")
    what = "chance of position " + str(pos) + " (1 = top)" if pos is not None else "chance of selection"
    rows = []
    if isinstance(P, list) and isinstance(Q, list) and len(P) == len(Q):
        changed = [j for j, (x, y) in enumerate(zip(P, Q)) if x != y]
        for j in changed[:MAX_PEOPLE]:
            rows.append([f"individual {j}", "input", _vector(P[j]), _vector(Q[j]), ""])
        if len(changed) > MAX_PEOPLE:
            rows.append([f"{len(changed) - MAX_PEOPLE} more", "input", "…", "…", ""])
    change = ce.get("max_marginal_change")
    rows.append([f"individual {i}", what, _f(ce.get("marginal_P")), _f(ce.get("marginal_P_prime")),
                 ("|change| " + _est(change)) if change is not None else ""])
    if ce.get("ratio") is not None:
        rows.append(["", "change per unit of input change", "", "", _est(ce["ratio"])])
    cap = (f"The input changed by ‖ΔP‖₁ = {_f(ce.get('l1_change'))}"
           + (f" (found by {ce['source']})" if ce.get("source") else "")
           + (f"; allowed: at most L = {_f(ce['L'])} times that" if _is_number(ce.get("L")) else "")
           + (f" plus δ = {_f(ce['delta'])}" if ce.get("delta") else "") + ".")
    return {"caption": cap, "columns": ["who", "what", "before", "after", "change [interval]"], "rows": rows}


def _roles(ce: dict, roles: list[str]) -> dict:
    """Two (or more) candidates or cells in named roles (better / worse, selected / rejected)."""
    keys: list[str] = []
    for r in roles:
        for k in ce[r]:
            if k.endswith("ci") or k in keys:
                continue
            keys.append(k)
    rows = []
    for r in roles:
        d = ce[r]
        row = [column_label(r).replace("_", " ")]
        for k in keys:
            v = d.get(k)
            ci = d.get(f"{k}_ci") if f"{k}_ci" in d else (d.get("ci") if k == "chance" else None)
            if isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v):
                row.append(f"{_f(v[0])} to {_f(v[1])}")
            else:
                row.append(_f(v) + (_ci(ci) if ci else ""))
        rows.append(row)
    others = [f"{column_label(k)} {_f(v)}" for k, v in ce.items()
              if k not in roles and not isinstance(v, (dict, list))]
    cap = "; ".join(others) + "." if others else ""
    return {"caption": cap, "columns": ["who"] + [column_label(k).replace("_", " ") for k in keys], "rows": rows}


def _flat(ce: dict) -> dict | None:
    """A flat record: one row per plain value (vectors and matrices stay in the JSON)."""
    rows = []
    for k, v in ce.items():
        if k.endswith("_ci") or isinstance(v, list) and v and isinstance(v[0], list):
            continue
        if isinstance(v, dict):
            if "estimate" in v:
                rows.append([column_label(k), _est(v)])
            continue
        text = _vector(v) if isinstance(v, list) else _f(v)
        ci = ce.get(f"{k}_ci")
        rows.append([column_label(k), text + (_ci(ci) if ci else "")])
    if isinstance(ce.get("deviation_ci"), list):
        rows.append(["deviation (interval)", _ci(ce["deviation_ci"]).strip()])
    return {"caption": "", "columns": ["", "value"], "rows": rows} if rows else None


def counterexample_table(ce) -> dict | None:
    """``{"caption", "columns", "rows"}`` in words for a counterexample (see the module
    docstring), or None when it is not a JSON object."""
    if not isinstance(ce, dict):
        return None
    try:
        if isinstance(ce.get("chance_original"), list) and isinstance(ce.get("chance_relabelled"), list):
            return _relabelling(ce)
        if "P" in ce and "P_prime" in ce:
            return _input_pair(ce)
        roles = [k for k, v in ce.items() if isinstance(v, dict) and "estimate" not in v]
        if len(roles) >= 2:
            return _roles(ce, roles)
        return _flat(ce)
    except Exception:       # a shape we do not know: the JSON below still shows it all
        return None
