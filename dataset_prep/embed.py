"""Build the frozen LLM item-embedding table of a RecBole dataset.

    python -m dataset_prep.embed --data-path DIR --dataset NAME [--model M]
        [--provider hf|sentence-transformers|openai] [--batch-size N] [--max-length N]
        [--pooling mean|cls|last] [--template T] [--domain D] [--api-base URL] [--out FILE]
        [--device auto|cpu|cuda] [--half] [--format npz|itememb]

``DIR/NAME/NAME.item`` is read (a bundled dataset without an item file in ``DIR`` is written there
first); the table goes to ``--out`` or to the default location used by training runs
(``DIR/NAME/NAME.<model slug>-<hash>.npz``), through the same per-prompt cache. With
``--format itememb`` the table is also written as RecBole's pretrained-vector atomic file
``DIR/NAME/NAME.itememb`` (:mod:`dataset_prep.itememb`), which RecBole's own FAERec reads. The
last line printed is the path of the file written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dataset_prep.itememb import write_itememb
from recbole_faerec.data.bundled import materialize_bundled_dataset
from recbole_faerec.embeddings.providers import POOLINGS, PROVIDERS
from recbole_faerec.embeddings.table import EmbeddingSettings, build_embedding_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (unset options keep the ``properties/embedding.yaml`` defaults)."""
    parser = argparse.ArgumentParser(
        prog="python -m dataset_prep.embed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-path", required=True, help="folder holding the dataset folders")
    parser.add_argument("--dataset", required=True, help="dataset name (DIR/NAME/NAME.item)")
    parser.add_argument("--provider", choices=PROVIDERS, help="embedding provider (default hf)")
    parser.add_argument("--model", help="model folder/name (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--batch-size", type=int, help="prompts per batch")
    parser.add_argument("--max-length", type=int, help="max tokens per prompt")
    parser.add_argument("--pooling", choices=POOLINGS, help="hf pooling")
    parser.add_argument("--template", help="amazon, yelp, a yaml file or a template string")
    parser.add_argument("--domain", help="value of {domain} in the template")
    parser.add_argument("--api-base", help="openai: base URL of the /embeddings endpoint")
    parser.add_argument("--api-key-env", help="openai: environment variable with the API key")
    parser.add_argument("--cache-dir", help="per-prompt vector cache folder")
    parser.add_argument("--allow-download", action="store_true", help="allow hub downloads")
    parser.add_argument("--device", help="hf/sentence-transformers: auto, cpu, cuda or cuda:N")
    parser.add_argument("--half", action="store_true", help="float16 encoder (CUDA only)")
    parser.add_argument("--out", help="output .npz (default: the training runs' location)")
    parser.add_argument("--force", action="store_true", help="rewrite an up-to-date table")
    parser.add_argument(
        "--format",
        choices=("npz", "itememb"),
        default="npz",
        help="itememb: also write RecBole's atomic file DIR/NAME/NAME.itememb",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> EmbeddingSettings:
    """EmbeddingSettings with the given options applied over the defaults."""
    overrides = {
        "provider": args.provider,
        "model": args.model,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "pooling": args.pooling,
        "prompt_template": args.template,
        "prompt_domain": args.domain,
        "api_base": args.api_base,
        "api_key_env": args.api_key_env,
        "cache_dir": args.cache_dir,
        "allow_download": args.allow_download or None,
        "device": args.device,
        "half": args.half or None,
    }
    return dataclasses.replace(
        EmbeddingSettings(), **{k: v for k, v in overrides.items() if v is not None}
    )


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the table, print stats, and print its path last."""
    args = parse_args(argv)
    settings = settings_from_args(args)
    dataset_dir = Path(args.data_path) / args.dataset
    if not any(dataset_dir.glob(f"{args.dataset}.item*")):
        materialize_bundled_dataset(args.dataset, dataset_dir)
    result = build_embedding_table(
        settings,
        Path(args.data_path) / args.dataset,
        args.dataset,
        out=args.out,
        show_progress=not args.no_progress,
        force=args.force,
    )
    stats = result.stats
    if result.rebuilt:
        rate = stats.computed / result.seconds if stats.computed and result.seconds else 0.0
        print(
            f"items: {result.items}  unique prompts: {stats.unique}  computed: {stats.computed}  "
            f"cached: {stats.cached}  dim: {result.dim}  seconds: {result.seconds:.1f}  "
            f"items/s: {rate:.1f}"
        )
    else:
        print(f"items: {result.items}  dim: {result.dim}  up to date, nothing rebuilt")
    if args.format == "itememb":
        print(write_itememb(result.path, dataset_dir / f"{args.dataset}.itememb"))
    else:
        print(result.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
