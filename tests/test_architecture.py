"""The architecture DESIGN.md promises, read from the source with ``ast``.

* one module per check id in ``checks/`` (and every module defines exactly the check it is named after);
* no check imports another check, the sampler, the target loader or the report, and no
  check reads the clock (``time``, ``datetime``): verdicts are a pure function of the seed;
* nothing in ``fairaudit/`` imports ``checks/`` except the registry (``fairaudit/check.py``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK_FILES = sorted(p for p in (ROOT / "checks").glob("*.py") if not p.name.startswith("_"))
ENGINE_FILES = sorted((ROOT / "fairaudit").rglob("*.py"))

FORBIDDEN_FOR_CHECKS = {
    "fairaudit.run.sampler": "the sampler (ask ctx.sampler for draws)",
    "fairaudit.run.targets": "the target loader (inputs come from fairaudit.inputs)",
    "fairaudit.report": "the report (a check returns data; the report renders it)",
    "fairaudit.figures": "the figure renderer",
    "fairaudit.checks": "another check (shared code belongs in the engine)",
    "time": "the clock (no wall clock may decide a verdict; --budget is the sampler's)",
    "datetime": "the clock",
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = "fairaudit.checks" if path.parent.name == "checks" else \
        ".".join(["fairaudit", *path.relative_to(ROOT / "fairaudit").parent.parts])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # ``from fairaudit import sampler`` imports the submodule
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if mod == "fairaudit"]
    return out


def _forbidden(mod: str) -> str | None:
    for bad, why in FORBIDDEN_FOR_CHECKS.items():
        if mod == bad or mod.startswith(bad + "."):
            return why
    return None


def test_one_module_per_check_id():
    from fairaudit.check import discover
    registry = discover()
    by_module = {}
    for cid, cls in registry.items():
        if cls.__module__.startswith("fairaudit.checks."):
            by_module.setdefault(cls.__module__.rsplit(".", 1)[1], []).append(cid)
    for mod, ids in by_module.items():
        assert ids == [mod], f"checks/{mod}.py defines {ids}; expected exactly the check '{mod}'"
    assert sorted(by_module) == sorted(p.stem for p in CHECK_FILES)


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.name)
def test_check_imports_only_the_engine_it_may(path):
    bad = [(line, mod, why) for line, mod in imported_modules(path) if (why := _forbidden(mod))]
    assert not bad, "\n".join(f"{path.name}:{line} imports {mod}: a check must not import {why}"
                              for line, mod, why in bad)


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.name)
def test_check_modules_stay_readable(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 650, f"{path.name} has {lines} lines; move what it shares into a named engine module"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_does_not_import_checks_except_the_registry(path):
    if path.name == "check.py":
        return
    bad = [(line, mod) for line, mod in imported_modules(path) if mod.startswith("fairaudit.checks")]
    assert not bad, "\n".join(f"{path.relative_to(ROOT)}:{line} imports {mod}: only the registry "
                              f"(fairaudit/check.py) may import checks" for line, mod in bad)


def test_the_reader_sees_imports():
    """The test above must be able to fail: the reader finds a relative and an absolute import."""
    mods = [m for _, m in imported_modules(ROOT / "fairaudit" / "engine.py")]
    assert "fairaudit.run.sampler" in mods and "numpy" in mods
