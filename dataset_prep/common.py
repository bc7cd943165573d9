"""Shared reading, cleaning, filtering and writing for the raw-data converters.

Every converter turns its raw lines into :class:`Interaction` and :class:`ItemMeta` records and
hands them to :func:`convert`, which applies the same pipeline to all sources:

1. ``--min-rating`` (interactions without a rating are dropped when it is set);
2. duplicate user-item pairs are dropped, keeping the earliest (ties: first in the file);
3. the user/item frequency filter: ``single`` drops users with fewer than ``--min-user-inter``
   interactions, then items with fewer than ``--min-item-inter``, once (the paper's
   preprocessing); ``kcore`` repeats both steps until nothing changes;
4. interactions are sorted by user id, then timestamp (ties keep file order);
5. ``NAME.inter`` and ``NAME.item`` (only the items left) are written atomically.

Cells never contain tabs, newlines or double quotes (``"`` becomes ``''``), so the files read
back identically with ``quoting=csv.QUOTE_NONE`` and with RecBole's loader (pandas' default
quoting, which would otherwise treat a cell starting with ``"`` as quoted).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import html
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import pandas as pd

from recbole_faerec.io import atomic_open

GZIP_MAGIC = b"\x1f\x8b"
TEXT_FIELDS: tuple[str, ...] = ("title", "brand", "categories", "description")
# (field, RecBole type) of the optional .item columns, in file order.
ITEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("title", "token_seq"),
    ("brand", "token"),
    ("price", "float"),
    ("categories", "token_seq"),
    ("description", "token_seq"),
    ("sales_rank", "float"),
    ("city", "token"),
)
FILTER_MODES: tuple[str, ...] = ("single", "kcore")

_WHITESPACE = re.compile(r"\s+")
_PRICE = re.compile(r"\d+(?:\.\d+)?")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_ID_UNSAFE = re.compile(r'[\s"]')


class PrepError(Exception):
    """Bad input or settings; the message names the file, line, field and the fix."""


class Interaction(NamedTuple):
    """One user-item event, whatever the source format."""

    user: str
    item: str
    timestamp: float
    rating: float | None = None


@dataclass
class ItemMeta:
    """Cleaned item text; empty string / None means unknown."""

    title: str = ""
    brand: str = ""
    price: float | None = None
    categories: str = ""
    description: str = ""
    sales_rank: float | None = None
    city: str = ""

    def has_text(self) -> bool:
        """True when any of title, brand, categories, description is non-empty."""
        return any(getattr(self, name) for name in TEXT_FIELDS)


@dataclass
class Stats:
    """Size figures of an interaction set."""

    users: int
    items: int
    interactions: int

    @property
    def sparsity(self) -> float:
        """1 - interactions / (users * items)."""
        cells = self.users * self.items
        return 1.0 - self.interactions / cells if cells else 1.0

    @property
    def avg_seq_len(self) -> float:
        """Average number of interactions per user."""
        return self.interactions / self.users if self.users else 0.0

    def describe(self) -> str:
        """One-line human-readable summary."""
        return (
            f"{self.users:,} users, {self.items:,} items, {self.interactions:,} interactions, "
            f"sparsity {self.sparsity:.4%}, avg sequence length {self.avg_seq_len:.2f}"
        )


@dataclass
class ConversionResult:
    """What :func:`convert` wrote and the figures it printed."""

    inter_path: Path
    item_path: Path
    before: Stats
    after: Stats
    item_columns: list[str]
    items_without_text: int


def open_text(path: str | Path) -> IO[str]:
    """Open a UTF-8 text file, gzip-compressed or plain (decided by magic bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
    except OSError as exc:
        raise PrepError(f"{path}: cannot open ({exc.strerror}); check the path") from exc
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSON-lines file.

    Each line is strict JSON or, as in the 2014 Amazon metadata, a Python dict literal (parsed
    with ``ast.literal_eval``, never ``eval``).
    """
    with open_text(path) as handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):
                text = line.strip()
                if text:
                    yield lineno, _parse_line(text, path, lineno)
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise PrepError(
                f"{path}:{lineno + 1}: cannot decode the file ({exc}); expected UTF-8 JSON lines, "
                "plain or gzip-compressed"
            ) from exc


def _parse_line(text: str, path: str | Path, lineno: int) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            record = ast.literal_eval(text) if text.startswith("{") else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            record = None
        if record is None:
            raise PrepError(
                f"{path}:{lineno}: malformed line, neither JSON nor a Python dict literal "
                f"({json_error.msg} at column {json_error.colno}): {text[:80]!r}. "
                "Fix or remove that line (one object per line)."
            ) from None
    if not isinstance(record, dict):
        raise PrepError(
            f"{path}:{lineno}: expected one object per line, got {type(record).__name__}: "
            f"{text[:80]!r}. Fix or remove that line."
        )
    return record


def require(record: dict[str, Any], names: tuple[str, ...], path: str | Path, lineno: int) -> Any:
    """Value of the first present, non-empty field of ``names``; a clear error when none is."""
    for name in names:
        value = record.get(name)
        if value is not None and value != "":
            return value
    wanted = " or ".join(repr(name) for name in names)
    raise PrepError(
        f"{path}:{lineno}: missing field {wanted}; present fields: {sorted(record)}. "
        "Fix or remove that line, or check that the file is the right one."
    )


def clean_id(value: Any) -> str:
    """An id as a safe token string (no whitespace runs, tabs or double quotes)."""
    text = str(value)
    if _ID_UNSAFE.search(text):
        text = clean_text(text)
    return text.strip()


def clean_text(value: Any) -> str:
    """HTML-unescape, flatten whitespace (tabs, newlines) and replace ``"`` with ``''``.

    Lists are joined with spaces; None gives "".
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(filter(None, (clean_text(part) for part in value)))
    text = html.unescape(str(value)).replace('"', "''")
    return _WHITESPACE.sub(" ", text).strip()


def join_categories(names: Iterable[Any]) -> str:
    """Unique cleaned category names in first-appearance order, joined with ", "."""
    seen: dict[str, None] = {}
    for name in names:
        cleaned = clean_text(name)
        if cleaned:
            seen.setdefault(cleaned, None)
    return ", ".join(seen)


def parse_price(value: Any) -> float | None:
    """A price as a float: numbers and strings like "$1,012.99"; ranges and garbage give None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    text = str(value).strip().replace("$", "").replace(",", "").strip()
    return float(text) if _PRICE.fullmatch(text) else None


def parse_rank(value: Any) -> float | None:
    """The first numeric value of a sales rank: number, "1,234 in Beauty", dict or list."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for part in value:
            rank = parse_rank(part)
            if rank is not None:
                return rank
        return None
    match = _NUMBER.search(str(value))
    return float(match.group().replace(",", "")) if match else None


def format_number(value: float | None) -> str:
    """A float cell: integral values without a decimal point, missing values empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class InteractionColumns:
    """Column-wise accumulator of :class:`Interaction` records (compact for large files)."""

    def __init__(self) -> None:
        self.users: list[str] = []
        self.items: list[str] = []
        self.timestamps: list[float] = []
        self.ratings: list[float | None] = []

    def append(self, record: Interaction) -> None:
        """Add one interaction."""
        self.users.append(record.user)
        self.items.append(record.item)
        self.timestamps.append(record.timestamp)
        self.ratings.append(record.rating)

    def extend(self, records: Iterable[Interaction]) -> None:
        """Add many interactions."""
        for record in records:
            self.append(record)

    def to_frame(self) -> pd.DataFrame:
        """DataFrame with user_id, item_id, timestamp, rating (NaN when absent) and file order."""
        return pd.DataFrame(
            {
                "user_id": self.users,
                "item_id": self.items,
                "timestamp": pd.Series(self.timestamps, dtype="float64"),
                "rating": pd.Series(self.ratings, dtype="float64"),
                "order": range(len(self.users)),
            }
        )


def frame_stats(frame: pd.DataFrame) -> Stats:
    """Users, items and interactions of an interaction frame."""
    return Stats(
        users=int(frame["user_id"].nunique()),
        items=int(frame["item_id"].nunique()),
        interactions=len(frame),
    )


def apply_min_rating(frame: pd.DataFrame, min_rating: float | None, source: str) -> pd.DataFrame:
    """Keep interactions rated at least ``min_rating`` (all when None)."""
    if min_rating is None:
        return frame
    if frame["rating"].isna().all():
        raise PrepError(
            f"{source}: --min-rating {min_rating:g} was given but no line carries a rating; "
            "drop --min-rating"
        )
    kept = frame[frame["rating"] >= min_rating]
    if kept.empty:
        best = frame["rating"].max()
        raise PrepError(
            f"{source}: no interaction is rated at least {min_rating:g} (highest rating "
            f"{best:g}); lower --min-rating"
        )
    return kept


def drop_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the earliest interaction of each user-item pair (ties: first in the file)."""
    ordered = frame.sort_values(["timestamp", "order"], kind="stable")
    return ordered.drop_duplicates(["user_id", "item_id"], keep="first")


def filter_frequency(
    frame: pd.DataFrame, min_user_inter: int, min_item_inter: int, mode: str = "single"
) -> pd.DataFrame:
    """Drop users then items below the thresholds; once (``single``) or until stable (``kcore``)."""
    if mode not in FILTER_MODES:
        raise PrepError(f"unknown filter mode {mode!r}; use one of {', '.join(FILTER_MODES)}")
    while True:
        size = len(frame)
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        if (user_counts < min_user_inter).any():
            longest = int(user_counts.max())
            frame = frame[user_counts >= min_user_inter]
            if frame.empty:
                raise PrepError(
                    f"no interactions left after dropping users with fewer than {min_user_inter} "
                    f"interactions (the longest user sequence has {longest}); lower "
                    f"--min-user-inter (to at most {longest})"
                )
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        if (item_counts < min_item_inter).any():
            most = int(item_counts.max())
            frame = frame[item_counts >= min_item_inter]
            if frame.empty:
                raise PrepError(
                    f"no interactions left after dropping items with fewer than {min_item_inter} "
                    f"interactions (the most frequent item left has {most}); lower "
                    f"--min-item-inter (to at most {most}) or --min-user-inter"
                )
        if mode == "single" or len(frame) == size:
            return frame


def sort_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by user id, then timestamp; ties keep file order."""
    return frame.sort_values(["user_id", "timestamp", "order"], kind="stable")


def write_inter(frame: pd.DataFrame, path: Path) -> None:
    """Write ``user_id:token, item_id:token, timestamp:float[, rating:float]`` atomically."""
    with_rating = bool(frame["rating"].notna().any())
    header = ["user_id:token", "item_id:token", "timestamp:float"]
    columns = [frame["user_id"], frame["item_id"], frame["timestamp"].map(format_number)]
    if with_rating:
        header.append("rating:float")
        columns.append(frame["rating"].map(format_number))
    with atomic_open(path) as handle:
        handle.write("\t".join(header) + "\n")
        handle.writelines("\t".join(row) + "\n" for row in zip(*columns, strict=True))


def write_item(items: list[str], meta: dict[str, ItemMeta], path: Path) -> list[str]:
    """Write ``item_id:token`` plus each column of :data:`ITEM_COLUMNS` that has a value.

    Returns the names of the written columns (``item_id`` first).
    """
    records = [meta.get(item) or ItemMeta() for item in items]
    present = [
        (name, kind)
        for name, kind in ITEM_COLUMNS
        if any(getattr(record, name) not in ("", None) for record in records)
    ]
    with atomic_open(path) as handle:
        header = ["item_id:token"] + [f"{name}:{kind}" for name, kind in present]
        handle.write("\t".join(header) + "\n")
        for item, record in zip(items, records, strict=True):
            cells = [item]
            for name, kind in present:
                value = getattr(record, name)
                cells.append(format_number(value) if kind == "float" else value)
            handle.write("\t".join(cells) + "\n")
    return ["item_id"] + [name for name, _ in present]


def convert(
    interactions: InteractionColumns,
    load_meta: Callable[[set[str]], dict[str, ItemMeta]],
    *,
    name: str,
    out_dir: str | Path,
    min_user_inter: int = 5,
    min_item_inter: int = 5,
    filter_mode: str = "single",
    min_rating: float | None = None,
    reviews_label: str = "reviews",
    meta_label: str = "metadata",
    log: Callable[[str], None] = print,
) -> ConversionResult:
    """Filter, sort and write ``out_dir/name/name.inter`` and ``name.item`` (see module doc).

    ``load_meta`` receives the item ids left after filtering and returns their metadata.
    """
    if not name or "/" in name or "\\" in name:
        raise PrepError(f"--name {name!r} must be a non-empty file name without slashes")
    frame = interactions.to_frame()
    if frame.empty:
        raise PrepError(f"{reviews_label}: no interactions read; check the file")
    before = frame_stats(frame)
    log(f"read:   {before.describe()}")
    frame = apply_min_rating(frame, min_rating, reviews_label)
    if min_rating is not None:
        log(f"--min-rating {min_rating:g}: {len(frame):,} interactions kept")
    deduped = drop_duplicates(frame)
    if len(deduped) < len(frame):
        log(f"dropped {len(frame) - len(deduped):,} duplicate user-item pairs (kept the earliest)")
    frame = filter_frequency(deduped, min_user_inter, min_item_inter, filter_mode)
    frame = sort_interactions(frame)
    after = frame_stats(frame)
    log(
        f"after {filter_mode} filter (users >= {min_user_inter}, items >= {min_item_inter}): "
        f"{after.describe()}"
    )

    items = sorted(frame["item_id"].unique())
    meta = load_meta(set(items))
    without_text = sum(1 for item in items if not (item in meta and meta[item].has_text()))
    if without_text == len(items):
        raise PrepError(
            f"{meta_label}: none of the {len(items):,} items has any text (title, brand, "
            f"categories, description); {sum(item in meta for item in items):,} of their ids "
            "were found there. Check that the metadata file belongs to these reviews."
        )
    if without_text:
        log(
            f"warning: {without_text:,} of {len(items):,} items have no text in {meta_label}; "
            "kept with empty text"
        )

    target = Path(out_dir) / name
    inter_path, item_path = target / f"{name}.inter", target / f"{name}.item"
    columns = write_item(items, meta, item_path)
    write_inter(frame, inter_path)
    log(f"wrote {inter_path} and {item_path} (columns: {', '.join(columns)})")
    return ConversionResult(inter_path, item_path, before, after, columns, without_text)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Output and filter options shared by all converters."""
    parser.add_argument("--name", required=True, help="dataset name (file stem and folder name)")
    parser.add_argument("--out", required=True, type=Path, help="output root; writes OUT/NAME/")
    parser.add_argument(
        "--min-user-inter", type=_non_negative, default=5, help="drop users below this (default 5)"
    )
    parser.add_argument(
        "--min-item-inter", type=_non_negative, default=5, help="drop items below this (default 5)"
    )
    parser.add_argument(
        "--filter",
        choices=FILTER_MODES,
        default="single",
        help="single: users then items once (paper); kcore: repeat until stable",
    )
    parser.add_argument("--min-rating", type=float, default=None, help="keep ratings >= this")


def filter_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`convert` set by :func:`add_common_arguments`' filters."""
    return {
        "min_user_inter": args.min_user_inter,
        "min_item_inter": args.min_item_inter,
        "filter_mode": args.filter,
        "min_rating": args.min_rating,
    }


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def run_cli(action: Callable[[], object]) -> int:
    """Run a converter, turning :class:`PrepError` into a one-line message and exit code 2."""
    try:
        action()
    except PrepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
