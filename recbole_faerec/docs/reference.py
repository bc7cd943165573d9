"""The configuration reference: every key of the shipped yaml files, read from the files themselves.

Every key of ``properties/*.yaml``, ``properties/model/*.yaml`` and ``properties/dataset/*.yaml``
is documented on its own line as ``key: default  # (type) meaning``; the meaning may go on over
indented comment lines right below. Values may be nested (``load_col:`` over an indented block),
quoted or null (``~``). The search spaces of ``properties/tune/`` are not configuration and are
left out. A key without its comment is an error, so a new key cannot go undocumented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

#: The folders of ``properties/`` that hold configuration, with their section titles.
SECTIONS = (
    ("", "Shared files (`properties/*.yaml`)"),
    ("model", "Model files (`properties/model/*.yaml`)"),
    ("dataset", "Dataset files (`properties/dataset/*.yaml`)"),
)
#: Model files listed first in their section; the others follow by name.
FIRST_MODEL_FILES = ("FAERec.yaml",)

_KEY_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w.\-]*)\s*:(?=\s|$)(?P<rest>.*)$")
_TYPED = re.compile(r"^\((?P<type>[^)]*)\)\s*(?P<meaning>.*)$")
_NULLS = {"~", "null", "Null", "NULL"}


class DocsError(ValueError):
    """A documentation source that cannot be read as documented (the message names the fix)."""


@dataclass(frozen=True)
class Key:
    """One configuration key as its yaml line documents it."""

    name: str
    type: str
    default: str
    meaning: str


def split_comment(text: str) -> tuple[str, str]:
    """``(value, comment)`` of the text after ``key:``: a ``#`` outside quotes, at the start or
    after white space, starts the comment (YAML's rule)."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip(), text[i + 1 :].strip()
    return text.strip(), ""


def _default_text(raw: str, value: object) -> str:
    """The default as written (quotes dropped, nulls as ``null``), or the parsed nested value."""
    if raw:
        if raw in _NULLS:
            return "null"
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            return raw[1:-1]
        return raw
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def read_keys(path: Path) -> tuple[str, list[Key]]:
    """The header comment of a yaml file and its documented keys, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    values = yaml.safe_load("\n".join(lines)) or {}
    header: list[str] = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    entries: list[tuple[str, str, list[str]]] = []
    comment: list[str] | None = None  # the comment lines of the key being read
    for line in lines:
        match = _KEY_LINE.match(line)
        if match:
            raw, text = split_comment(match["rest"])
            comment = [text] if text else []
            entries.append((match["key"], raw, comment))
        elif comment and line[:1].isspace() and line.strip().startswith("#"):
            comment.append(line.strip().lstrip("#").strip())
        else:
            comment = None
    undocumented = [name for name, _, lines_ in entries if not lines_]
    if undocumented:
        raise DocsError(
            f"{path}: keys without a `# (type) meaning` comment: {', '.join(undocumented)}; "
            "fix: document each on its line."
        )
    missing = set(values) - {name for name, _, _ in entries}
    if missing:
        raise DocsError(f"{path}: keys not found on a line of their own: {sorted(missing)}.")
    keys = []
    for name, raw, lines_ in entries:
        match = _TYPED.match(" ".join(lines_))
        kind, meaning = (match["type"], match["meaning"]) if match else ("", " ".join(lines_))
        keys.append(Key(name, kind.strip(), _default_text(raw, values.get(name)), meaning.strip()))
    return " ".join(header), keys


def config_files(properties: Path) -> list[tuple[str, list[Path]]]:
    """``(section title, yaml files)`` per section of :data:`SECTIONS`, in reading order."""
    sections = []
    for folder, title in SECTIONS:
        files = sorted((properties / folder).glob("*.yaml"))
        if folder == "model":
            files.sort(key=lambda p: (p.name not in FIRST_MODEL_FILES, p.name))
        if files:
            sections.append((title, files))
    return sections


def _text(text: str) -> str:
    """Yaml comment text as Markdown: ``<name>`` placeholders stay visible (not HTML tags)."""
    return text.replace("<", "&lt;")


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def _row(key: Key) -> str:
    default = key.default.replace("|", "\\|")
    cells = [f"`{key.name}`", _cell(key.type), f"`{default}`", _cell(key.meaning)]
    return "| " + " | ".join(cells) + " |"


def render_reference(root: Path) -> str:
    """One table per yaml file (key, type, default, meaning), grouped by section."""
    parts = []
    for title, files in config_files(root / "properties"):
        parts.append(f"## {title}")
        for path in files:
            header, keys = read_keys(path)
            parts.append(f"### `{path.relative_to(root).as_posix()}`")
            if header:
                parts.append(_text(header))
            table = ["| key | type | default | meaning |", "| :-- | :-- | :-- | :-- |"]
            parts.append("\n".join(table + [_row(key) for key in keys]))
    return "\n\n".join(parts)
