"""Item prompts: one natural-language text per item, rendered from a RecBole ``.item`` row.

Template syntax (a small superset of ``str.format`` placeholders):

* ``{field}`` is replaced by the item's value of that column (the ``.item`` header name without its
  ``:type`` suffix, e.g. ``title``, ``brand``, ``categories``) or by ``{domain}``.
* ``[ ... ]`` is an optional segment. It is dropped when a field written directly inside it is
  missing (no such column, or an empty cell), and also when it contains nested segments and every
  one of them was dropped. Segments nest, so a sentence can be a segment made of clause segments.
* A nested segment may start with a separator (``;`` or ``,`` plus the spaces after it), as in
  ``[; brand is {brand}]``; the separator is removed when no earlier sibling segment was kept, so
  the clauses that remain always read "a; b; c".
* ``{domain}`` never counts as missing (an empty domain just disappears).
* ``\\[``, ``\\]``, ``\\{``, ``\\}`` and ``\\\\`` are literal characters. A template ``.`` right
  after a value that already ends with ``.``, ``!`` or ``?`` is skipped. Runs of spaces in the
  result are collapsed and the result is stripped.

``prompt_template`` may be a built-in name (``amazon`` or ``yelp``), a path to a yaml file with a
``template`` key (a string, or a list of strings joined with single spaces) and an optional
``domain`` key, or a template string. ``null`` picks ``yelp`` when the item file has a ``city``
column or the dataset name contains "yelp", else ``amazon``.

``prompt_domain`` (``{domain}``) defaults to the dataset name without an ``amazon`` prefix and a
``5core`` suffix, with ``-``/``_`` as spaces: ``amazon-beauty`` -> ``beauty``,
``amazon-sports-outdoors`` -> ``sports outdoors``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

logger = logging.getLogger(__name__)

AMAZON_TEMPLATE = (
    "[The {domain} item has the following attributes: "
    "[name is {title}][; brand is {brand}][; price is {price}].] "
    "[The item has following features: [{categories}].] "
    "[The item has following descriptions: [{description}].]"
)
YELP_TEMPLATE = (
    "[The business has the following attributes: [name is {title}][; city is {city}].] "
    "[The business has following categories: [{categories}].]"
)
BUILTIN_TEMPLATES = {"amazon": AMAZON_TEMPLATE, "yelp": YELP_TEMPLATE}

_SEPARATOR = re.compile(r"^[;,]\s*")
_SPACES = re.compile(r"\s+")
_ESCAPABLE = "[]{}\\"
_NEVER_MISSING = frozenset({"domain"})


@dataclass
class _Text:
    text: str


@dataclass
class _Field:
    name: str


@dataclass
class _Segment:
    parts: list[_Text | _Field | _Segment]


def _parse(template: str) -> _Segment:
    """Parse a template into a tree of text, fields and optional segments."""
    stack: list[_Segment] = [_Segment([])]
    buf: list[str] = []

    def flush() -> None:
        if buf:
            stack[-1].parts.append(_Text("".join(buf)))
            buf.clear()

    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in _ESCAPABLE:
            buf.append(template[i + 1])
            i += 2
            continue
        if ch == "{":
            end = template.find("}", i)
            name = template[i + 1 : end].strip() if end != -1 else ""
            if end == -1 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"prompt template: bad placeholder at position {i}: {template!r}")
            flush()
            stack[-1].parts.append(_Field(name))
            i = end + 1
            continue
        if ch == "}":
            raise ValueError(f"prompt template: unmatched '}}' at position {i}: {template!r}")
        if ch == "[":
            flush()
            seg = _Segment([])
            stack[-1].parts.append(seg)
            stack.append(seg)
        elif ch == "]":
            if len(stack) == 1:
                raise ValueError(f"prompt template: unmatched ']' at position {i}: {template!r}")
            flush()
            stack.pop()
        else:
            buf.append(ch)
        i += 1
    if len(stack) != 1:
        raise ValueError(f"prompt template: unclosed '[': {template!r}")
    flush()
    return stack[0]


def _fields(seg: _Segment) -> list[str]:
    out: list[str] = []
    for part in seg.parts:
        if isinstance(part, _Field):
            out.append(part.name)
        elif isinstance(part, _Segment):
            out.extend(_fields(part))
    return out


def _render(seg: _Segment, values: dict[str, str], optional: bool) -> str | None:
    """Render a segment; None when an optional segment is dropped."""
    out: list[str] = []
    has_children = False
    kept_children = 0
    for part in seg.parts:
        if isinstance(part, _Text):
            text = part.text
            if text.startswith(".") and out and out[-1].rstrip().endswith((".", "!", "?")):
                text = text[1:]
            out.append(text)
        elif isinstance(part, _Field):
            value = values.get(part.name, "")
            if not value and part.name not in _NEVER_MISSING:
                if optional:
                    return None
                continue
            out.append(value)
        else:
            has_children = True
            text = _render(part, values, optional=True)
            if text is None:
                continue
            if kept_children == 0:
                text = _SEPARATOR.sub("", text)
            kept_children += 1
            out.append(text)
    if optional and has_children and kept_children == 0:
        return None
    return "".join(out)


class PromptTemplate:
    """A parsed prompt template (see the module docstring for the syntax)."""

    def __init__(self, template: str, domain: str = "") -> None:
        self.template = template
        self.domain = domain
        self._tree = _parse(template)
        self.fields = list(dict.fromkeys(_fields(self._tree)))

    def render(self, values: dict[str, str]) -> str:
        """Render one item; ``values`` maps column names to (possibly empty) cell texts."""
        merged = {"domain": self.domain, **values}
        text = _render(self._tree, merged, optional=False) or ""
        return _SPACES.sub(" ", text).strip()


def default_domain(dataset: str) -> str:
    """Domain word(s) derived from a dataset name: ``amazon-beauty`` -> ``beauty``."""
    name = dataset.lower()
    name = re.sub(r"^amazon[-_ ]*", "", name)
    name = re.sub(r"[-_ ]*5[-_ ]?core$", "", name)
    return _SPACES.sub(" ", re.sub(r"[-_]+", " ", name)).strip()


def resolve_template(
    template: str | None, dataset: str, columns: list[str], domain: str | None
) -> tuple[PromptTemplate, bool]:
    """Build the run's template from the ``prompt_template``/``prompt_domain`` settings.

    Returns the template and whether it is user-supplied (custom) rather than built in.
    """
    yaml_domain = None
    custom = True
    if template is None:
        use_yelp = "city" in columns or "yelp" in dataset.lower()
        text = YELP_TEMPLATE if use_yelp else AMAZON_TEMPLATE
        custom = False
    elif template in BUILTIN_TEMPLATES:
        text = BUILTIN_TEMPLATES[template]
        custom = False
    elif template.endswith((".yaml", ".yml")):
        path = Path(os.path.expanduser(template))
        if not path.is_file():
            raise FileNotFoundError(
                f"prompt template file {path} does not exist; fix: point prompt_template at an "
                "existing yaml file with a 'template' key, or give the template text itself"
            )
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        raw = data.get("template") if isinstance(data, dict) else None
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            raw = " ".join(raw)
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(
                f"prompt template file {path} has no 'template' key (a string or a list of "
                'strings); fix: add e.g. template: "[name is {title}]"'
            )
        text = raw
        yaml_domain = data.get("domain")
    else:
        text = template
    chosen_domain = domain if domain is not None else yaml_domain
    if chosen_domain is None:
        chosen_domain = default_domain(dataset)
    return PromptTemplate(text, str(chosen_domain)), custom


def read_item_file(path: str | os.PathLike) -> pd.DataFrame:
    """Read a RecBole ``.item`` file (may be gzipped) as strings; headers lose their ``:type``."""
    frame = pd.read_csv(
        path,
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
    )
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    return frame


def build_prompts(
    item_path: str | os.PathLike,
    dataset: str,
    template: str | None = None,
    domain: str | None = None,
    item_id_field: str = "item_id",
) -> tuple[list[str], list[str]]:
    """Return ``(item_tokens, prompts)`` for every row of an item file.

    Raises ValueError naming the file and the items when some items have no text at all.
    """
    frame = read_item_file(item_path)
    if item_id_field not in frame.columns:
        raise ValueError(
            f"{item_path}: no '{item_id_field}' column (columns: {list(frame.columns)}); fix: "
            "give the item file an item id column, or set ITEM_ID_FIELD to its name"
        )
    prompt_template, custom = resolve_template(template, dataset, list(frame.columns), domain)
    item_fields = [f for f in prompt_template.fields if f != "domain"]
    present = [f for f in item_fields if f in frame.columns]
    absent = [f for f in item_fields if f not in frame.columns]
    if custom and absent:
        logger.warning("%s has no column(s) %s used by the prompt template", item_path, absent)
    if not present:
        raise ValueError(
            f"{item_path}: the prompt template uses none of the file's columns "
            f"(template fields {item_fields}, columns {list(frame.columns)}); fix: use a "
            "prompt_template whose {{fields}} are columns of the item file"
        )
    tokens = frame[item_id_field].str.strip().tolist()
    if not tokens:
        raise ValueError(
            f"{item_path}: the item file has a header but no items; fix: write one row per item "
            "(its id and texts), e.g. with `python -m dataset_prep.amazon`"
        )
    duplicated = frame[item_id_field].str.strip()[lambda s: s.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(
            f"{item_path}: {len(duplicated)} item token(s) appear on more than one row (e.g. "
            f"{duplicated[:5]}); fix: keep one row per item in the item file"
        )
    columns = {f: frame[f].str.strip().tolist() for f in present}
    prompts: list[str] = []
    empty: list[str] = []
    for row, token in enumerate(tokens):
        values = {f: columns[f][row] for f in present}
        if not any(values.values()):
            empty.append(token)
        prompts.append(prompt_template.render(values))
    if empty:
        shown = ", ".join(repr(t) for t in empty[:5])
        raise ValueError(
            f"{item_path}: {len(empty)} item(s) have no text in any of the prompt's columns "
            f"{present} (e.g. {shown}); fix: fill in those cells, drop those items from the "
            "dataset, or choose a prompt_template that uses columns they have"
        )
    return tokens, prompts
