"""Command line of ``run_recbole_faerec.py``: train FAERec around a RecBole backbone.

Flags besides the ones below are RecBole's ``--key=value`` overrides (RecBole's ``Config``
reads them from the command line itself, with the highest precedence).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recbole_faerec.model.registry import METHODS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the FAERec command line."""
    parser = argparse.ArgumentParser(
        prog="run_recbole_faerec.py",
        description="Train and evaluate FAERec around a RecBole sequential backbone. Any "
        "other --key=value is a RecBole/FAERec config override (e.g. --epochs=5 --alpha=0.3).",
    )
    parser.add_argument("--model", "-m", default="SASRec", help="backbone the method wraps")
    parser.add_argument("--dataset", "-d", default="amazon-beauty", help="dataset name")
    parser.add_argument(
        "--config_files", default=None, help="space-separated yaml files (RecBole style)"
    )
    parser.add_argument(
        "--nproc", type=int, default=1, help="processes: gloo on CPU, NCCL on GPUs (dist_backend)"
    )
    parser.add_argument(
        "--method",
        default=None,
        help=f"what wraps the backbone: {', '.join(METHODS)} (default faerec)",
    )
    parser.add_argument(
        "--base", action="store_true", help="the bare backbone on the same pipeline (--method=bare)"
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument(
        "--list-backbones", action="store_true", help="print the supported backbones"
    )
    tune = parser.add_argument_group("Ray Tune sweep (recbole_faerec.tune)")
    tune.add_argument("--tune", metavar="SPACE_YAML", help="sweep this search space with Ray Tune")
    tune.add_argument("--num-samples", type=int, default=1, help="samples (grids: repeats)")
    tune.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial")
    tune.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial")
    tune.add_argument("--max-concurrent", type=int, default=None, help="concurrent trials cap")
    tune.add_argument("--scheduler", choices=("asha", "fifo"), default="asha", help="scheduler")
    tune.add_argument("--grace-period", type=int, default=1, help="ASHA: evaluations before stop")
    tune.add_argument("--ray-address", default=None, help="join this cluster (default: local)")
    tune.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    tune.add_argument("--storage-path", default="ray_results", help="experiment folder root")
    tune.add_argument("--name", default=None, help="experiment name (default from the args)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        help="--resume=CHECKPOINT continues a training run (its -resume.pth continues exactly); "
        "with --tune, --resume continues the sweep --name",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args, extra = build_parser().parse_known_args(argv)
    if args.tune:
        from recbole_faerec.tune.cli import cli_sweep

        return cli_sweep(args, extra)
    if args.list_backbones:
        from recbole_faerec.supported_backbones import format_backbone_list

        print(format_backbone_list())
        return 0
    if args.resume is True:
        print(
            "error: --resume needs the checkpoint to continue from; fix: "
            "--resume=saved/<model>-<date>-resume.pth",
            file=sys.stderr,
        )
        return 2
    from recbole_faerec.config import split_config_files
    from recbole_faerec.io import USER_ERRORS, print_user_error
    from recbole_faerec.quick_start import run

    config_files = split_config_files(args.config_files)
    try:
        run(
            args.model,
            args.dataset,
            config_files,
            nproc=args.nproc,
            base=args.base,
            method=args.method,
        )
    except USER_ERRORS as exc:
        if args.debug:
            raise
        return print_user_error(exc)
    return 0
