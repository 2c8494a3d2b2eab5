"""Comparisons of outcome distributions, member by member, sampled in looks until decided.

A *member* is one individual's chance of selection (or, for rankings, of each position).
A :class:`Comparison` sets stream ``a`` against stream ``b`` (the same individuals
relabelled by ``mapping``) or against a known chance; a :class:`Study` holds the
streams and comparisons of one check run and samples every stream in looks of 512,
2048, 8192, … draws, stopping at the first look whose simultaneous interval decides
(Bonferroni over probes, members and looks keeps it valid under this optional
stopping). Used by ``anonymity`` and ``obliviousness``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairaudit.instance import Instance
from fairaudit.outcomes import inclusion_counts, position_counts
from fairaudit.result import Statistic, decide
from fairaudit.stats import abs_interval, proportion_ci, two_proportion_diff_ci

FIRST_LOOK = 512


@dataclass
class Stream:
    inst: Instance
    name: str
    draws: np.ndarray | None = None

    @property
    def size(self) -> int:
        return 0 if self.draws is None else int(self.draws.shape[0])


@dataclass
class Comparison:
    """One probe input: stream ``a`` against stream ``b`` (individual i of ``a`` is
    ``mapping[i]`` in ``b``) or against a known chance ``expected``."""

    probe: str
    label: str
    a: str
    b: str | None = None
    mapping: np.ndarray | None = None
    expected: float | None = None
    meta: dict = field(default_factory=dict)
    bounds: dict | None = None
    #: individuals whose chances this comparison judges (None: everyone)
    only: np.ndarray | None = None

    def members(self, kind: str, n: int) -> int:
        m = n if self.only is None else len(self.only)
        return m * n if kind == "ranking" else m


def outcome_counts(kind: str, draws: np.ndarray, n: int) -> np.ndarray:
    return position_counts(draws, n) if kind == "ranking" else inclusion_counts(draws, n)


def compare(comp: Comparison, streams: dict, kind: str, conf: float) -> dict:
    sa = streams[comp.a]
    n = sa.inst.n
    ca = outcome_counts(kind, sa.draws, n)
    Ba = sa.size
    pa = ca / Ba
    ref = None
    if comp.b is None:
        # Identical inputs: exchanging individuals i and j would move i's chance from
        # π_i to π_j, so each member is judged by its largest difference to another
        # individual (per position for rankings), bounded from the simultaneous
        # Clopper–Pearson intervals of all individuals.
        lo, hi = proportion_ci(ca, Ba, conf)
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        pmin, pmax = pa.min(axis=0), pa.max(axis=0)
        up = (pa - pmin) >= (pmax - pa)
        d = np.where(up, pa - pmin, pa - pmax)
        pb = np.where(up, pmin, pmax)
        ref = np.where(up, np.argmin(pa, axis=0), np.argmax(pa, axis=0))
        alo0 = np.maximum(np.maximum(lo - hi.min(axis=0), lo.max(axis=0) - hi), 0.0)
        ahi0 = np.maximum(hi - lo.min(axis=0), hi.max(axis=0) - lo)
        dlo, dhi = np.where(d >= 0, alo0, -ahi0), np.where(d >= 0, ahi0, -alo0)
        Bb = 0
    else:
        sb = streams[comp.b]
        cb = outcome_counts(kind, sb.draws, n)[comp.mapping]
        Bb = sb.size
        pb = cb / Bb
        d, dlo, dhi = two_proportion_diff_ci(ca, Ba, cb, Bb, conf)
    d, dlo, dhi = (np.asarray(v, float) for v in (d, dlo, dhi))
    if comp.only is not None:
        # Only the listed individuals are judged; the others' rows carry no claim.
        keep = np.zeros(n, bool)
        keep[comp.only] = True
        if d.ndim == 2:
            keep = np.broadcast_to(keep[:, None], d.shape)
        d, dlo, dhi = np.where(keep, d, 0.0), np.where(keep, dlo, 0.0), np.where(keep, dhi, 0.0)
    alo, ahi = abs_interval(dlo, dhi)
    return {"d": d, "lo": dlo, "hi": dhi, "abs_lo": alo, "abs_hi": ahi, "pa": pa, "pb": pb, "Ba": Ba, "Bb": Bb,
            "ref": ref}


def constant_outcome(draws: np.ndarray, kind: str) -> bool:
    """Did every draw give the same outcome (selection: as a set)?"""
    key = draws if kind == "ranking" else np.sort(draws, axis=1)
    return bool(np.all(key == key[0]))


def look_sizes(max_draws: int) -> list[int]:
    out, b = [], min(FIRST_LOOK, max_draws)
    while b < max_draws:
        out.append(b)
        b *= 4
    out.append(max_draws)
    return out


class Study:
    """Streams and comparisons of one check run, sampled in looks until decided."""

    def __init__(self, ctx, kind: str, tau: float):
        self.ctx, self.kind, self.tau = ctx, kind, tau
        self.streams: dict[str, Stream] = {}
        self.comps: list[Comparison] = []
        self.looks_done = 0

    def stream(self, inst: Instance, name: str) -> str:
        if name not in self.streams:
            self.streams[name] = Stream(inst, name)
        return name

    def add(self, comp: Comparison):
        self.comps.append(comp)

    def member_conf(self, n_looks: int) -> dict[str, float]:
        probes = sorted({c.probe for c in self.comps} | set(getattr(self, "reserved", ())))
        alpha_p = self.ctx.alpha / max(len(probes), 1)
        m: dict[str, int] = {}
        for c in self.comps:
            m[c.probe] = m.get(c.probe, 0) + c.members(self.kind, self.streams[c.a].inst.n)
        return {p: 1.0 - alpha_p / (max(m.get(p, 1), 1) * n_looks) for p in probes}

    def prefetch(self, B: int) -> None:
        """Draw every stream up to ``B`` draws (the same draws the first look uses)."""
        todo = [s for s in self.streams.values() if s.size < B]
        more = self.ctx.sampler.draw_streams([(s.inst, s.name, s.size, B - s.size) for s in todo])
        for s, m in zip(todo, more):
            s.draws = m if s.draws is None else np.concatenate([s.draws, m])

    def run(self, max_draws: int) -> tuple[Statistic | None, str, int]:
        """Sample every stream in looks (the sampler's sequential sampling) until the
        family's interval decides against ``tau``."""
        looks = look_sizes(max_draws)
        confs = self.member_conf(len(looks))
        streams = list(self.streams.values())
        out = {"stat": None, "verdict": "inconclusive"}

        def decided(draws) -> bool:
            for s, d in zip(streams, draws):
                s.draws = d
            self.looks_done += 1
            for c in self.comps:
                c.bounds = compare(c, self.streams, self.kind, confs[c.probe])
            out["stat"] = self.statistic(len(looks))
            out["verdict"] = decide(out["stat"].ci, self.tau, "above")
            return out["verdict"] != "inconclusive"

        # a look is complete only when every stream has its draws (prefetched prefixes count)
        self.ctx.sampler.sample_until_many([(s.inst, s.name) for s in streams], decided, max_draws,
                                           schedule=looks, have=[s.draws for s in streams])
        return out["stat"], out["verdict"], max(s.size for s in self.streams.values())

    def statistic(self, n_looks: int) -> Statistic:
        est = max(float(np.max(np.abs(c.bounds["d"]))) for c in self.comps)
        lo = max(float(np.max(c.bounds["abs_lo"])) for c in self.comps)
        hi = max(float(np.max(c.bounds["abs_hi"])) for c in self.comps)
        n_members = sum(c.members(self.kind, self.streams[c.a].inst.n) for c in self.comps)
        probes = sorted({c.probe for c in self.comps} | set(getattr(self, "reserved", ())))
        method = (f"Newcombe two-sample / Clopper-Pearson one-sample intervals; bonferroni over "
                  f"{len(probes)} probes, {n_members} members and {n_looks} looks")
        return Statistic("max_chance_difference", est, (lo, hi), tolerance=self.tau, method=method)

    def components(self) -> dict[str, Statistic]:
        """One component per probe (its largest difference in chance, interval from the
        same simultaneous family): the headline is their maximum, so combining them
        (:func:`fairaudit.result.combine`) gives the headline's verdict."""
        out = {}
        for probe in dict.fromkeys(c.probe for c in self.comps):
            cs = [c for c in self.comps if c.probe == probe]
            out[probe] = Statistic("max_chance_difference", max(float(np.max(np.abs(c.bounds["d"]))) for c in cs),
                                   (max(float(np.max(c.bounds["abs_lo"])) for c in cs),
                                    max(float(np.max(c.bounds["abs_hi"])) for c in cs)), tolerance=self.tau)
        return out

    def worst(self) -> tuple[Comparison, tuple]:
        """The comparison and member with the largest certified (then estimated) difference."""
        best, key = None, None
        for c in self.comps:
            score = c.bounds["abs_lo"] + 1e-9 * np.abs(c.bounds["d"])
            idx = np.unravel_index(int(np.argmax(score)), score.shape)
            k = (float(score[idx]),)
            if key is None or k > key:
                best, key = (c, idx), k
        return best


def ordinal(i: int) -> str:
    i = int(i)
    suf = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suf}"


def describe_member(kind: str, c: Comparison, idx) -> str:
    b = c.bounds
    if kind == "ranking":
        i, p = int(idx[0]), int(idx[1])
        what = f"individual {i} is at position {p + 1}"
    else:
        i = int(idx[0])
        what = f"individual {i} is selected"
    pa, pb = float(b["pa"][idx]), float(b["pb"][idx])
    if c.b is None:
        j = int(b["ref"][idx])
        return (f"{what} with chance {pa:.3f} but individual {j}, whose input is identical, with chance {pb:.3f} "
                f"(both should get {c.expected:.3f})")
    if c.probe == "attribute-swap" or c.meta.get("relation") == "swap":
        i, j = c.meta["pair"]
        other = j if int(idx[0]) == i else i
        return (f"{what} with chance {pa:.3f}, but {pb:.3f} once its protected attributes are exchanged with "
                f"those of individual {other}, whose claim is equal")
    return f"{what} with chance {pa:.3f} on the original list but {pb:.3f} after the relabelling"


def short_label(label: str, width: int = 64) -> str:
    """A probe input's label for a figure axis (it starts with the probe's name): the
    parenthesised detail shortened, the ends kept."""
    return label if len(label) <= width else label[: width - 1].rstrip(" ,") + "…)"


def member_table(kind: str, c: Comparison, claims=None, groups=None) -> pd.DataFrame:
    b = c.bounds
    if kind == "ranking":
        n = b["pa"].shape[0]
        ii, pp = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        df = pd.DataFrame({"individual": ii.ravel(), "position": pp.ravel() + 1})
    else:
        n = b["pa"].shape[0]
        df = pd.DataFrame({"individual": np.arange(n)})
        if claims is not None:
            df["claim"] = np.asarray(claims, float)
    if groups is not None and kind != "ranking":
        for col in groups.columns:
            df[col] = groups[col].astype(str).to_numpy()
    df["chance_original"] = b["pa"].ravel()
    if c.b is not None:
        df["chance_relabelled"] = b["pb"].ravel()
    else:   # identical inputs: compared with the individual furthest from it, and with the required chance
        df["other_individual"] = np.broadcast_to(b["ref"], b["pa"].shape).ravel()
        df["chance_other"] = b["pb"].ravel()
        df["chance_required"] = c.expected
    df["difference"] = b["d"].ravel()
    df["abs_diff_lo"] = b["abs_lo"].ravel()
    df["abs_diff_hi"] = b["abs_hi"].ravel()
    return df.sort_values(["abs_diff_lo", "difference"], ascending=[False, False], kind="stable").head(50)


# ---------------------------------------------------------------------------
