"""Generated blocks of the Markdown docs: found by their markers, rewritten from their sources.

A block is::

    <!-- generated: KIND ARGUMENT -->
    ...
    <!-- end generated -->

and everything between the two markers belongs to the generator. :data:`RENDERERS` maps each
``KIND`` to the function that renders it from the repository at ``root``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from recbole_faerec.docs.figures import render_results, render_scaling, render_seeds, render_sweep
from recbole_faerec.docs.reference import DocsError, render_reference

BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<kind>[\w-]+)(?: (?P<arg>[^\s>]+))? -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end generated -->)",
    re.DOTALL,
)
#: Layering example of :func:`render_layering` (a backbone of RecBole's and a bundled dataset).
LAYERING_EXAMPLE = ("SASRec", "amazon-beauty")


def render_layering(root: Path, arg: str | None = None) -> str:
    """The order in which a run merges its yaml files (``config.default_config_files``)."""
    from recbole_faerec.config import PROPERTIES_DIR, default_config_files

    backbone, dataset = LAYERING_EXAMPLE
    names = []
    for i, file in enumerate(default_config_files(backbone, dataset)):
        path = Path(file).resolve()
        if path.is_relative_to(PROPERTIES_DIR.resolve()):
            relative = path.relative_to(PROPERTIES_DIR.resolve()).as_posix()
            names.append(f"properties/{relative}".replace(dataset, "<dataset>"))
        elif i == 0:
            names.append("<backbone>.yaml")
        else:
            names.append(path.name)
    layers = [*names, "--config_files", "config_dict", "command line"]
    return "```\n" + "\n  < ".join(layers) + "\n```"


def render_backbones(root: Path, arg: str | None = None) -> str:
    """The backbones FAERec wraps, with their losses and training modes, and those it cannot."""
    from recbole_faerec.model.registry import get_model
    from recbole_faerec.supported_backbones import (
        SUPPORTED,
        TRIMMABLE,
        UNSUPPORTED,
        loss_types,
        train_modes,
    )

    rows = [
        [
            name,
            ", ".join(loss_types(get_model(name))),
            ", ".join(f"`{mode}`" for mode in train_modes(name)),
            "yes" if name in TRIMMABLE else "no",
        ]
        for name in SUPPORTED
    ]
    lines = [
        "| backbone | losses | training modes | batches cut to their longest sequence |",
        "| :-- | :-- | :-- | :-- |",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        "Not wrappable:",
        "",
        *(f"- {name}: {reason}." for name, reason in UNSUPPORTED.items()),
    ]
    return "\n".join(lines)


_ROLE = re.compile(r":\w+:`(?P<short>~?)(?P<target>[^`]+)`")


def _role(match: re.Match[str]) -> str:
    """A reST cross-reference as code: ``:mod:`a.b``` -> `a.b`, ``:class:`~a.B``` -> `B`."""
    target = match["target"]
    return f"`{target.rsplit('.', 1)[-1] if match['short'] else target}`"


def summary_line(doc: str) -> str:
    """The first paragraph of a docstring as Markdown (reST roles and double backticks as code)."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return _ROLE.sub(_role, first).replace("``", "`").replace("|", "\\|")


def render_modules(root: Path, folder: str) -> str:
    """Every module of ``folder`` with the first paragraph of its docstring (``__main__`` and
    modules without a docstring left out)."""
    base = root / folder
    if not base.is_dir():
        raise DocsError(f"{base}: no such folder; fix the `generated: modules` marker.")
    rows = []
    for path in sorted(base.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if doc:
            name = path.relative_to(root).as_posix()
            name = name.removesuffix("__init__.py") if path.name == "__init__.py" else name
            rows.append(f"| `{name}` | {summary_line(doc)} |")
    return "\n".join(["| module | what it holds |", "| :-- | :-- |", *rows])


RENDERERS: dict[str, Callable[[Path, str | None], str]] = {
    "results": lambda root, arg: render_results(root, _required(arg, "results")),
    "seeds": lambda root, arg: render_seeds(root, _required(arg, "seeds")),
    "scaling": lambda root, arg: render_scaling(root, _required(arg, "scaling")),
    "sweep": lambda root, arg: render_sweep(root, _required(arg, "sweep")),
    "configuration": lambda root, arg: render_reference(root),
    "layering": render_layering,
    "backbones": render_backbones,
    "modules": lambda root, arg: render_modules(root, _required(arg, "modules")),
}


def _required(arg: str | None, kind: str) -> str:
    if not arg:
        raise DocsError(f"a `generated: {kind}` marker needs a path, e.g. `{kind} reports/...`.")
    return arg.rstrip("/")


def render_document(text: str, root: Path) -> str:
    """``text`` with every generated block rendered afresh."""

    def render(match: re.Match[str]) -> str:
        kind = match["kind"]
        if kind not in RENDERERS:
            raise DocsError(f"unknown generated block {kind!r}; known: {', '.join(RENDERERS)}.")
        body = RENDERERS[kind](root, match["arg"]).strip("\n")
        return f"{match['open']}{body}\n{match['close']}"

    return BLOCK.sub(render, text)


def blocks(text: str) -> list[tuple[str, str | None, str]]:
    """``(kind, argument, body)`` of every generated block of ``text``."""
    return [(m["kind"], m["arg"], m["body"]) for m in BLOCK.finditer(text)]


def stale_blocks(text: str, root: Path) -> list[str]:
    """``"kind argument"`` of every block whose body is not what the generator writes."""
    fresh = blocks(render_document(text, root))
    return [
        f"{kind} {arg or ''}".strip()
        for (kind, arg, body), (_, _, new) in zip(blocks(text), fresh, strict=True)
        if body != new
    ]
