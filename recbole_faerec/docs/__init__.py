"""Docs that cannot drift: ``python -m recbole_faerec.docs [--check] [--root DIR]``.

The parts of ``README.md`` and ``docs/*.md`` that repeat what the repository already holds are
generated, between ``<!-- generated: KIND ARGUMENT -->`` and ``<!-- end generated -->``
(:mod:`.blocks`):

* ``results reports/<dataset>-<backbones>``: the test figures of a committed report;
* ``seeds reports/<...>-seeds``: a report over seeds, mean and spread;
* ``scaling reports/scaling/scaling.txt``: the scaling benchmark's table;
* ``configuration``: every key of ``properties/`` with its type, default and meaning, read from
  the yaml comments (:mod:`.reference`);
* ``layering``: the order in which a run merges its yaml files;
* ``backbones``: the backbones FAERec wraps.

Without ``--check`` the blocks are rewritten in place; with it nothing is written and the
command fails, naming each stale block. Both also fail on a relative link that points nowhere
(:mod:`.links`). The tests run ``--check``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from recbole_faerec.docs.blocks import render_document, stale_blocks
from recbole_faerec.docs.links import broken_links
from recbole_faerec.docs.reference import DocsError

#: The repository this package sits in (``recbole_faerec/docs/`` -> the root).
ROOT = Path(__file__).resolve().parents[2]


def doc_files(root: Path) -> list[Path]:
    """``README.md`` and every ``docs/*.md``."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def generate(root: Path) -> list[Path]:
    """Rewrite the generated blocks of every doc; returns the files that changed."""
    changed = []
    for path in doc_files(root):
        text = path.read_text(encoding="utf-8")
        new = render_document(text, root)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def check(root: Path) -> list[str]:
    """Every problem of the docs: stale generated blocks and broken relative links."""
    problems = []
    for path in doc_files(root):
        if not path.is_file():
            problems.append(f"{path.relative_to(root).as_posix()}: missing")
            continue
        name = path.relative_to(root).as_posix()
        stale = stale_blocks(path.read_text(encoding="utf-8"), root)
        problems += [f"{name}: stale generated block `{block}`" for block in stale]
        problems += broken_links(path, root)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_faerec.docs",
        description="Regenerate the generated parts of README.md and docs/*.md.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; fail if stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if not args.check:
            for path in generate(root):
                print(f"rewrote {path.relative_to(root).as_posix()}")
        problems = check(root)
    except DocsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems and args.check:
        print("fix: python -m recbole_faerec.docs", file=sys.stderr)
    return 1 if problems else 0


__all__ = ["ROOT", "DocsError", "check", "doc_files", "generate", "main"]
