"""Amazon reviews + metadata -> RecBole atomic files (``NAME.inter``, ``NAME.item``).

Accepted variants, recognised line by line (gzip or plain, by magic bytes):

- 2014 (McAuley): reviews strict JSON ``reviewerID, asin, unixReviewTime, overall``; metadata
  Python dict literals ``title, price, brand, categories (list of paths), salesRank (dict),
  description``;
- 2018: strict JSON; metadata ``category`` (list), ``description`` (list or str), ``rank``
  (``"1,234 in Beauty"`` or list), ``brand``, ``price`` (``"$12.99"``);
- 2023: reviews ``user_id, parent_asin, timestamp`` (milliseconds), ``rating``; metadata
  ``parent_asin, title, store, price, categories, description, main_category``.

Example::

    python -m dataset_prep.amazon --reviews reviews_Beauty_5.json.gz \\
        --meta meta_Beauty.json.gz --name amazon-beauty --out dataset
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataset_prep.common import (
    ConversionResult,
    Interaction,
    InteractionColumns,
    ItemMeta,
    PrepError,
    add_common_arguments,
    clean_id,
    clean_text,
    convert,
    filter_options,
    iter_records,
    join_categories,
    parse_price,
    parse_rank,
    require,
    run_cli,
)

USER_FIELDS: tuple[str, ...] = ("reviewerID", "user_id")
ITEM_FIELDS: tuple[str, ...] = ("parent_asin", "asin")
TIME_FIELDS: tuple[str, ...] = ("unixReviewTime", "timestamp", "reviewTime")


def _number(value: Any, field: str, path: str | Path, lineno: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PrepError(
            f"{path}:{lineno}: field {field!r} is not a number: {value!r}. Fix or remove that line."
        ) from None


def review_to_interaction(record: dict[str, Any], path: str | Path, lineno: int) -> Interaction:
    """Normalise one review line of any Amazon release (timestamps in seconds)."""
    user = clean_id(require(record, USER_FIELDS, path, lineno))
    item = clean_id(require(record, ITEM_FIELDS, path, lineno))
    require(record, TIME_FIELDS, path, lineno)
    if record.get("unixReviewTime") not in (None, ""):
        timestamp = _number(record["unixReviewTime"], "unixReviewTime", path, lineno)
    elif record.get("timestamp") not in (None, ""):
        timestamp = _number(record["timestamp"], "timestamp", path, lineno) / 1000.0
    else:
        try:
            day = datetime.strptime(str(record["reviewTime"]).strip(), "%m %d, %Y")
        except ValueError:
            raise PrepError(
                f"{path}:{lineno}: field 'reviewTime' is not like '09 1, 2013': "
                f"{record['reviewTime']!r}. Fix or remove that line."
            ) from None
        timestamp = day.replace(tzinfo=UTC).timestamp()
    raw_rating = record.get("overall", record.get("rating"))
    rating = None if raw_rating in (None, "") else _number(raw_rating, "rating", path, lineno)
    return Interaction(user, item, timestamp, rating)


def meta_to_item(record: dict[str, Any]) -> ItemMeta:
    """Normalise one metadata line of any Amazon release."""
    categories: list[Any] = []
    if record.get("main_category"):
        categories.append(record["main_category"])
    for entry in record.get("categories") or record.get("category") or []:
        if isinstance(entry, list | tuple):
            categories.extend(entry)
        else:
            categories.append(entry)
    rank = record.get("salesRank")
    return ItemMeta(
        title=clean_text(record.get("title")),
        brand=clean_text(record.get("brand") or record.get("store")),
        price=parse_price(record.get("price")),
        categories=join_categories(categories),
        description=clean_text(record.get("description")),
        sales_rank=parse_rank(rank if rank not in (None, {}, "") else record.get("rank")),
    )


def read_reviews(path: str | Path) -> InteractionColumns:
    """All review lines of ``path`` as interactions."""
    columns = InteractionColumns()
    for lineno, record in iter_records(path):
        columns.append(review_to_interaction(record, path, lineno))
    return columns


def read_meta(path: str | Path, keep: set[str]) -> dict[str, ItemMeta]:
    """Metadata of the items in ``keep`` (first line wins for repeated ids)."""
    items: dict[str, ItemMeta] = {}
    for lineno, record in iter_records(path):
        item = clean_id(require(record, ITEM_FIELDS, path, lineno))
        if item in keep and item not in items:
            items[item] = meta_to_item(record)
    return items


def convert_amazon(
    reviews: str | Path,
    meta: str | Path,
    name: str,
    out_dir: str | Path,
    *,
    min_user_inter: int = 5,
    min_item_inter: int = 5,
    filter_mode: str = "single",
    min_rating: float | None = None,
    log: Any = print,
) -> ConversionResult:
    """Convert Amazon review and metadata files to ``out_dir/name/name.{inter,item}``."""
    return convert(
        read_reviews(reviews),
        lambda keep: read_meta(meta, keep),
        name=name,
        out_dir=out_dir,
        min_user_inter=min_user_inter,
        min_item_inter=min_item_inter,
        filter_mode=filter_mode,
        min_rating=min_rating,
        reviews_label=str(reviews),
        meta_label=str(meta),
        log=log,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dataset_prep.amazon", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--reviews", required=True, type=Path, help="review lines (.json[.gz])")
    parser.add_argument("--meta", required=True, type=Path, help="metadata lines (.json[.gz])")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(
        lambda: convert_amazon(
            args.reviews,
            args.meta,
            args.name,
            args.out,
            **filter_options(args),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
