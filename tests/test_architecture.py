"""The architecture ARCHITECTURE.md promises, read from the source with ``ast``.

* one check per module or package in ``checks/`` (a package defines its check in
  ``__init__.py``; its siblings hold the mathematics only that check uses);
* no check imports another check, the run wing (sampler, workers, targets), the report
  or its words, and no check reads the clock (``time``, ``datetime``): verdicts are a
  pure function of the seed;
* nothing in ``fairaudit/`` imports ``checks/`` except the registry (``fairaudit/check.py``),
  and the run wing never imports the report;
* no import circle among fairaudit's modules, imports inside functions included;
* no module of ``fairaudit/`` serves a single check (that check's package is its home);
* every package of the source tree ships (it is listed in ``pyproject.toml``).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK_ENTRIES = sorted(p for p in (ROOT / "checks").iterdir()
                       if not p.name.startswith(("_", ".")) and (p.suffix == ".py" or (p / "__init__.py").exists()))
CHECK_FILES = sorted((ROOT / "checks").rglob("*.py"))
ENGINE_FILES = sorted((ROOT / "fairaudit").rglob("*.py"))

FORBIDDEN_FOR_CHECKS = {
    "fairaudit.run": "the run wing (ask ctx.sampler for draws)",
    "fairaudit.sampler": "the sampler (ask ctx.sampler for draws)",
    "fairaudit.workers": "the worker processes",
    "fairaudit.targets": "the target loader (inputs come from fairaudit.inputs)",
    "fairaudit.report": "the report (a check returns data; the report renders it)",
    "fairaudit.figures": "the figure renderer",
    "fairaudit.headline": "the report's headlines (a check declares its words as class attributes)",
    "fairaudit.labels": "the report's words (a check declares its words as class attributes)",
    "fairaudit.terminal": "the terminal",
    "fairaudit.cli": "the command line",
    "time": "the clock (no wall clock may decide a verdict; --budget is the sampler's)",
    "datetime": "the clock",
}
#: the run wing: it draws; it never renders and never knows a check
RUN_WING = ("fairaudit.run", "fairaudit.sampler", "fairaudit.workers", "fairaudit.targets", "fairaudit.models")
#: modules the public API offers to users (they may serve one check and still belong to everyone)
PUBLIC = {"fairaudit.strategies", "fairaudit.testing", "fairaudit.pytest_plugin"}


def module_name(path: Path) -> str:
    """The dotted name ``path`` has once installed (``checks/`` ships as ``fairaudit.checks``)."""
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "checks":
        parts = ["fairaudit", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


ALL_MODULES = {module_name(p): p for p in ENGINE_FILES + CHECK_FILES}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Absolute names of every module ``path`` imports, at any depth (relative imports
    resolved; ``from pkg import sub`` names the submodule ``pkg.sub``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
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
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if f"{mod}.{a.name}" in ALL_MODULES]
    return out


def _own_module(mod: str) -> str | None:
    """The project module ``mod`` is, or lies in (None for a third-party name)."""
    while mod and mod not in ALL_MODULES:
        mod = mod.rsplit(".", 1)[0] if "." in mod else ""
    return mod or None


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports (an import of one's own parent package —
    which Python runs first anyway — is not an edge)."""
    graph = {}
    for name, path in ALL_MODULES.items():
        edges = set()
        for _, mod in imported_modules(path):
            target = _own_module(mod)
            if target and target != name and not name.startswith(target + "."):
                edges.add(target)
        graph[name] = edges
    return graph


def _forbidden(mod: str) -> str | None:
    for bad, why in FORBIDDEN_FOR_CHECKS.items():
        if mod == bad or mod.startswith(bad + "."):
            return why
    return None


def _check_of(mod: str) -> str | None:
    """The check id whose module or package ``mod`` is in (None for the engine)."""
    parts = mod.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["fairaudit", "checks"] else None


def test_one_check_per_module_or_package():
    from fairaudit.check import discover
    registry = discover()
    by_entry = {}
    for cid, cls in registry.items():
        if cls.__module__.startswith("fairaudit.checks."):
            by_entry.setdefault(cls.__module__, []).append(cid)
    for mod, ids in by_entry.items():
        entry = mod.split(".")[2]
        assert mod == f"fairaudit.checks.{entry}", \
            f"{mod} defines {ids}: a check's class lives in checks/{entry}.py or checks/{entry}/__init__.py"
        assert ids == [entry], f"checks/{entry} defines {ids}; expected exactly the check '{entry}'"
    assert sorted(m.split(".")[2] for m in by_entry) == sorted(p.stem for p in CHECK_ENTRIES)


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: str(p.relative_to(ROOT / "checks")))
def test_check_imports_only_the_engine_it_may(path):
    own = _check_of(module_name(path))
    bad = [(line, mod, why) for line, mod in imported_modules(path)
           if (why := _forbidden(mod)) and _check_of(mod) != own]
    bad += [(line, mod, "another check (what two checks share belongs in the engine)")
            for line, mod in imported_modules(path) if _check_of(mod) not in (None, own)]
    assert not bad, "\n".join(f"{path.relative_to(ROOT)}:{line} imports {mod}: a check must not import {why}"
                              for line, mod, why in bad)


@pytest.mark.parametrize("path", CHECK_FILES + ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_readable(path):
    # per file, not per check: a check's package may hold as many modules as its mathematics needs
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 900, f"{path.relative_to(ROOT)} has {lines} lines; split it where its parts have names"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_does_not_import_checks_except_the_registry(path):
    if path == ROOT / "fairaudit" / "check.py":
        return
    bad = [(line, mod) for line, mod in imported_modules(path) if mod.startswith("fairaudit.checks")]
    assert not bad, "\n".join(f"{path.relative_to(ROOT)}:{line} imports {mod}: only the registry "
                              f"(fairaudit/check.py) may import checks" for line, mod in bad)


@pytest.mark.parametrize("path", [p for p in ENGINE_FILES if module_name(p).startswith(RUN_WING)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_run_wing_never_renders(path):
    bad = [(line, mod) for line, mod in imported_modules(path)
           if mod.startswith(("fairaudit.report", "fairaudit.figures", "fairaudit.headline", "fairaudit.terminal",
                              "fairaudit.checks"))]
    assert not bad, "\n".join(f"{path.relative_to(ROOT)}:{line} imports {mod}: the run wing draws; "
                              f"it never renders and never knows a check" for line, mod in bad)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (each an import circle)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    circles = strongly_connected(import_graph())
    assert not circles, "modules that import each other (imports inside functions included):\n" + "\n".join(
        "  " + " ↔ ".join(c) for c in circles)


def test_the_circle_finder_finds_circles():
    """The test above must be able to fail: a circle through a function-level import is found."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_engine_module_serves_a_single_check():
    graph = import_graph()
    users: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        for dep in deps:
            users.setdefault(dep, set()).add(mod)
    lonely = []
    for mod in ALL_MODULES:
        if _check_of(mod) or mod in PUBLIC or mod == "fairaudit" or not users.get(mod):
            continue
        if all(_check_of(u) for u in users[mod]) and len({_check_of(u) for u in users[mod]}) == 1:
            lonely.append(f"{mod} is used only by the check {_check_of(next(iter(users[mod])))}: "
                          f"move it into that check's package")
    assert not lonely, "\n".join(lonely)


def test_the_reader_sees_imports():
    """The tests above must be able to fail: the reader finds a relative and an absolute
    import, and a function-level one."""
    mods = [m for _, m in imported_modules(ROOT / "fairaudit" / "engine.py")]
    assert "fairaudit.result" in mods and "numpy" in mods
    assert "fairaudit.check" in import_graph()["fairaudit.engine"]


def test_every_package_ships():
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {module_name(p) for p in ENGINE_FILES + CHECK_FILES if p.name == "__init__.py"}
    missing = sorted(packages - listed)
    assert not missing, f"packages not listed in pyproject.toml's [tool.setuptools] packages: {missing}"


def test_checks_declare_their_words():
    """Every statistic a check's headline names has the check's own words, and no two checks
    give one column id different headers."""
    from fairaudit.check import discover
    seen: dict[str, tuple[str, str]] = {}
    for cid, cls in discover().items():
        for stat in cls.headlines:
            assert stat in cls.statistic_labels, f"{cid} has a headline for {stat} but no statistic label"
        for col, words in cls.column_labels.items():
            if col in seen:
                assert seen[col][1] == words, f"column {col!r}: {seen[col][0]} says {seen[col][1]!r}, {cid} says {words!r}"
            seen[col] = (cid, words)
