"""Yelp Open Dataset reviews + businesses -> RecBole atomic files (``NAME.inter``, ``NAME.item``).

Review lines ``{"user_id", "business_id", "stars", "date": "2018-07-07 22:09:11", ...}`` become
interactions (timestamp: the date read as UTC, rating: stars); business lines
``{"business_id", "name", "city", "categories": "Restaurants, Pizza" or null, ...}`` become the
``title``, ``categories`` and ``city`` item columns.

Example::

    python -m dataset_prep.yelp --reviews yelp_academic_dataset_review.json \\
        --business yelp_academic_dataset_business.json --name yelp --out dataset \\
        --start-date 2018-01-01 --end-date 2019-12-31
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
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
    require,
    run_cli,
)

DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def _parse_date(value: Any, path: str | Path, lineno: int) -> datetime:
    text = str(value).strip()
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise PrepError(
        f"{path}:{lineno}: field 'date' is not like '2018-07-07 22:09:11': {value!r}. "
        "Fix or remove that line."
    )


def _day_start(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def review_to_interaction(record: dict[str, Any], path: str | Path, lineno: int) -> Interaction:
    """Normalise one Yelp review line (timestamp in UTC seconds, rating = stars)."""
    user = clean_id(require(record, ("user_id",), path, lineno))
    item = clean_id(require(record, ("business_id",), path, lineno))
    when = _parse_date(require(record, ("date",), path, lineno), path, lineno)
    stars = record.get("stars")
    try:
        rating = None if stars in (None, "") else float(stars)
    except (TypeError, ValueError):
        raise PrepError(
            f"{path}:{lineno}: field 'stars' is not a number: {stars!r}. Fix or remove that line."
        ) from None
    return Interaction(user, item, when.timestamp(), rating)


def business_to_item(record: dict[str, Any]) -> ItemMeta:
    """Normalise one Yelp business line."""
    categories = record.get("categories") or ""
    if isinstance(categories, str):
        categories = categories.split(",")
    return ItemMeta(
        title=clean_text(record.get("name")),
        categories=join_categories(categories),
        city=clean_text(record.get("city")),
    )


def read_reviews(
    path: str | Path, start: date | None = None, end: date | None = None
) -> InteractionColumns:
    """Review lines of ``path`` dated within ``[start, end]`` (whole days, UTC) as interactions."""
    low = _day_start(start) if start else None
    high = _day_start(end + timedelta(days=1)) if end else None
    columns = InteractionColumns()
    for lineno, record in iter_records(path):
        interaction = review_to_interaction(record, path, lineno)
        if low is not None and interaction.timestamp < low:
            continue
        if high is not None and interaction.timestamp >= high:
            continue
        columns.append(interaction)
    if not columns.users and (start or end):
        raise PrepError(
            f"{path}: no review dated between --start-date {start or '-'} and --end-date "
            f"{end or '-'}; widen the date window"
        )
    return columns


def read_businesses(path: str | Path, keep: set[str]) -> dict[str, ItemMeta]:
    """Metadata of the businesses in ``keep`` (first line wins for repeated ids)."""
    items: dict[str, ItemMeta] = {}
    for lineno, record in iter_records(path):
        item = clean_id(require(record, ("business_id",), path, lineno))
        if item in keep and item not in items:
            items[item] = business_to_item(record)
    return items


def convert_yelp(
    reviews: str | Path,
    business: str | Path,
    name: str,
    out_dir: str | Path,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    min_user_inter: int = 5,
    min_item_inter: int = 5,
    filter_mode: str = "single",
    min_rating: float | None = None,
    log: Any = print,
) -> ConversionResult:
    """Convert Yelp review and business files to ``out_dir/name/name.{inter,item}``."""
    if start_date and end_date and start_date > end_date:
        raise PrepError(f"--start-date {start_date} is after --end-date {end_date}; swap them")
    return convert(
        read_reviews(reviews, start_date, end_date),
        lambda keep: read_businesses(business, keep),
        name=name,
        out_dir=out_dir,
        min_user_inter=min_user_inter,
        min_item_inter=min_item_inter,
        filter_mode=filter_mode,
        min_rating=min_rating,
        reviews_label=str(reviews),
        meta_label=str(business),
        log=log,
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dataset_prep.yelp", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--reviews", required=True, type=Path, help="review lines (.json[.gz])")
    parser.add_argument("--business", required=True, type=Path, help="business lines (.json[.gz])")
    parser.add_argument("--start-date", type=_day, help="keep reviews from this day (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=_day, help="keep reviews up to this day, inclusive")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(
        lambda: convert_yelp(
            args.reviews,
            args.business,
            args.name,
            args.out,
            start_date=args.start_date,
            end_date=args.end_date,
            **filter_options(args),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
