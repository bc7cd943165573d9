"""The report's command line: ``python -m recbole_faerec.report``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from recbole_faerec.config import split_config_files
from recbole_faerec.io import USER_ERRORS, parse_overrides, print_user_error
from recbole_faerec.report.runner import run_report
from recbole_faerec.report.seeds import parse_seeds, run_seed_reports


def build_parser() -> argparse.ArgumentParser:
    """The report's argument parser; other ``--key=value`` flags are config overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m recbole_faerec.report",
        description="Train the bare backbone, LLMInit, LLM-ESR and FAERec (and ablations) with "
        "the same seed and "
        "settings and write results.json, results.md, groups.png and tsne.png. Any other "
        "--key=value is a config override for every run (e.g. --epochs=5).",
        allow_abbrev=False,  # --seed=S is RecBole's key, not an abbreviation of --seeds
    )
    parser.add_argument("--dataset", "-d", required=True, help="dataset name")
    parser.add_argument(
        "--model", "-m", required=True, help="backbone, or a comma-separated list of backbones"
    )
    parser.add_argument("--out", default=None, help="output folder (default reports/D-M)")
    parser.add_argument(
        "--config_files", default=None, help="space-separated yaml files (RecBole style)"
    )
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods to train per backbone, each also scored with the text "
        "prior: bare, llminit, llmesr, faerec (default all four)",
    )
    parser.add_argument(
        "--ablations", action="store_true", help="also run FAERec with each Table 3 switch off"
    )
    parser.add_argument(
        "--tsne-items", type=int, default=1000, help="items sampled for the t-SNE (default 1000)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs that this same command already finished (from results.json)",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="keep the trained runs of this same command but fit their scoring (the text prior) "
        "again on their saved checkpoints, then rewrite the report",
    )
    parser.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds: one report per seed in OUT/seed-<S>/, and their spread in "
        "OUT/seeds.md and seeds.json (default OUT: reports/D-M-seeds)",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args, extra = build_parser().parse_known_args(argv)
    backbones = [name.strip() for name in args.model.split(",") if name.strip()]
    try:
        options = dict(
            out=args.out,
            config_file_list=split_config_files(args.config_files),
            config_dict=parse_overrides(extra, literal=False),
            ablations=args.ablations,
            tsne_items=args.tsne_items,
            resume=args.resume,
            rescore=args.rescore,
            methods=args.methods,
        )
        if args.seeds is None:
            run_report(args.dataset, backbones, **options)
        else:
            run_seed_reports(args.dataset, backbones, parse_seeds(args.seeds), **options)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        return print_user_error(exc)
    return 0
