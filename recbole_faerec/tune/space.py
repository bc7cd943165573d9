"""The search-space language of sweeps: a yaml mapping of config keys to distributions.

Pure Python (yaml only, no Ray): a space can be written, loaded and checked anywhere.
:func:`recbole_faerec.tune.driver.ray_param_space` turns a parsed space into Ray Tune's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from recbole_faerec.io import ConfigError

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint", "constant")

# Keys a trial sets itself: sweeping them would break the run's bookkeeping.
RESERVED_KEYS = ("model", "dataset", "backbone", "data_path", "checkpoint_dir", "gpu_id")


class SearchSpaceError(ConfigError):
    """A malformed search-space file or entry."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One entry of a search space: a distribution ``kind`` and its ``value`` (list/bounds)."""

    kind: str
    value: Any

    @property
    def searched(self) -> bool:
        """True unless the entry is a constant."""
        return self.kind != "constant"


def _kinds_hint() -> str:
    return (
        "valid kinds: grid: [v1, ...], choice: [v1, ...], uniform: [lo, hi], "
        "loguniform: [lo, hi] (lo > 0), randint: [lo, hi] (both included), constant: value; "
        "a plain scalar or list is a constant"
    )


def _parse_entry(key: str, raw: Any, source: str) -> Dimension:
    def fail(problem: str) -> SearchSpaceError:
        return SearchSpaceError(f"{source}: key '{key}': {problem} ({_kinds_hint()})")

    if not isinstance(raw, Mapping):
        return Dimension("constant", raw)
    if len(raw) != 1:
        raise fail(f"expected exactly one distribution, got {sorted(map(str, raw))}")
    kind, value = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise fail(f"unknown distribution '{kind}'")
    if kind == "constant":
        return Dimension(kind, value)
    if not isinstance(value, list) or not value:
        raise fail(f"'{kind}' needs a non-empty list, got {value!r}")
    if kind in ("grid", "choice"):
        return Dimension(kind, list(value))
    if len(value) != 2:
        raise fail(f"'{kind}' needs [lo, hi], got {value!r}")
    lo, hi = value
    number = int if kind == "randint" else (int, float)
    if any(isinstance(v, bool) or not isinstance(v, number) for v in value):
        wanted = "integers" if kind == "randint" else "numbers"
        raise fail(f"'{kind}' bounds must be {wanted}, got {value!r}")
    if not lo < hi:
        raise fail(f"'{kind}' needs lo < hi, got {value!r}")
    if kind == "loguniform" and lo <= 0:
        raise fail(f"'loguniform' needs lo > 0, got {value!r}")
    return Dimension(kind, [lo, hi])


def parse_search_space(spec: Any, source: str = "<search space>") -> dict[str, Dimension]:
    """Validate a search-space mapping (config key -> distribution or constant)."""
    if not isinstance(spec, Mapping) or not spec:
        raise SearchSpaceError(
            f"{source}: a search space is a non-empty mapping of config keys ({_kinds_hint()})"
        )
    space = {}
    for key, raw in spec.items():
        if not isinstance(key, str):
            raise SearchSpaceError(f"{source}: key {key!r} is not a config key name")
        if key in RESERVED_KEYS:
            raise SearchSpaceError(
                f"{source}: key '{key}' is set by the sweep itself and cannot be searched"
            )
        space[key] = _parse_entry(key, raw, source)
    return space


def load_search_space(path: str | os.PathLike) -> dict[str, Dimension]:
    """Read and validate a search-space yaml (see ``properties/tune/``)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SearchSpaceError(f"{path}: cannot read the search space: {exc}") from exc
    return parse_search_space(spec, str(path))
