"""Each method's training epoch and full-sort evaluation against the bare backbone's, in one run.

    python benchmarks/methods.py [--dataset amazon-beauty] [--backbone SASRec] [--repeats 2]
        [--data-path DIR] [--methods llminit,llmesr,faerec] [--key=value ...]

Builds the bare backbone and every method around it with RecBole's own loaders on identical
settings (the dataset's protocol, text prior off), interleaves their training epochs and
validation evaluations (``--repeats`` rounds after an uncounted warm-up) and prints the medians,
then one line per method: ``<method>_train_epoch_ratio=<method/bare> <method>_eval_ratio=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from overhead import Setup, interleave

from recbole_faerec.io import parse_overrides
from recbole_faerec.model.registry import METHODS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--backbone", default="SASRec")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--methods", default="llminit,llmesr,faerec")
    args, extra = parser.parse_known_args(argv)
    common = {"text_prior": False, "show_progress": False, **parse_overrides(extra)}
    if args.data_path:
        common["data_path"] = args.data_path
    methods = ["bare", *(m for m in args.methods.split(",") if m != "bare")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: {unknown} are not methods; choose from {', '.join(METHODS)}")
    setups = {m: Setup(args.backbone, args.dataset, common, False, m) for m in methods}
    tasks = {}
    for method, setup in setups.items():
        tasks[f"{method} train"] = setup.train_epoch
        tasks[f"{method} eval"] = setup.evaluate
    times = {name: statistics.median(t) for name, t in interleave(tasks, args.repeats).items()}
    for name, seconds in times.items():
        print(f"{name}: {seconds:.2f} s")
    for method in methods[1:]:
        train = times[f"{method} train"] / times["bare train"]
        evaluation = times[f"{method} eval"] / times["bare eval"]
        print(f"{method}_train_epoch_ratio={train:.2f} {method}_eval_ratio={evaluation:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
