"""Regenerate the bundled datasets in ``recbole_faerec/data/bundled/`` from the shared raw data.

- ``amazon-beauty``: the shared Amazon Beauty 5-core files converted with the defaults of
  ``dataset_prep.amazon`` (single-pass 5/5 filter);
- ``amazon-beauty-sample``: ``--sample-users`` users chosen deterministically (smallest
  SHA-256 of ``"<seed>:<user_id>"``) with their full sequences and all their items, not re-filtered;
- ``amazon-scientific``: the shared Amazon 2018 "Industrial and Scientific" atomic files, as they
  are (already RecBole atomic files);
- ``yelp``: the shared Yelp check-in atomic files, as they are (users revisit businesses).

Files are gzip-compressed with ``mtime=0`` and no stored file name, so regeneration is
byte-reproducible.

Example::

    python -m dataset_prep.make_bundled
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
import tempfile
from pathlib import Path

from dataset_prep.amazon import convert_amazon
from dataset_prep.common import run_cli
from recbole_faerec.data.bundled import BUNDLED_DIR
from recbole_faerec.io import atomic_open

FULL_NAME = "amazon-beauty"
SAMPLE_NAME = "amazon-beauty-sample"
DEFAULT_RAW_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty-5core"
)
REVIEWS_FILE = "reviews_Beauty_5core.json.gz"
META_FILE = "meta_Beauty_5core.json.gz"
SCIENTIFIC_NAME = "amazon-scientific"
DEFAULT_SCIENTIFIC_DIR = DEFAULT_RAW_DIR.parent / "amazon-scientific-2018"
YELP_NAME = "yelp"
DEFAULT_YELP_DIR = DEFAULT_RAW_DIR.parent / "yelp-checkins"
DEFAULT_SAMPLE_USERS = 2000
DEFAULT_SEED = 2024


def write_gzip(data: bytes, path: Path) -> None:
    """Write ``data`` gzip-compressed, reproducibly (mtime 0, no file name), atomically."""
    with (
        atomic_open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as packed,
    ):
        packed.write(data)


def select_users(users: set[str], count: int, seed: int) -> set[str]:
    """``count`` users with the smallest SHA-256 of ``"<seed>:<user>"`` (all if fewer)."""

    def key(user: str) -> str:
        return hashlib.sha256(f"{seed}:{user}".encode()).hexdigest()

    return set(sorted(users, key=key)[:count])


def sample_atomic_files(inter_text: str, item_text: str, count: int, seed: int) -> tuple[str, str]:
    """Restrict atomic-file texts to ``count`` users (full sequences) and the items they touch."""
    inter_header, *inter_lines = inter_text.splitlines(keepends=True)
    users = {line.split("\t", 1)[0] for line in inter_lines}
    chosen = select_users(users, count, seed)
    kept = [line for line in inter_lines if line.split("\t", 1)[0] in chosen]
    items = {line.split("\t", 2)[1] for line in kept}
    item_header, *item_lines = item_text.splitlines(keepends=True)
    kept_items = [line for line in item_lines if line.split("\t", 1)[0].rstrip("\n") in items]
    return inter_header + "".join(kept), item_header + "".join(kept_items)


def make_bundled(
    raw_dir: Path = DEFAULT_RAW_DIR,
    out_dir: Path = BUNDLED_DIR,
    sample_users: int = DEFAULT_SAMPLE_USERS,
    seed: int = DEFAULT_SEED,
    scientific_dir: Path = DEFAULT_SCIENTIFIC_DIR,
    yelp_dir: Path = DEFAULT_YELP_DIR,
) -> list[Path]:
    """Convert the shared data, write the eight bundled ``.gz`` files, return their paths."""
    with tempfile.TemporaryDirectory() as tmp:
        result = convert_amazon(raw_dir / REVIEWS_FILE, raw_dir / META_FILE, FULL_NAME, tmp)
        inter_text = result.inter_path.read_text(encoding="utf-8")
        item_text = result.item_path.read_text(encoding="utf-8")
    sample_inter, sample_item = sample_atomic_files(inter_text, item_text, sample_users, seed)
    scientific, yelp = (
        [
            gzip.decompress((folder / f"{name}.{suffix}.gz").read_bytes()).decode("utf-8")
            for suffix in ("inter", "item")
        ]
        for folder, name in ((scientific_dir, SCIENTIFIC_NAME), (yelp_dir, YELP_NAME))
    )
    written = []
    for name, inter, item in (
        (FULL_NAME, inter_text, item_text),
        (SAMPLE_NAME, sample_inter, sample_item),
        (SCIENTIFIC_NAME, *scientific),
        (YELP_NAME, *yelp),
    ):
        for suffix, text in (("inter", inter), ("item", item)):
            path = Path(out_dir) / f"{name}.{suffix}.gz"
            write_gzip(text.encode("utf-8"), path)
            written.append(path)
            rows = text.count("\n") - 1
            print(f"wrote {path} ({path.stat().st_size:,} bytes, {rows:,} rows)")
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dataset_prep.make_bundled", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW_DIR, help="shared Beauty folder")
    parser.add_argument(
        "--out", type=Path, default=BUNDLED_DIR, help="where to write the .gz files"
    )
    parser.add_argument("--sample-users", type=int, default=DEFAULT_SAMPLE_USERS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--scientific", type=Path, default=DEFAULT_SCIENTIFIC_DIR, help="shared Scientific folder"
    )
    parser.add_argument("--yelp", type=Path, default=DEFAULT_YELP_DIR, help="shared Yelp folder")
    args = parser.parse_args(argv)
    return run_cli(
        lambda: make_bundled(
            args.raw, args.out, args.sample_users, args.seed, args.scientific, args.yelp
        )
    )


if __name__ == "__main__":
    sys.exit(main())
