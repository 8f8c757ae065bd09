"""The documents cite the tests that hold their claims: every cited test must exist, and every
relative link between the documents must lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITED = re.compile(r"(tests/[\w/]+\.py)(?:::([\w\[\]|-]+))?")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_cited_test_exists() -> None:
    missing = []
    for doc in DOCS:
        for path, name in CITED.findall(doc.read_text(encoding="utf-8")):
            source = ROOT / path
            if not source.is_file():
                missing.append(f"{doc.name}: {path}")
            elif name and not re.search(
                rf"^(async )?def {re.escape(name.split('[')[0])}\(", source.read_text(), re.M
            ):
                missing.append(f"{doc.name}: {path}::{name}")
    assert missing == []


def test_relative_links_lead_somewhere() -> None:
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []
