"""The HTML report in a real browser: Debian's headless Chromium, driven by its own
``--dump-dom`` / ``--screenshot`` / ``--log-net-log`` switches (no extra Python packages).

Asserts, on the example report (``examples/allocators/top_k.py`` on
``examples/data/population.csv``, a failing audit with figures and tables):
- it renders: the DOM has the summary table and inline SVG figures;
- no console message at all (the report has no script, so any message is an error);
- no network request from the page (Chromium's net log lists every URL request; the
  page's have a ``file://`` initiator, the browser's own background traffic has none) —
  with a positive control proving the detector sees an external image and stylesheet;
- nothing external is referenced in the HTML (src/href/url()/@import);
- hostile strings — a group named ``<script>…</script>`` or ``" onload="…``, an allocator
  file named ``<svg onload=…>``, an allocator docstring with all three — are shown as
  text and never executed;
- the summary table is above the fold of a 1280×800 window;
- a screenshot PNG is saved as a test artifact in ``build/test-artifacts/``.

Chromium resolves every host name to nothing (``--host-resolver-rules``), so neither the
page nor the browser's background services can reach the network. Without Chromium
(``apt-get install chromium``; ``.ci/run`` tries) the tests are skipped with that reason.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ARTIFACTS = Path(os.environ.get("FAIRAUDIT_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))


def _find_chromium() -> str | None:
    for c in (os.environ.get("FAIRAUDIT_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
              "/usr/bin/chromium"):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


CHROMIUM = _find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium), so the HTML report was "
                             "NOT tested in a real browser")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--disable-breakpad", "--no-pings",
         "--disable-domain-reliability", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"]
HOSTILE_SCRIPT = "<script>document.title='PWNED1';console.error('xss1')</script>"
HOSTILE_ATTR = "\" onload=\"document.title='PWNED2'\" x=\""
HOSTILE_FILE = "evil<svg onload=document.title='PWNED3'>.py"
HOSTILE_DOC = ("Looks harmless <script>document.title='PWNED4';console.error('xss4')</script> "
               "\" onload=\"document.title='PWNED5'\" x=\" <img src=x onerror=\"document.title='PWNED6'\">")


@pytest.fixture(scope="module", autouse=True)
def _chromium_starts(tmp_path_factory):
    """Skip (with the reason) when the installed Chromium cannot start at all here, e.g.
    missing libraries; a Chromium that starts but renders the report wrongly still fails."""
    prof = tmp_path_factory.mktemp("chromium-smoke")
    try:
        p = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={prof}", "--dump-dom", "about:blank"],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Chromium at {CHROMIUM} could not start ({e}), so the HTML report was NOT tested in a browser")
    if p.returncode != 0 or "<html" not in p.stdout:
        pytest.skip(f"Chromium at {CHROMIUM} could not start (exit {p.returncode}: {p.stderr.strip()[-300:]}), "
                    "so the HTML report was NOT tested in a browser")


def chromium(tmp: Path, url: str, *args: str, window=(1280, 800)) -> tuple[str, str, Path]:
    """Run headless Chromium on ``url``; return (stdout, stderr, net-log path)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir()
    netlog = profile.with_suffix(".netlog.json")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={netlog}",
           f"--window-size={window[0]},{window[1]}", *args, url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"chromium exited {p.returncode}: {p.stderr[-2000:]}"
    return p.stdout, p.stderr, netlog


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def page_requests(netlog: Path) -> list[str]:
    """URLs of requests the page made (initiator is an origin — ``null`` for file://),
    leaving out Chromium's own background requests (initiator "not an origin")."""
    text = netlog.read_text(encoding="utf-8", errors="replace")
    try:
        d = json.loads(text)
    except json.JSONDecodeError:  # a log cut short: close the events list
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    out = []
    for e in d["events"]:
        p = e.get("params") or {}
        if types.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
            out.append(p["url"])
    return out


EXTERNAL = re.compile(r"""(?:\s(?:src|href|xlink:href|srcset|poster|data|action|background)\s*=\s*["']?\s*(?!data:|#)[a-z][a-z0-9+.-]*:)"""
                      r"""|url\(\s*["']?\s*(?!data:|#)[a-z][a-z0-9+.-]*:|@import""", re.I)


def external_references(html: str) -> list[str]:
    return [m.group(0) for m in EXTERNAL.finditer(html)]


def _audit(tmp: Path, allocator: Path, data: Path, name: str) -> Path:
    from click.testing import CliRunner
    from fairaudit.cli import main
    html = tmp / f"{name}.html"
    res = CliRunner().invoke(main, ["check", str(allocator), "--data", str(data), "--html", str(html),
                                    "--checks", "selection_rates", "--allow-skip"])
    assert res.exit_code in (0, 1), res.output
    return html


@pytest.fixture(scope="module")
def example_report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    return _audit(tmp, EXAMPLES / "allocators" / "top_k.py", EXAMPLES / "data" / "population.csv", "example")


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    data = (EXAMPLES / "data" / "population.csv").read_text()
    lines = data.splitlines()
    head, rows = lines[0], lines[1:]
    cols = head.split(",")
    si = cols.index("sex")
    out = [head]
    for r in rows:
        f = r.split(",")
        f[si] = '"' + (HOSTILE_SCRIPT if f[si] == "F" else HOSTILE_ATTR).replace('"', '""') + '"'
        out.append(",".join(f))
    (tmp / "people.csv").write_text("\n".join(out) + "\n")
    alloc = tmp / HOSTILE_FILE
    src = (EXAMPLES / "allocators" / "uniform_lottery.py").read_text()
    head = "def allocate(scores, k, rng, size=None):\n"
    assert head in src
    alloc.write_text(src.replace(head, head + "    r'''" + HOSTILE_DOC + "'''\n"))   # the function's docstring
    return _audit(tmp, alloc, tmp / "people.csv", "hostile")


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_detector_sees_page_requests_and_console_errors(tmp_path):
    """Positive control: the same harness does see an external image, stylesheet and a
    console error (resolution fails locally; nothing leaves the machine)."""
    page = tmp_path / "ext.html"
    page.write_text('<html><body><img src="http://fairaudit-test.invalid/x.png">'
                    '<link rel="stylesheet" href="https://fairaudit-test.invalid/a.css">'
                    '<script>console.error("control")</script></body></html>')
    _, err, netlog = chromium(tmp_path, page.as_uri(), "--dump-dom")
    reqs = page_requests(netlog)
    assert any("fairaudit-test.invalid/x.png" in u for u in reqs), reqs
    assert any("fairaudit-test.invalid/a.css" in u for u in reqs), reqs
    assert any("control" in m for m in console_messages(err))
    assert len(external_references(page.read_text())) == 2


def test_example_report_renders_offline_without_errors(example_report, tmp_path):
    html = example_report.read_text(encoding="utf-8")
    assert external_references(html) == []
    assert "<script" not in html.lower()
    dom, err, netlog = chromium(tmp_path, example_report.as_uri(), "--dump-dom")
    assert '<table class="summary">' in dom
    assert dom.count("<svg") >= 2, "the figures (inline SVG) are missing from the rendered page"
    assert "min_impact_ratio" in dom and "FAIL" in dom.upper()
    assert console_messages(err) == []
    assert page_requests(netlog) == []


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_summary_table_is_above_the_fold(example_report, tmp_path):
    """Measured in the browser: an instrumented copy records the summary table's box."""
    probe = ("<script>var t=document.querySelector('table.summary').getBoundingClientRect();"
             "document.body.setAttribute('data-top',t.top);"
             "var r=document.querySelector('table.summary tbody tr').getBoundingClientRect();"
             "document.body.setAttribute('data-first-row-bottom',r.bottom);"
             "document.body.setAttribute('data-vh',window.innerHeight);</script>")
    copy = tmp_path / "probe.html"
    copy.write_text(example_report.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    dom, _, _ = chromium(tmp_path, copy.as_uri(), "--dump-dom", window=(1280, 800))
    attrs = dict(re.findall(r'data-(top|first-row-bottom|vh)="([0-9.]+)"', dom))
    assert attrs, "the probe did not run"
    vh = float(attrs["vh"])
    assert float(attrs["top"]) < vh and float(attrs["first-row-bottom"]) <= vh, attrs


def test_hostile_strings_are_text_not_code(hostile_report, tmp_path):
    html = hostile_report.read_text(encoding="utf-8")
    assert HOSTILE_SCRIPT not in html and "&lt;script&gt;document.title=" in html
    # no tag carries an event handler: the payloads stay inside text content or escaped attributes
    assert re.findall(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", html) == []
    dom, err, netlog = chromium(tmp_path, hostile_report.as_uri(), "--dump-dom")
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert title.startswith("fairaudit report") and not re.fullmatch(r"\s*PWNED\d\s*", title), \
        f"a payload ran: title is {title!r}"
    assert "<script" not in dom.lower()
    assert "&lt;script&gt;document.title='PWNED1'" in dom     # shown as text
    doc = re.search(r'<blockquote class="doc"[^>]*>(.*?)</blockquote>', dom, re.S).group(1)
    assert "&lt;script&gt;document.title='PWNED4'" in doc and "&lt;img src=x onerror=" in doc   # the docstring, as text
    assert "<img" not in doc
    assert console_messages(err) == []
    assert page_requests(netlog) == []


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_screenshot_artifact(example_report, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "example-report.png"
    if shot.exists():
        shot.unlink()
    chromium(tmp_path, example_report.as_uri(), f"--screenshot={shot}", window=(1280, 1600))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg
    img = mpimg.imread(shot)
    assert img.shape[0] == 1600 and img.shape[1] == 1280
    assert img[..., :3].std() > 0.05, "the screenshot is blank"
    shutil.copy(example_report, ARTIFACTS / "example-report.html")
    print(f"screenshot of the example report: {shot}")


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_compare_report_renders_offline(tmp_path):
    """The HTML diff report of the committed regression demo (examples/ci)."""
    from fairaudit.compare import compare_files, write_html
    ci = ROOT / "examples" / "ci"
    page = tmp_path / "compare.html"
    write_html(compare_files(ci / "baseline.json", ci / "flattened_current.json"), page)
    html = page.read_text(encoding="utf-8")
    assert external_references(html) == [] and "<script" not in html.lower()
    dom, err, netlog = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert '<table class="summary">' in dom and "min_gain_ratio" in dom and "regression" in dom
    assert console_messages(err) == []
    assert page_requests(netlog) == []


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_multiplicity_report_shows_its_four_comparisons(tmp_path):
    """seed 001's comparisons render as figures in Chromium: utility, pairwise consistency
    (Table 3), qualified selection chances (Fig. 4b), the LDA range (Fig. 4a), age entropy (Fig. 4c)."""
    from click.testing import CliRunner
    from fairaudit.cli import main
    html = tmp_path / "multiplicity.html"
    res = CliRunner().invoke(main, ["check", str(EXAMPLES / "allocators" / "top_k.py"), "--k", "250", "--data",
                                    str(EXAMPLES / "data" / "healthcare.csv"), "--checks", "multiplicity",
                                    "--html", str(html)])
    assert res.exit_code == 1, res.output
    dom, err, netlog = chromium(tmp_path, html.as_uri(), "--dump-dom")
    assert dom.count("<svg") >= 5
    for title in ("Outcome homogenisation", "Fig. 4b", "Fig. 4a", "Fig. 4c", "pairwise_consistency_excess"):
        assert title in dom, title
    assert "could not be drawn" not in dom
    assert console_messages(err) == [] and page_requests(netlog) == []


def _bidi_probe_report(tmp: Path, isolate: bool) -> Path:
    """A report whose data path holds a right-to-left override, instrumented to record where
    the browser lays out the path and fairaudit's ", sha256 …" after it (the footer)."""
    from fairaudit.report import render_html
    d = {"schema_version": 1, "target": {"path": "t.py", "kind": "selection"},
         "data": {"path": "people\u202e.csv", "sha256": "deadbeefcafe", "n": 3},
         "config": {"confidence": 0.95, "seed": 0}, "checks": []}
    html = render_html(d)
    if not isolate:   # positive control: the same page without the isolation
        html = html.replace("<bdi>", "").replace("</bdi>", "")
    probe = ("<script>var dd=[...document.querySelectorAll('footer dd')].find(e=>e.textContent.includes('deadbeef'));"
             "var c=dd.querySelectorAll('code');var a=c[0].getBoundingClientRect(),b=c[1].getBoundingClientRect();"
             "document.body.setAttribute('data-path-right',a.right);"
             "document.body.setAttribute('data-sha-left',b.left);</script>")
    page = tmp / f"bidi-{isolate}.html"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    return page


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_bidi_override_in_a_user_string_cannot_reorder_fairaudit_text(tmp_path):
    """Measured in the browser: with the report's isolation, fairaudit's ", sha256 …" stays to
    the right of a data path that ends in U+202E; without it (control), the override reverses it."""
    found = {}
    for isolate in (True, False):
        dom, err, _ = chromium(tmp_path, _bidi_probe_report(tmp_path, isolate).as_uri(), "--dump-dom")
        attrs = dict(re.findall(r'data-(path-right|sha-left)="([0-9.\-]+)"', dom))
        assert len(attrs) == 2, "the probe did not run"
        found[isolate] = float(attrs["sha-left"]) > float(attrs["path-right"])
    assert found == {True: True, False: False}, found


# -- a report a reviewer reads in 30 seconds (issue 31, item 3) ---------------------------------

#: an instrumented copy's probe: for every data table, whether it is wider than its box (a cut
#: column) and the first body row's verdict class; for every failing row, whether it is shown
#: (not in a closed <details>) and not clipped by a scrolling ancestor
LAYOUT_PROBE = r"""<script>
var out={tables:[],fails:[]};
document.querySelectorAll('table.data').forEach(function(t){
  var w=t.parentElement, r=t.getBoundingClientRect();
  if(!t.getClientRects().length) return;
  var s=t.closest('details.table'); var title=s?s.querySelector('.table-title').textContent.trim():'';
  var first=t.querySelector('tbody tr');
  out.tables.push({title:title, cut:(t.scrollWidth>w.clientWidth+1)||(r.right>document.documentElement.clientWidth+1),
                   first:first?first.className:''});
});
document.querySelectorAll('table.data tr.row-fail').forEach(function(tr){
  var shown=tr.getClientRects().length>0, r=tr.getBoundingClientRect(), clipped=false, e=tr.parentElement;
  while(e){var cs=getComputedStyle(e);
    if(/(auto|scroll|hidden)/.test(cs.overflowY)&&e.clientHeight<e.scrollHeight){var b=e.getBoundingClientRect();
      if(r.top<b.top||r.bottom>b.bottom) clipped=true;}
    e=e.parentElement;}
  var s=tr.closest('details.table');
  out.fails.push({title:s?s.querySelector('.table-title').textContent.trim():'', shown:shown, clipped:clipped});
});
document.body.setAttribute('data-layout', JSON.stringify(out));
</script>"""


def layout(tmp: Path, page: Path, width: int) -> dict:
    """The layout probe's findings for ``page`` in a ``width``-pixel-wide window."""
    import html as _html
    copy = tmp / f"layout-{width}-{page.stem}.html"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    dom, _, _ = chromium(tmp, copy.as_uri(), "--dump-dom", window=(width, 900))
    m = re.search(r'data-layout="([^"]*)"', dom)
    assert m, "the layout probe did not run"
    return json.loads(_html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def tv_report(tmp_path_factory) -> Path:
    """The issue's report: tv_stability on the PRP ranker (fails; 14 probes, few of them failing)."""
    from click.testing import CliRunner
    from fairaudit.cli import main
    tmp = tmp_path_factory.mktemp("tv")
    html = tmp / "tv.html"
    res = CliRunner().invoke(main, ["check", str(EXAMPLES / "allocators" / "prp_ranking.py"), "--checks", "tv_stability",
                                    "--html", str(html), "--in-process"])
    assert res.exit_code == 1, res.output
    return html


def _wide_result() -> dict:
    """A result with a 17-column table (as ex_interim's pools) of 30 rows, three failing,
    last in the check's order."""
    cols = ["pool", "n", "k", "draws", "eps_hat", "eps_lower", "eps_upper", "status", "worse_a", "better_b",
            "quality_a", "quality_b", "chance_a", "chance_b", "loss", "loss_lo", "loss_hi", "regret_vs_top_k", "verdict"]
    rows = [[i, 30, 3, 4096, 0.0123, -0.0031, 0.0456, "undecided", 5, 4, 0.9402, 0.9822, 1.0, 1.0, 0.0299,
             0.0272, 0.0325, -0.0201, "fail" if i >= 27 else "pass"] for i in range(30)]
    check = {"id": "ex_interim", "title": "Ex-interim fairness", "verdict": "fail", "message": "m.", "draws": 10,
             "statistic": None, "figures": [], "evidence": {}, "params": {"population": "", "epsilon": 0.1},
             "tables": {"pools": {"columns": cols, "rows": rows}}, "definition": "d"}
    return {"schema_version": 2, "target": {"path": "a.py", "kind": "selection"},
            "config": {"confidence": 0.95, "seed": 0}, "checks": [check], "warnings": []}


@pytest.mark.slow      # runs tv_stability (a few seconds) and Chromium at two widths
def test_failing_probe_row_is_in_view_without_scrolling(tv_report, tmp_path):
    """The issue's case: the probes table's failing rows come first, shown, in no scroll box
    (at 1280 and at 800 px), and no column of any table is cut."""
    for width in (1280, 800):
        found = layout(tmp_path, tv_report, width)
        probes = [t for t in found["tables"] if t["title"].startswith("Probes")]
        assert probes and probes[0]["first"] == "row-fail", (width, found["tables"])
        fails = [f for f in found["fails"] if f["title"].startswith("Probes")]
        assert fails and all(f["shown"] and not f["clipped"] for f in fails), (width, fails)
        assert [t["title"] for t in found["tables"] if t["cut"]] == [], (width, found["tables"])


@pytest.mark.slow      # Chromium three times
def test_wide_table_fits_800px_and_shows_failing_rows_first(tmp_path):
    """Positive control of the probe included: the same table without the report's CSS is cut."""
    from fairaudit.report import render_html
    page = tmp_path / "wide.html"
    page.write_text(render_html(_wide_result()), encoding="utf-8")
    for width in (1280, 800):
        found = layout(tmp_path, page, width)
        pools = [t for t in found["tables"] if t["title"].startswith("Pools")]
        assert pools[0]["first"] == "row-fail" and not any(t["cut"] for t in found["tables"]), (width, found)
        assert len(found["fails"]) == 3 and all(f["shown"] and not f["clipped"] for f in found["fails"]), found
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<style>.*?</style>", "<style>body{max-width:760px}</style>", page.read_text(), flags=re.S))
    assert any(t["cut"] for t in layout(tmp_path, bare, 800)["tables"]), "the probe does not see a cut table"


def pdf_pages(pdf: Path) -> int:
    """Pages of a PDF Chromium wrote (its page objects; no PDF library needed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


@pytest.mark.slow      # runs the README's first audit (about 15 s) and prints it
def test_readme_first_report_prints_in_a_few_pages(tmp_path):
    """The README's first command's report on A4 (it printed to 19 pages before issue 31)."""
    from click.testing import CliRunner
    from fairaudit.cli import main
    html = tmp_path / "fairaudit-report.html"
    res = CliRunner().invoke(main, ["check", str(EXAMPLES / "allocators" / "broome_lottery.py"), "--data",
                                    str(EXAMPLES / "data" / "population.csv"), "--checks",
                                    "broome,anonymity,selection_rates", "--html", str(html), "--in-process"])
    assert res.exit_code == 0, res.output
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, html.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    n = pdf_pages(pdf)
    assert 1 <= n <= 6, f"the README's first report prints to {n} pages"
    # control: the page counter counts pages (the same report with every table row printed is longer)
    long = tmp_path / "long.html"
    long.write_text(html.read_text().replace("<details", "<details open").replace(
        "</style>", "@media print{details>*{display:block!important}}</style>"))
    pdf2 = tmp_path / "long.pdf"
    chromium(tmp_path, long.as_uri(), f"--print-to-pdf={pdf2}", "--no-pdf-header-footer")
    assert pdf_pages(pdf2) > n
