"""The documentation site (issue 31, item 5): the per-check pages are written from the
check registry, every docstring example runs as a doctest, and ``mkdocs build --strict``
builds the site (mkdocs.yml at the repository's root)."""
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from fairaudit.check import discover
from fairaudit.check_docs import check_page, checks_index, statistics_of, validation_rows

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = (ROOT / "docs" / "VALIDATION.md").read_text(encoding="utf-8")


def _modules_with_examples():
    """Every module of fairaudit and its checks whose docstrings hold a ``>>>`` example."""
    out = []
    for base, package in ((ROOT / "fairaudit", "fairaudit"), (ROOT / "checks", "fairaudit.checks")):
        for f in sorted(base.rglob("*.py")):
            if ">>> " in f.read_text(encoding="utf-8"):
                rel = f.relative_to(base).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                out.append(".".join([package, *parts]))
    return out


def test_some_modules_have_examples():
    assert {"fairaudit.result", "fairaudit.progress", "fairaudit.check_docs"} <= set(_modules_with_examples())


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0, res


def test_every_check_has_a_page_from_its_declaration():
    registry = discover()
    index = checks_index(registry)
    for cid, cls in registry.items():
        page = check_page(cls, VALIDATION)
        assert f"({cid}.md)" in index
        assert page.startswith(f"# {cls.title} (`{cid}`)")
        assert cls.definition.split(".")[0] in page
        for name, p in cls.params.items():                 # every parameter, with what it accepts
            assert f"| `{name}` |" in page and p.describe().replace("|", "\\|") in page
        for row in validation_rows(cid, VALIDATION):        # its rows of the validation table
            assert row in page
        for stat in statistics_of(cls):
            assert f"| `{stat}` |" in page
    # the checks the validation table covers get rows; the headline statistics are found
    assert validation_rows("selection_rates", VALIDATION) and "min_impact_ratio" in statistics_of(registry["selection_rates"])
    assert "max_chance_difference" in statistics_of(registry["anonymity"])


@pytest.mark.slow       # ~5-20 s: MkDocs, Material and mkdocstrings load the package's docstrings
def test_mkdocs_build_strict(tmp_path):
    for mod in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(mod, reason="the docs extra: pip install -e '.[docs]'")
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT,
                         capture_output=True, text=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    for cid in discover():
        assert (site / "checks" / cid / "index.html").is_file(), cid
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "fairaudit.engine.audit" in api and "AuditResult" in api and "to_frame" in api
    schema = (site / "json-schema" / "index.html").read_text(encoding="utf-8")
    assert "schema_version" in schema and "&lt;!-- result-schema --&gt;" not in schema
