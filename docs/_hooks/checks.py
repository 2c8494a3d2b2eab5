"""MkDocs hook: the per-check pages and the JSON Schema page, written from the code.

- ``checks/index.md`` and ``checks/<id>.md`` for every check in the registry
  (:func:`fairaudit.check.discover`), by :mod:`fairaudit.check_docs`, with their rows of
  ``docs/VALIDATION.md``; the nav's "Checks" section lists them.
- ``<!-- result-schema -->`` in a page is replaced by the shipped JSON Schema.
"""
from __future__ import annotations

import json
from pathlib import Path

from mkdocs.structure.files import File

from fairaudit.check import discover
from fairaudit.check_docs import check_page, checks_index


def on_config(config):
    registry = discover()
    pages = [{"Overview": "checks/index.md"}] + [{cid: f"checks/{cid}.md"} for cid in sorted(registry)]
    for i, entry in enumerate(config.nav or []):
        if isinstance(entry, dict) and "Checks" in entry:
            config.nav[i] = {"Checks": pages}
    return config


def on_files(files, config):
    registry = discover()
    validation = (Path(config.docs_dir) / "VALIDATION.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "checks/index.md", content=checks_index(registry)))
    for cid, cls in sorted(registry.items()):
        files.append(File.generated(config, f"checks/{cid}.md", content=check_page(cls, validation)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "<!-- result-schema -->" in markdown:
        from fairaudit.result import result_schema
        schema = json.dumps(result_schema(), indent=2, ensure_ascii=False)
        markdown = markdown.replace("<!-- result-schema -->", f"```json\n{schema}\n```")
    return markdown
