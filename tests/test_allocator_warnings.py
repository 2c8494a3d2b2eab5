"""An allocator's Python warnings and NaN outputs are recorded per check — in-process and
in isolated worker processes — and appear in the JSON (``allocator_warnings``, valid
against the published schema) and in the report (issue 18, defect 6)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import jsonschema
import pytest

import fairaudit as fa
from fairaudit.run.allocator_notes import KEPT, AllocatorNotes, recording
from fairaudit.report import render_html
from fairaudit.result import dumps

SCHEMA = json.loads((Path(fa.__file__).parent / "schema" / "result-v2.schema.json").read_text(encoding="utf-8"))

WARNS = '''
import numpy as np
import fairaudit as fa

@fa.selector(k=2)
def allocate(scores, k, rng, size=None):
    w = np.log(np.asarray(scores, float))          # log of the negative claims: RuntimeWarning, NaN weights
    w = np.where(np.isfinite(w) & (w > 0), w, 1e-9)
    keys = rng.standard_exponential((size, len(w))) / w
    return np.argsort(keys, axis=1)[:, :k]
'''

NAN = '''
import numpy as np
import fairaudit as fa

@fa.selector(k=2)
def allocate(scores, k, rng, size=None):
    out = np.argsort(rng.random((size, len(scores))), axis=1)[:, :k].astype(float)
    out[0, 0] = np.log(-1.0)                       # nan (and a RuntimeWarning)
    return out
'''

QUIET = '''
import numpy as np
import fairaudit as fa

@fa.selector(k=2)
def allocate(scores, k, rng, size=None):
    return np.argsort(rng.random((size, len(scores))), axis=1)[:, :k]
'''


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "people.csv"
    p.write_text("score,group\n-0.9,a\n2.0,a\n1.5,b\n3.0,b\n-0.8,a\n1.3,b\n")
    return str(p)


def _file(tmp_path, name, text):
    p = tmp_path / f"{name}.py"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("in_process", [True, False])
def test_warnings_reach_the_json_and_the_report(tmp_path, data, in_process):
    target = _file(tmp_path, "warns", WARNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # nothing may leak out of the audit as a warning
        r = fa.audit(target, checks=["determinism", "selection_rates"], data=data, groups=["group"], draws=512,
                     in_process=in_process)
    by = {c.id: c for c in r.checks}
    aw = by["selection_rates"].allocator_warnings
    assert aw is not None and aw["nan_outputs"] == 0 and aw["more"] == 0
    [w] = aw["warnings"]
    assert w["category"] == "RuntimeWarning" and "log" in w["message"] and w["where"] == "warns.py:7"
    # one vectorised call per 256 draws, each warning once; per check (the first check's calls,
    # the reproducibility probe among them, are not added to it)
    assert w["count"] == by["selection_rates"].draws // 256
    doc = json.loads(dumps(r.to_dict()))
    jsonschema.validate(doc, SCHEMA)
    assert doc["checks"][1]["allocator_warnings"]["warnings"][0]["category"] == "RuntimeWarning"
    html = render_html(r.to_dict())
    assert "The allocator warned while this check drew" in html and "invalid value encountered in log" in html


@pytest.mark.parametrize("in_process", [True, False])
def test_nan_output_is_an_error_and_counted(tmp_path, data, in_process):
    r = fa.audit(_file(tmp_path, "nan", NAN), checks=["selection_rates"], data=data, groups=["group"], draws=256,
                 in_process=in_process)
    c = r.checks[0]
    assert c.verdict == "error" and "nan" in c.message.lower()
    assert c.allocator_warnings["nan_outputs"] == 1
    assert c.allocator_warnings["warnings"][0]["category"] == "RuntimeWarning"
    jsonschema.validate(json.loads(dumps(r.to_dict())), SCHEMA)
    assert "1 call(s) returned NaN" in render_html(r.to_dict())


def test_a_quiet_allocator_has_no_warnings_field_value(tmp_path, data):
    r = fa.audit(_file(tmp_path, "quiet", QUIET), checks=["selection_rates"], data=data, groups=["group"], draws=256)
    assert r.checks[0].allocator_warnings is None
    doc = json.loads(dumps(r.to_dict()))
    assert doc["checks"][0]["allocator_warnings"] is None
    jsonschema.validate(doc, SCHEMA)
    assert "The allocator warned" not in render_html(r.to_dict())


def test_notes_count_each_occurrence_and_cap_distinct_warnings():
    notes = AllocatorNotes()
    with recording(notes):
        for i in range(3):
            warnings.warn("same", UserWarning)      # one source line: counted, not once only
        for i in range(KEPT + 4):
            warnings.warn(f"distinct {i}", UserWarning)
    d = notes.take()
    assert d["warnings"][0] == {"category": "UserWarning", "message": "same", "where": d["warnings"][0]["where"],
                                "count": 3}
    assert len(d["warnings"]) == KEPT and d["more"] == 5
    assert notes.take() is None                     # taken: cleared
    other = AllocatorNotes()
    other.merge(d)
    other.merge(d)
    assert other.to_dict()["warnings"][0]["count"] == 6 and other.to_dict()["more"] == 10


@pytest.mark.slow            # starts a local Dask cluster: the full suite runs it
def test_warnings_travel_back_from_a_dask_cluster(tmp_path, data):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        r = fa.audit(_file(tmp_path, "warns", WARNS), checks=["selection_rates"], data=data, groups=["group"],
                     draws=256, scheduler=cl.scheduler_address)
    [w] = r.checks[0].allocator_warnings["warnings"]
    assert w["category"] == "RuntimeWarning" and w["count"] == r.checks[0].draws // 256
