"""Inputs a check audits on: instances from the ``--data`` file or from generators,
relabelled, subsampled, and given the arguments the allocator takes.

Every input built here has the shape of the data and the arguments of the target: the
data's group and feature columns (drawn from its rows, or a synthetic ``group`` A/B and
feature ``x`` when there is no data), the data's number of prediction labels, and k as
the allocator declares it (:meth:`fairaudit.engine.AuditContext.selection_k`).
Relabelling helpers move group and feature rows together with the individuals.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .data import generate_claims
from .errors import DataError
from .text import show_value
from .instance import Instance
from .populations import POPULATION_COLUMN, SETUPS, pool_generator, simulate_pool

__all__ = ["Instance", "PoolSpec", "pools_skip_reason", "data_pools", "parse_ratio", "simulated_pools",
           "audit_pools", "parse_instances", "build_instances", "predictions_and_labels", "permute_instance", "swap_attributes", "instance_digest", "jsonable_instance", "wants",
           "population_frames", "attach_rows", "prediction_columns", "generated_instance", "data_instance"]


def permute_instance(inst: Instance, perm, label: str) -> Instance:
    """The instance listed in the order ``perm`` (``perm[j]`` = old index now at j)."""
    perm = np.asarray(perm, dtype=int)
    ch: dict = {}
    for name in ("scores", "predictions", "labels"):
        v = getattr(inst, name)
        if v is not None:
            ch[name] = np.asarray(v)[perm]
    for name in ("groups", "features"):
        v = getattr(inst, name)
        if v is not None:
            ch[name] = v.iloc[perm].reset_index(drop=True)
    return inst.replace(label=label, **ch)


def swap_attributes(inst: Instance, pairs, columns, label: str) -> Instance:
    """Exchange the values of ``columns`` (group or feature columns) between the two
    individuals of every pair; everything else stays where it is."""
    ch: dict = {}
    for name in ("groups", "features"):
        df = getattr(inst, name)
        if df is None:
            continue
        cols = [c for c in columns if c in df.columns]
        if not cols:
            continue
        df = df.copy()
        for i, j in pairs:
            a = df.loc[i, cols].copy()
            df.loc[i, cols] = df.loc[j, cols].to_numpy()
            df.loc[j, cols] = a.to_numpy()
        ch[name] = df
    return inst.replace(label=label, **ch)


def instance_digest(inst: Instance) -> str:
    """A short stable hash of an instance's content (names its draw streams)."""
    h = hashlib.sha1()
    for name in ("scores", "predictions", "k"):
        v = getattr(inst, name)
        h.update(name.encode())
        if v is not None:
            h.update(np.ascontiguousarray(np.asarray(v, dtype=float)).tobytes())
    for name in ("groups", "features"):
        v = getattr(inst, name)
        if v is not None:
            h.update(v.to_csv(index=False).encode())
    return h.hexdigest()[:12]


def jsonable_instance(inst: Instance) -> dict:
    d = inst.to_jsonable()
    d.pop("label", None)
    return d



def wants(ctx, name: str) -> bool:
    t = ctx.target
    return t is not None and (t.accepts_var_kwargs or name in t.arg_names)


def population_frames(ctx):
    pop = ctx.population
    return (pop.groups if pop is not None else None), (pop.features if pop is not None else None)


def attach_rows(ctx, inst: Instance, rng: np.random.Generator, identical: bool = False) -> Instance:
    """Add ``groups`` / ``features`` rows when the target takes them: drawn from the data's
    rows (or a synthetic ``group`` A/B and feature ``x``), all equal when ``identical``."""
    n = inst.n
    g, f = population_frames(ctx)
    ch: dict = {}
    if wants(ctx, "groups") and inst.groups is None:
        if g is not None and len(g):
            rows = np.zeros(n, int) if identical else rng.integers(0, len(g), n)
            ch["groups"] = g.iloc[rows].reset_index(drop=True)
        else:
            vals = np.array(["A", "B"])
            ch["groups"] = pd.DataFrame({"group": vals[np.zeros(n, int) if identical else rng.integers(0, 2, n)]})
    if wants(ctx, "features") and inst.features is None:
        if f is not None and len(f):
            rows = np.zeros(n, int) if identical else rng.integers(0, len(f), n)
            ch["features"] = f.iloc[rows].reset_index(drop=True)
        else:
            ch["features"] = pd.DataFrame({"x": np.zeros(n) if identical else np.round(rng.random(n), 3)})
    return inst.replace(**ch) if ch else inst


def prediction_columns(ctx) -> int:
    pop = ctx.population
    if pop is not None and pop.predictions is not None:
        return int(pop.predictions.shape[1])
    return 3


def generated_instance(ctx, kind: str, n: int, rng: np.random.Generator, label: str) -> Instance:
    if kind == "ranking":
        m = prediction_columns(ctx)
        P = np.round(rng.dirichlet(np.ones(m), size=n), 4)
        P = P / P.sum(axis=1, keepdims=True)
        inst = Instance(label, scores=P @ np.arange(m) / max(m - 1, 1), predictions=P)
    else:
        c = np.round(generate_claims("uniform", n, rng), 4)
        inst = Instance(label, scores=c, k=ctx.selection_k(n))
    return attach_rows(ctx, inst, rng)


def data_instance(ctx, kind: str, max_n: int, rng: np.random.Generator, what: str) -> Instance | None:
    inst = ctx.population_instance()
    if inst is None:
        return None
    if kind == "ranking" and inst.predictions is None and (inst.scores is None or wants(ctx, "predictions")):
        return None     # the data has no prediction columns for a ranker that needs them
    n = inst.n
    if n > max_n:
        rows = np.sort(rng.choice(n, size=max_n, replace=False))
        sub = permute_instance(inst, rows, inst.label)   # row selection, same helper
        if kind == "selection":
            sub = sub.replace(k=ctx.selection_k(max_n))
        inst = sub
        label = f"{what} on {max_n} rows sampled from {ctx.population.path or 'the data'}"
    else:
        label = f"{what} on {ctx.population.path or 'the data'} (n={n})"
    inst = inst.replace(label=label)
    if kind == "ranking" and inst.predictions is None:
        # A ranker over scores only: still pass scores; predictions stay None.
        pass
    return attach_rows(ctx, inst, rng)


# ---------------------------------------------------------------------------
# anonymity


def parse_instances(spec: str):
    out = []
    for item in [s.strip() for s in str(spec).split(",") if s.strip()]:
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"instance {item!r}: write distribution:n:k_over_n, e.g. uniform:1000:0.1")
        dist, n, r = parts[0], int(parts[1]), float(parts[2])
        out.append((dist, n, r))
    return out


def build_instances(ctx, spec: str, stream: str):
    """The instances to audit: the ``--data`` population, else generated claims."""
    inst = ctx.population_instance() if ctx.population is not None else None
    if inst is not None:
        return [inst]
    out = []
    for dist, n, r in parse_instances(spec):
        key = f"{stream}/claims/{dist}/{n}/{r}"
        claims = generate_claims(dist, n, ctx.rng(key))
        declared = ctx.target is not None and ctx.target.k is not None
        k = ctx.selection_k(n) if declared else max(1, int(round(r * n)))
        inst = attach_rows(ctx, Instance(f"{dist} claims, n={n}, k={k}", scores=claims, k=k), ctx.rng(key + "/rows"))
        out.append(inst)
    return out


# ---------------------------------------------------------------------------
# Pools across populations (Kearns, Roth and Wu): from data or from the simulator
# ---------------------------------------------------------------------------

class PoolSpec:
    """One pool to audit: the instance the allocator sees, plus what it does not see."""

    def __init__(self, index, inst, quality, population, names):
        self.index = index
        self.inst = inst
        self.quality = np.asarray(quality, dtype=float)
        self.population = np.asarray(population)
        self.names = list(names)

    @property
    def n(self):
        return self.inst.n

    @property
    def k(self):
        return int(self.inst.k)

    @property
    def labels(self):
        return [self.names[j] for j in self.population]


def pools_skip_reason(ctx, quality, setup, allow_data=True):
    if ctx.population is not None:
        if not allow_data:
            return ("ex-ante fairness averages over random pools; it needs the simulator "
                    "(run without --data)")
        if quality not in ctx.population.frame.columns:
            return (f"{ctx.population.path or 'the data'} has no quality column '{quality}' (true CDF value within "
                    f"the candidate's population); name it with --param <check>.quality=COLUMN, or run without "
                    f"--data to use the cross-population simulator")
        q = pd.to_numeric(ctx.population.frame[quality], errors="coerce")
        if q.isna().any() or (q < 0).any() or (q > 1).any():
            return f"quality column '{quality}' must hold true CDF values in [0, 1]"
        if ctx.population.scores is None:
            return f"{ctx.population.path} has no score column"
        return None
    if str(setup).lower() in ("none", "", "off"):
        return "no --data with a quality column and the simulator is off (setup=none)"
    if setup not in SETUPS:
        return f"unknown simulator setup '{setup}'; choose from {', '.join(SETUPS)}"
    return None


def data_pools(ctx, quality, population):
    pop = ctx.population
    f = pop.frame
    pool_col = "pool" if "pool" in f.columns else None
    if population in f.columns:
        pcol = population
    elif pop.group_cols:
        pcol = pop.group_cols[0]
    else:
        pcol = None
    gcols = list(pop.group_cols)
    if pcol and pcol not in gcols:      # e.g. a numeric population code: allocators still see it
        gcols = [pcol] + gcols
    keys = sorted(f[pool_col].unique()) if pool_col else [None]
    out = []
    for r, key in enumerate(keys):
        sub = f if key is None else f[f[pool_col] == key]
        sub = sub.reset_index(drop=True)
        pv = sub[pcol].astype(str).to_numpy() if pcol else np.array(["all"] * len(sub))
        names = sorted(set(pv))
        codes = np.searchsorted(np.array(names), pv)
        groups = sub[gcols].astype(str).reset_index(drop=True) if gcols else pd.DataFrame({POPULATION_COLUMN: pv})
        n = len(sub)
        label = f"{pop.path or 'data'}" + (f" pool {key}" if key is not None else "")
        inst = Instance(label, scores=sub[pop.score_col].to_numpy(dtype=float), k=ctx.selection_k(n), groups=groups)
        out.append(PoolSpec(r if key is None else key, inst, sub[quality].to_numpy(dtype=float), codes, names))
    return out


def parse_ratio(ratio):
    try:
        vals = [float(v) for v in str(ratio).split(",")] if isinstance(ratio, str) else [float(v) for v in ratio]
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be numbers separated by commas (e.g. 2,1), not {ratio!r}") from None
    if len(vals) < 1 or any(v <= 0 for v in vals):
        raise ValueError(f"ratio must hold positive numbers, not {ratio!r}")
    return vals


def claim_domain(ctx) -> str:
    """The domain the audited allocator declared for its scores ("real" without a target)."""
    return getattr(getattr(ctx, "target", None), "claims", "real") or "real"


def to_claim_domain(scores, domain: str):
    """Generated scores mapped into an allocator's declared claim domain: unchanged for
    "real" (and when already inside it), else one common increasing affine map onto
    [0.05, 1] — it keeps every order and every within-population empirical CDF value,
    so quality and ex-interim comparisons are unaffected. Returns (scores, statement or None)."""
    s = np.asarray(scores, dtype=float)
    lo = {"real": -np.inf, "nonnegative": 0.0, "positive": 0.0, "unit": 0.0}[domain]
    inside = s.min() > lo if domain == "positive" else s.min() >= lo
    if domain == "unit":
        inside = inside and s.max() <= 1.0
    if inside:
        return s, None
    span = max(float(s.max() - s.min()), 1e-12)
    return 0.05 + 0.95 * (s - s.min()) / span, (f"scores mapped into [0.05, 1] by a common increasing affine map "
                                                 f"(the allocator's claims are {domain})")


def simulated_pools(ctx, setup, n, pools, tag, ratio="2,1"):
    out = []
    rat = parse_ratio(ratio)
    domain = claim_domain(ctx)
    for r in range(int(pools)):
        p = simulate_pool(setup, int(n), pool_generator(ctx.config.seed, r), k=ctx.selection_k(int(n)), ratio=rat)
        scores, note = to_claim_domain(p.scores, domain)
        inst = p.instance(f"{setup} pool {r} (seed {ctx.config.seed}), n={p.n}, k={p.k}"
                          + ("; scores mapped into [0.05, 1]" if note else ""))
        if note:
            inst = inst.replace(scores=scores)
        spec = PoolSpec(r, inst, p.quality, p.population, p.names)
        spec.domain_note = note
        out.append(spec)
    return out


def audit_pools(ctx, quality, population, setup, n, pools, tag, ratio="2,1"):
    if ctx.population is not None:
        return data_pools(ctx, quality, population), "data"
    return simulated_pools(ctx, setup, n, pools, tag, ratio), "simulator"


# ---------------------------------------------------------------------------
# Prediction matrices and labels from a data or log frame
# ---------------------------------------------------------------------------

def prediction_order(pred_cols: list[str]) -> list[str]:
    """The ``p_<label>`` columns in label order: sorted numerically when every suffix is a
    number, else as given (the columns of :func:`predictions_and_labels`' P)."""
    cols = list(pred_cols)
    if len(cols) >= 2:
        try:
            order = np.argsort([float(str(c)[2:]) for c in cols], kind="stable")
            cols = [cols[i] for i in order]
        except ValueError:
            pass
    return cols


def predictions_and_labels(frame: pd.DataFrame, pred_cols: list[str], label_col: str | None,
                           score_col: str | None = None, where: str = "data"):
    """(P (N, m) float rows summing to 1, y (N,) ints in 0..m−1, label names).

    ``p_<label>`` columns give the label order (sorted numerically when every suffix is
    a number, else in file order; the last is the best label). One ``p_*`` column, or
    no ``p_*`` column but a score in [0, 1], means binary labels: ``P = [1−p, p]``."""
    if label_col is None:
        raise DataError(f"{where}: needs a 'label' column (the observed outcome) for the multiaccuracy audit")
    cols = prediction_order(pred_cols)
    if len(cols) >= 2:
        P = frame[cols].to_numpy(dtype=float)
        names = [str(c)[2:] for c in cols]
    elif len(cols) == 1 or (score_col is not None):
        col = cols[0] if cols else score_col
        p = frame[col].to_numpy(dtype=float)
        if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
            raise DataError(f"{where}: column '{col}' must hold probabilities in [0, 1] of the positive label")
        P = np.column_stack([1.0 - p, p])
        names = ["0", "1"]
    else:
        raise DataError(f"{where}: needs prediction columns p_<label> (one per label, or one for binary labels)")
    s = P.sum(axis=1)
    bad = np.flatnonzero(np.abs(s - 1) > 1e-6)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{where}: row {i + 1}: the prediction columns sum to {s[i]:.6g}, not 1")
    P = np.clip(P, 0, None)
    P = P / P.sum(axis=1, keepdims=True)
    raw = frame[label_col]
    y = np.full(len(frame), -1)
    as_str = raw.astype(str).str.strip()
    for j, nm in enumerate(names):
        y[(as_str == nm).to_numpy()] = j
    if np.any(y < 0):
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for j, nm in enumerate(names):
            try:
                y[(y < 0) & (num == float(nm))] = j
            except ValueError:
                break
    if np.any(y < 0):
        i = int(np.flatnonzero(y < 0)[0])
        raise DataError(f"{where}: row {i + 1}, column '{label_col}': label {show_value(raw.iloc[i])} matches none of the "
                        f"prediction columns ({', '.join(names)})")
    return P, y, names
