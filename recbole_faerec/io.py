"""Small file and command-line helpers shared by the plugin and its scripts.

* :func:`atomic_open` / :func:`atomic_write_text`: a file appears whole or not at all (temporary
  file beside the target, ``fsync``, ``os.replace``), so a killed run never leaves half a file.
* :func:`json_safe` / :func:`write_json`: strict JSON (``nan`` and ``inf`` become ``null``, numpy
  and torch scalars plain numbers).
* :func:`parse_overrides`: RecBole-style ``--key=value`` flags as a dict.
* :class:`FAERecError` / :class:`ConfigError`: the plugin's own errors, and
  :func:`print_user_error`: the one-line ``error: ...`` of the command lines (exit code 2).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    Parent directories are created. On any exception (including KeyboardInterrupt) the
    temporary file is removed and ``path`` is left untouched. Text mode defaults to UTF-8 with
    ``\\n`` line endings. The file is flushed to disk before it replaces ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def json_safe(value: Any) -> Any:
    """``value`` as JSON-native values: numpy/torch scalars as numbers, non-finite floats as
    None (strict JSON has no NaN), paths as strings, tuples as lists, mapping keys as strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    item = getattr(value, "item", None)
    if callable(item):
        return json_safe(item())
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def json_text(payload: Any) -> str:
    """``payload`` as strict, indented JSON (see :func:`json_safe`), without a final newline."""
    return json.dumps(json_safe(payload), indent=2, allow_nan=False)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as strict, indented JSON with a final newline, atomically."""
    return atomic_write_text(path, json_text(payload) + "\n")


class FAERecError(Exception):
    """Base of the plugin's own errors: each says what is wrong and how to fix it, and the
    command lines print it as one line (:data:`USER_ERRORS`)."""


class ConfigError(FAERecError, ValueError):
    """A setting, file or flag the user gave that the plugin cannot run with; the message reads
    ``<key>: <problem>; fix: <how>``. A ValueError, as RecBole's own checks raise."""


def parse_overrides(args: Sequence[str], literal: bool = True) -> dict[str, Any]:
    """RecBole-style ``--key=value`` flags as a dict.

    With ``literal`` the values are read as Python literals (``5``, ``0.3``, ``[5, 10]``;
    ``true``/``false`` in any case as booleans; anything else stays text); without, every value
    stays text for RecBole's ``Config`` to convert. Raises ConfigError for any other argument and
    for a key given twice with different values (as RecBole refuses on its command line).
    """
    overrides: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for arg in args:
        key, sep, text = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not sep or not key:
            raise ConfigError(f"unrecognised argument '{arg}': overrides are --key=value")
        check_repeated_flag(key, texts.get(key), text)
        texts[key] = text
        overrides[key] = _literal(text) if literal else text
    return overrides


def check_repeated_flag(key: str, first: str | None, second: str) -> None:
    """A ``--key=value`` flag may repeat only with the same value; ConfigError otherwise."""
    if first is not None and first != second:
        raise ConfigError(
            f"{key}: given twice with different values (--{key}={first} and --{key}={second}); "
            f"fix: give --{key} once."
        )


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False}.get(text.lower(), text)


#: Errors of the user's input (settings, files, data, an embedding provider's answers) that the
#: command lines print as one line: the plugin's own, and the ValueError and OSError that RecBole
#: and the standard library raise for bad settings and missing files.
USER_ERRORS = (FAERecError, ValueError, OSError)


def print_user_error(exc: BaseException) -> int:
    """Print ``exc`` as one ``error: ...`` line on stderr and return the exit code 2.

    The command lines catch :data:`USER_ERRORS` with it unless ``--debug`` asks for the traceback.
    """
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    return 2
