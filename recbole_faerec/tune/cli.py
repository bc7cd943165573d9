"""The sweep's command line: ``run_recbole_faerec.py --tune SPACE`` or
``python -m recbole_faerec.tune --tune SPACE`` (same flags)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recbole_faerec.config import split_config_files
from recbole_faerec.io import USER_ERRORS, parse_overrides, print_user_error
from recbole_faerec.model.registry import resolve_method
from recbole_faerec.tune.driver import run_sweep
from recbole_faerec.tune.summary import trials_markdown


def cli_sweep(args: Any, extra: Sequence[str]) -> int:
    """``run_recbole_faerec.py --tune SPACE``: run the sweep the parsed flags describe."""
    try:
        overrides = parse_overrides(extra)
        outcome = run_sweep(
            args.tune,
            args.model,
            args.dataset,
            config_files=split_config_files(args.config_files),
            overrides=overrides,
            method=resolve_method(args.method, args.base),
            num_samples=args.num_samples,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            max_concurrent=args.max_concurrent,
            scheduler=args.scheduler,
            grace_period=args.grace_period,
            ray_address=args.ray_address,
            num_cpus=args.num_cpus,
            storage_path=args.storage_path,
            name=args.name,
            resume=bool(args.resume),
        )
    except USER_ERRORS as exc:
        if args.debug:
            raise
        return print_user_error(exc)
    print(format_outcome(outcome))
    return 0 if outcome["best_params"] is not None else 1


def format_outcome(outcome: Mapping[str, Any]) -> str:
    """Human-readable summary of :func:`run_sweep`'s result."""
    lines = [trials_markdown(outcome["table"]), ""]
    if outcome["best_params"] is None:
        lines.append("No trial finished: see the error column and the trial logs.")
    else:
        lines.append(f"Best parameters: {outcome['best_params']}")
        lines.append(f"Best validation score: {outcome['best_valid_score']:.6g}")
    if outcome["test_result"]:
        shown = {k: v for k, v in outcome["test_result"].items() if "[" not in k}
        lines.append(f"Test result of the best trial: {shown}")
    lines.append(f"Experiment folder: {outcome['experiment_dir']}")
    for key in ("trials_csv", "trials_md", "best_config", "plot"):
        if outcome[key] is not None:
            lines.append(f"  {key}: {outcome[key]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recbole_faerec.tune``: the flags of ``run_recbole_faerec.py``, ``--tune``
    required; returns the process exit code."""
    from recbole_faerec.cli import build_parser

    parser = build_parser()
    parser.prog = "python -m recbole_faerec.tune"
    args, extra = parser.parse_known_args(argv)
    if not args.tune:
        parser.error("--tune SPACE_YAML is required")
    return cli_sweep(args, extra)
