"""The Broome lottery's yardstick on a decisions log at scale: every decision event's
inclusion chances solved for all events at once, from the three columns the comparison
needs, read from the log engine.

Decision: logs whose pools differ between events get the exact yardstick
(:func:`fairaudit.checks.broome.lottery.broome_reference`, event by event) when its estimated
cost is affordable — :func:`exact_is_affordable`: Σ over events of (100 + m·min(k, m − k))
work units at most ``EXACT_COST_UNITS`` (about 2 s here; measured 0.8 ms an event of 20
with k = 4, 4.5 ms for 100 with k = 10): the bundled 300-event log and most audit logs.
Beyond that (the 100,000 events of the 10M-row benchmark would take ~8 minutes) they use
Rosén's approximation (:func:`rosen_reference`), vectorised over events, and its error is
measured (:class:`RosenCheck`): on up to 24 events spread over the log the exact chances
are computed beside Rosén's, and the result reports the largest row and per-bin
differences (measured on n = 15–100, k = 4–30: rows ≤ 0.008; on (0.6, 0.3, 0.1), k = 2,
0.058). The choice depends on the log's event sizes and selection counts only, so it is
the same on every engine. Allocator audits and same-pool logs always use the exact yardstick.

:func:`rosen_reference` finds, per event, λ with Σ_i (1 − exp(−λ c_i)) = k by Newton's method
from λ = 0 (S(λ) is concave and increasing, so it converges from below, in ~5–10 passes
where a bisection took ~100; the same λ to ~1e-16); here the same steps run on every event together (one vector of λ,
sums per event by a row-wise reduction when the events have equal size — NumPy's
pairwise sum, as in the per-event code — else ``np.add.reduceat``), so the chances equal
the per-event ones up to float rounding of the sums, and the cost is ~10 vectorised
passes over the score column instead of one Python call per event. The rows are
streamed from DuckDB in decision order, whole events at a time — or, for a Dask or Spark
log, grouped on that engine into (decision, score) cells a range of decisions at a time —
and only four sums per claim bin are kept (``streamed_claim_bin_rates``), so memory does
not grow with the log.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.logs.duckdb import LogTable

from .lottery import broome_reference, claim_bin_rates_from_sums, claim_bins, n_claim_bins


def rosen_reference(claims, k: int) -> np.ndarray:
    """Rosén's approximation of the Broome lottery's inclusion probabilities (w ∝ c):
    ``π_i = 1 − exp(−λ c_i)`` with λ chosen so that ``Σ π_i = k`` (Rosén's
    successive-sampling approximation; up to 0.058 off the exact values on (0.6, 0.3,
    0.1), k = 2, and more on tiny claims — see :func:`fairaudit.checks.broome.lottery.broome_reference`). Zero claims get 0; if fewer than k claims are
    positive they all get 1."""
    c = np.asarray(claims, dtype=float)
    pos = c > 0
    if pos.sum() <= k:
        return pos.astype(float)
    lam = _newton_lambda(lambda x: np.sum(-np.expm1(-x * c)), lambda x: np.sum(c * np.exp(-x * c)),
                         np.zeros(1), np.array([float(k)]), np.ones(1, dtype=bool))
    return -np.expm1(-lam[0] * c)


NEWTON_MAX = 200   # Newton passes at most (about 5–10 are used; see _newton_lambda)


def _newton_lambda(S, dS, lam, k, active):
    """λ with S(λ) = k for each event by Newton's method from λ = 0, vectorised over
    events (``S``, ``dS`` map a vector of λ to the vector of sums and their derivatives).
    S(λ) = Σ_i (1 − e^{−λ c_i}) is increasing and concave with S(0) = 0 < k, so each
    tangent meets k at or before S does: the iterates rise monotonically to the root
    from below and never overshoot; an event stops when its step no longer raises λ (its
    last λ is the root to float rounding — the same λ that ~100 bisection passes reach,
    to ~1e-16). ``active``: the events to solve (the others keep their λ)."""
    lam = lam.astype(float).copy()
    for _ in range(NEWTON_MAX):
        if not active.any():
            break
        s, d = S(lam), dS(lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = lam + (k - s) / d
        up = active & np.isfinite(new) & (new > lam)
        lam = np.where(up, new, lam)
        active = up
    return lam


CHUNK_ROWS = 1 << 20     # rows per vectorised pass (bounds the temporaries)
EXACT_COST_UNITS = 400_000   # exact Broome chances on a log up to this estimated cost (~2 s; see the docstring)


def exact_is_affordable(rows, ks) -> bool:
    """Whether the exact Broome chances of every event (``rows`` each, ``ks`` selected)
    fit the budget: Σ (100 + m · min(k, m − k)) ≤ ``EXACT_COST_UNITS`` (the integral's cost
    is O(m · min(k, m − k)) per node, plus a fixed part per event)."""
    m = np.asarray(rows, dtype=float)
    k = np.asarray(ks, dtype=float)
    return float(np.sum(100.0 + m * np.minimum(k, np.maximum(m - k, 0)))) <= EXACT_COST_UNITS


def exact_chunk(c, sizes, ks, w):
    """The exact Broome chance of each claim (cell) of a chunk of whole events: each event's
    rows (cells expanded to their ``w`` rows) through ``broome_reference``, a cell's chance
    the mean of its rows' (equal claims, equal chances up to rounding)."""
    out = np.zeros(len(c))
    start = 0
    for size, k in zip(sizes, ks):
        size = int(size)
        cc, reps = c[start:start + size], w[start:start + size].astype(np.int64)
        if k > 0:
            rows = broome_reference(np.repeat(cc, reps), int(k))
            out[start:start + size] = np.add.reduceat(rows, np.r_[0, np.cumsum(reps)[:-1]]) / reps
        start += size
    return out


def event_ranges(rows):
    """Consecutive ranges ``(e0, e1, r0, r1)`` of whole events (``rows`` each) of about
    ``CHUNK_ROWS`` rows — at least one event a range: events e0..e1−1, rows r0..r1−1."""
    ends = np.cumsum(np.asarray(rows, dtype=np.int64))
    e0 = 0
    while e0 < len(ends):
        r0 = int(ends[e0 - 1]) if e0 else 0
        e1 = max(e0 + 1, int(np.searchsorted(ends, r0 + CHUNK_ROWS, side="right")))
        yield e0, e1, r0, int(ends[e1 - 1])
        e0 = e1


def batched_broome_reference(claims: np.ndarray, sizes: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Per row, the Broome lottery's inclusion chance within its event (rows grouped by
    event, ``sizes`` rows each, ``ks`` selected); 0 in events that select nobody. Events
    are solved in chunks of about ``CHUNK_ROWS`` rows."""
    c = np.asarray(claims, dtype=float)
    sizes = np.asarray(sizes, dtype=np.int64)
    ks = np.asarray(ks, dtype=float)
    ref = np.empty(len(c))
    for e0, e1, r0, r1 in event_ranges(sizes):
        ref[r0:r1] = _reference_chunk(c[r0:r1], sizes[e0:e1], ks[e0:e1])
    return ref


def _reference_chunk(c, sizes, k, w=None):
    """Rosén's chances of the rows ``c`` of events of ``sizes`` rows, ``k`` selected, all
    events together. ``w``: each row stands for ``w`` identical rows (a cell of equal
    claims in one event, from a lazy engine's grouped log); the sums weigh them so (a
    weight of 1 is exact in floating point, so rows give the unweighted values bit for bit)."""
    E = len(sizes)
    w = np.ones(len(c)) if w is None else np.asarray(w, dtype=float)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    square = E > 0 and (sizes == sizes[0]).all()
    C = c.reshape(E, int(sizes[0])) if square else None
    Wm = w.reshape(E, int(sizes[0])) if square else None

    def seg_sum(v):
        return v.reshape(E, -1).sum(axis=1) if square else np.add.reduceat(v, starts)

    def seg_max(v):
        return v.reshape(E, -1).max(axis=1) if square else np.maximum.reduceat(v, starts)

    def rep(v):
        return np.repeat(v, sizes)

    def S(lam):
        if square:
            return (Wm * -np.expm1(-lam[:, None] * C)).sum(axis=1)
        return seg_sum(w * -np.expm1(-rep(lam) * c))

    def dS(lam):
        if square:
            return (Wm * C * np.exp(-lam[:, None] * C)).sum(axis=1)
        return seg_sum(w * c * np.exp(-rep(lam) * c))

    npos = seg_sum(w * (c > 0))
    lottery = (k > 0) & (npos > k)
    lam = _newton_lambda(S, dS, np.zeros(E), np.asarray(k, dtype=float) * np.ones(E), lottery)
    ref = -np.expm1(-rep(lam) * c)
    # events that are not lotteries: the positive claims all selected (or nobody)
    certain = rep(~lottery)
    ref[certain] = np.where(rep(k > 0)[certain], (c[certain] > 0).astype(float), 0.0)
    return ref


def value_bins(counts, n_bins: int) -> np.ndarray:
    """``broome_lottery.claim_bins`` per distinct score (``counts`` of each, scores sorted):
    a tie group's bin is that of its first member, whose rank is the count of smaller
    scores, so the labels need no sort of the rows."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    raw = (np.r_[0, np.cumsum(counts)[:-1]] * n_claim_bins(n, n_bins)) // n
    return np.unique(raw, return_inverse=True)[1]


def table_binner(table: LogTable):
    """``claims, n_bins -> claim_bins(claims, n_bins)`` for the log's score column, from
    DuckDB's count per distinct score."""
    def binner(claims, n_bins):
        values, counts = table.value_counts("score")
        return value_bins(counts, n_bins)[np.searchsorted(values, claims)]
    return binner


def _events(table: LogTable):
    """Per decision event in ``decision_id`` order: (ids, rows, selected)."""
    if table.on_engine:
        rel = table.cells(["decision_id"], "selected").query("c", "SELECT decision_id, n, y FROM c ORDER BY 1")
    else:
        rel = table.sql("SELECT decision_id, count(*) AS n, sum(selected) AS y FROM log GROUP BY 1 ORDER BY 1")
    per = rel.fetchnumpy()
    return (per["decision_id"], np.asarray(per["n"], dtype=np.int64), np.asarray(per["y"], dtype=float))


def _duckdb_event_chunks(table: LogTable, rows):
    """The log's (score, selected) in decision order from DuckDB, streamed in batches of
    about ``CHUNK_ROWS`` rows and cut into whole events: (claims, selected, rows per
    claim = 1, rows per event)."""
    rel = table.sql("SELECT CAST(score AS DOUBLE) AS score, CAST(selected AS TINYINT) AS selected FROM log "
                    "ORDER BY decision_id")
    reader = rel.to_arrow_reader(CHUNK_ROWS) if hasattr(rel, "to_arrow_reader") else rel.fetch_record_batch(CHUNK_ROWS)
    pend_c, pend_s = np.empty(0), np.empty(0)
    e0 = 0
    for batch in reader:
        pend_c = np.concatenate([pend_c, batch.column(0).to_numpy(zero_copy_only=False)])
        pend_s = np.concatenate([pend_s, batch.column(1).to_numpy(zero_copy_only=False).astype(float)])
        ends = np.cumsum(rows[e0:])
        e_n = int(np.searchsorted(ends, len(pend_c), side="right"))       # whole events pending
        if e_n:
            r = int(ends[e_n - 1])
            yield pend_c[:r], pend_s[:r], np.ones(r), rows[e0:e0 + e_n]
            pend_c, pend_s, e0 = pend_c[r:], pend_s[r:], e0 + e_n
    if e0 < len(rows):
        yield pend_c, pend_s, np.ones(len(pend_c)), rows[e0:]


def _engine_event_chunks(table, ids, rows):
    """A Dask or Spark log's (decision, score) cells, grouped on the engine a range of
    decisions at a time (about ``CHUNK_ROWS`` rows a range, so the driver never holds more):
    (claims, selected, rows per cell, cells per event). Rows of one cell are
    interchangeable in every sum of :func:`streamed_claim_bin_rates` (their chance depends
    on the event's claims and their own), so the cells give the rows' figures up to the
    order of float sums."""
    import narwhals as nw

    from fairaudit.logs.duckdb import connect
    from fairaudit.logs.lazy import collect
    for e0, e1, base, end in event_ranges(rows):
        lo, hi = (v.item() if hasattr(v, "item") else v for v in (ids[e0], ids[e1 - 1]))
        d = nw.col("decision_id")
        part = table.lf.filter((d >= lo) & (d <= hi)).with_columns(__v=nw.col("selected").cast(nw.Int64))
        t = collect(part.group_by("decision_id", "score").agg(nw.len().alias("n"), nw.col("__v").sum().alias("y")))
        con = connect()
        con.register("cells", t)
        got = con.sql("SELECT decision_id, CAST(score AS DOUBLE) AS score, y, n FROM cells ORDER BY decision_id, score") \
            .fetchnumpy()
        per = np.bincount(pd.factorize(got["decision_id"])[0])       # cells per event, in decision order
        if len(per) != e1 - e0 or int(np.sum(got["n"])) != end - base:
            raise RuntimeError(f"the engine's decisions {lo!r}..{hi!r} hold {len(per)} events, expected {e1 - e0} "
                               f"(decision_id order differs between the engine and DuckDB)")
        yield (np.asarray(got["score"], dtype=float), np.asarray(got["y"], dtype=float),
               np.asarray(got["n"], dtype=float), per.astype(np.int64))


def log_claim_bin_rates(f: pd.DataFrame, n_bins: int, alpha: float, rows_per_bin: int) -> dict:
    """A selection log whose pools differ between decision events, binned by claim: per
    bin the rows, selections, mean claim, selection rate (simultaneous Clopper–Pearson at
    1 − α/2, rows as independent trials) and the Broome lottery's rate computed event by
    event; and the informative bin pairs (lower, higher) with the Broome lottery's gain.
    (:func:`streamed_claim_bin_rates` computes the same from a log
    engine's table without holding its rows.)"""
    claims = f["score"].to_numpy(dtype=float)
    sel = f["selected"].to_numpy().astype(int)
    # The Broome lottery's chance for each row, computed within its decision event: exact
    # when affordable, else Rosén's approximation (the log path's rule, fairaudit.checks.broome.log)
    events = f.groupby("decision_id", sort=True).indices
    ks = [int(sel[idx].sum()) for idx in events.values()]
    yardstick = broome_reference if exact_is_affordable([len(i) for i in events.values()], ks) else rosen_reference
    ref = np.zeros(len(f))
    for idx, k_e in zip(events.values(), ks):
        if k_e > 0:
            ref[idx] = yardstick(claims[idx], k_e)
    # at least rows_per_bin rows per bin: rates compared through the box of two independent
    # intervals are coarser than per-draw differences, so a log needs wider bins
    b = claim_bins(claims, min(n_bins, max(2, len(claims) // rows_per_bin)))
    G = int(b.max()) + 1
    return claim_bin_rates_from_sums(np.bincount(b, minlength=G), np.bincount(b, weights=sel, minlength=G),
                                     np.bincount(b, weights=claims, minlength=G),
                                     np.bincount(b, weights=ref, minlength=G), alpha)


def streamed_claim_bin_rates(table: LogTable, n_bins: int, alpha: float, rows_per_bin: int) -> dict:
    """``log_claim_bin_rates`` of the log without holding its rows: the
    claim bins from the (score, count) pairs, then the events in decision order, whole
    events a chunk at a time — streamed from DuckDB, or grouped into (decision, score)
    cells on a Dask or Spark engine a range of decisions at a time — each chunk's Broome
    chances solved and added into the four per-bin sums (rows, selected, claims, chances)."""
    lazy = table.on_engine
    values, counts = table.value_counts("score")         # on the engine that holds the log
    N = int(counts.sum())
    label = value_bins(counts, min(n_bins, max(2, N // rows_per_bin)))
    G = int(label.max()) + 1
    sums = [np.zeros(G) for _ in range(4)]
    ids, rows, ks = _events(table)
    exact = exact_is_affordable(rows, ks)
    check = None if exact else RosenCheck(rows, ks, label, values, G)
    chunks = _engine_event_chunks(table, ids, rows) if lazy else _duckdb_event_chunks(table, rows)
    e0 = 0
    for c, sel, w, sizes in chunks:
        e1 = e0 + len(sizes)
        if exact:
            ref = exact_chunk(c, sizes, ks[e0:e1], w)
        else:
            ref = _reference_chunk(c, sizes, ks[e0:e1], w)
            check.add(c, ref, w, sizes, e0)
        b = label[np.searchsorted(values, c)]
        for acc, v in zip(sums, (w, sel, w * c, w * ref)):
            acc += np.bincount(b, weights=v, minlength=G)
        e0 = e1
    out = claim_bin_rates_from_sums(sums[0].astype(np.int64), *sums[1:], alpha)
    out["yardstick"] = "exact" if exact else "rosen"
    out["rosen_check"] = None if exact else check.summary()
    return out


ROSEN_CHECK_EVENTS = 24         # events whose exact Broome chances are computed next to Rosén's
ROSEN_CHECK_ROWS = 6000         # … or fewer, so that the exact integrals stay under ~2 s


class RosenCheck:
    """The approximation's error where it is kept, measured: on a systematic sample of the
    log's events (every ⌈E/S⌉-th in decision order, deterministic), the exact inclusion
    chances of :func:`fairaudit.checks.broome.lottery.broome_reference` next to Rosén's: the
    largest difference of one row's chance, and per claim bin the difference of the mean
    chance over the sampled rows. A measurement on those events, not a bound for the others."""

    def __init__(self, rows, ks, label, values, G):
        E = len(rows)
        mean = max(1.0, float(np.mean(rows))) if E else 1.0
        S = int(min(E, ROSEN_CHECK_EVENTS, max(1, ROSEN_CHECK_ROWS // mean)))
        self.picked = set(np.unique(np.linspace(0, E - 1, S).round().astype(int)).tolist()) if S else set()
        self.ks, self.label, self.values = ks, label, values
        self.diff, self.n = np.zeros(G), np.zeros(G)
        self.max_row = 0.0
        self.events = self.rows = 0

    def add(self, c, ref, w, sizes, e0):
        """The sampled events among a chunk of events from ``e0`` (their claims ``c``,
        Rosén's ``ref``, rows per claim ``w``, claims per event ``sizes``): each sampled
        event's exact chances next to Rosén's, row by row."""
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        for e in sorted(i for i in self.picked if e0 <= i < e0 + len(sizes)):
            r0 = int(starts[e - e0])
            r1 = r0 + int(sizes[e - e0])
            k = int(self.ks[e])
            reps = w[r0:r1].astype(np.int64)
            rows = np.repeat(c[r0:r1], reps)
            exact = broome_reference(rows, k) if k > 0 else np.zeros(len(rows))
            d = np.repeat(ref[r0:r1], reps) - exact
            b = self.label[np.searchsorted(self.values, rows)]
            self.diff += np.bincount(b, weights=d, minlength=len(self.diff))
            self.n += np.bincount(b, minlength=len(self.n))
            self.max_row = max(self.max_row, float(np.max(np.abs(d))) if len(d) else 0.0)
            self.events += 1
            self.rows += len(rows)

    def summary(self) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_bin = np.where(self.n > 0, self.diff / np.maximum(self.n, 1), np.nan)
        return {"events": self.events, "rows": self.rows, "max_row_difference": self.max_row,
                "max_bin_rate_difference": float(np.nanmax(np.abs(per_bin))) if self.events else None,
                "per_bin_rate_difference": [None if not np.isfinite(v) else float(v) for v in per_bin]}


def same_pool(table: LogTable) -> bool:
    """Whether every decision event lists the same individuals with the same scores (each
    event is then a draw of one allocator on one pool). Counted, not fingerprinted: with
    no individual twice in an event (validation refuses duplicate ``(decision_id,
    individual_id)`` rows) the events are equal exactly when each (individual, score)
    pair appears in all E events. One grouped count, in DuckDB or on a lazy engine.
    Decision: a log with a missing ``individual_id`` is not read as one pool."""
    if "individual_id" not in table.columns:
        return False
    events = table.count_distinct("decision_id")
    if events < 2:
        return False
    run, src, N, _ = table.count_source(["individual_id", "score"], "selected")
    lo, hi, missing = run(
        f"SELECT min(c), max(c), count(*) FILTER (WHERE individual_id IS NULL) FROM "
        f"(SELECT individual_id, score, {N} AS c FROM {src} GROUP BY individual_id, score)")[0]
    return int(missing) == 0 and int(lo) == int(hi) == events


def same_pool_draws(table: LogTable):
    """For a log whose events all list the same pool (:func:`same_pool`): the pool's claims
    (by ``individual_id``) and, per event in ``decision_id`` order, the pool positions of
    the selected individuals — in ``pick_order`` when the log has one, else in row order.
    The pool is one grouped count; the selected rows (k of each event's n) are the only
    rows read, filtered where the log is (:meth:`LogTable.where_equals`). Returns
    ``(claims, draws)``, ``draws`` a list of position lists (their lengths may differ)."""
    run, src, _, _ = table.count_source(["individual_id", "score"], "selected")
    pool = run(f"SELECT individual_id, CAST(score AS DOUBLE) FROM {src} GROUP BY ALL ORDER BY individual_id")
    ids = pd.Index([r[0] for r in pool])
    claims = np.asarray([r[1] for r in pool], dtype=float)
    has_order = "pick_order" in table.columns
    chosen = table.where_equals("selected", 1, ["decision_id", "individual_id", "selected"]
                                + (["pick_order"] if has_order else []))
    order = "pick_order, rn" if has_order else "rn"
    sel = chosen.df(f"SELECT decision_id, individual_id FROM (SELECT row_number() OVER () AS rn, * FROM log) "
                    f"ORDER BY decision_id, {order}")
    pos = ids.get_indexer(sel["individual_id"])
    if len(pos) == 0:
        return claims, []
    codes = pd.factorize(sel["decision_id"])[0]              # rows come sorted by decision_id
    return claims, [p.tolist() for p in np.split(pos, np.flatnonzero(np.diff(codes)) + 1)]
