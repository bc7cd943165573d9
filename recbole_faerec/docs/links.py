"""Relative links of the Markdown docs: each must name an existing file, and an anchor a heading.

Links inside code (fenced blocks and inline spans) are not links. Web links (``http:``,
``https:``, ``mailto:``) are not followed. Anchors are checked against GitHub's heading ids:
lower case, punctuation but ``-`` and ``_`` dropped, spaces as ``-``, ``-1``, ``-2``... for
repeated headings.
"""

from __future__ import annotations

import re
from pathlib import Path

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def strip_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans."""
    return _CODE.sub("", _FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """Every link target of a Markdown text, in order (inline and reference links)."""
    text = strip_code(text)
    return _LINK.findall(text) + _REFERENCE.findall(text)


def heading_ids(text: str) -> set[str]:
    """GitHub's ids of the headings of a Markdown text."""
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for title in _HEADING.findall(_FENCE.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def broken_links(path: Path, root: Path) -> list[str]:
    """``"file: target (why)"`` for every relative link of ``path`` that points nowhere."""
    text = path.read_text(encoding="utf-8")
    problems = []
    for target in link_targets(text):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root).as_posix()}: {target}"
        if not resolved.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and resolved.is_file():
            if anchor not in heading_ids(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where} (no heading with this id)")
    return problems
