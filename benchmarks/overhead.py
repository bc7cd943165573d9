"""FAERec's cost over its backbone, sequence length and batching, measured in one process.

    python benchmarks/overhead.py [--dataset amazon-beauty] [--backbone SASRec] [--repeats 3]
        [--data-path DIR] [--prefix-repeats 1] [--length-repeats 1] [--profile]
        [--flop-batches 20] [--key=value ...]

Builds, with RecBole's own data loaders, the bare backbone and FAERec around it on identical
settings (``train_mode: all_positions`` unless overridden), then interleaves their training
epochs and full-sort evaluations (``--repeats`` times each, the first round is a warm-up that is
not counted), and times bare prefix-mode epochs against all-position epochs. With
``--length-repeats`` it also times bare training epochs and evaluations at
``MAX_ITEM_LIST_LENGTH`` 20 and 50 (batches of similar length, cut to their longest sequence) and
at 50 with RecBole's random batches (``length_bucket_pool: 0``). Extra ``--key=value`` flags are
config overrides shared by every model. With ``--profile`` one training epoch of each model runs
under the torch profiler first, and the operators that take the most extra self time in FAERec's
epoch are printed with both times. With ``--flop-batches N`` the multiply-adds of a training step
(forward and backward, counted by torch's ``FlopCounterMode`` over the first N batches) of both
models are printed with their ratio, the ceiling the wall-clock ratio cannot beat when both run
their products at the same speed. The text prior (``text_prior``) is timed too: its fit on the
training split (once, after training) and its share of FAERec's full-sort evaluation when it is
on (``text_prior_fit_s=... text_prior_eval_share=...``); choosing its weight costs one validation
evaluation per entry of ``text_prior_weights``. Medians are printed, then the last line
``train_epoch_ratio=<FAERec/bare> eval_ratio=<FAERec/bare>`` (both without the prior).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from recbole_faerec.config import build_config
from recbole_faerec.io import parse_overrides
from recbole_faerec.pipeline import prepare_run
from recbole_faerec.text_prior import fit_text_prior


class Setup:
    """A trainer with its data, ready to time training epochs and full-sort evaluations."""

    def __init__(
        self, backbone: str, dataset: str, config_dict: dict, base: bool, method: str | None = None
    ) -> None:
        config = build_config(backbone, dataset, config_dict=config_dict, base=base, method=method)
        run = prepare_run(config)
        self.train_data, self.valid_data, self.trainer = run.train_data, run.valid_data, run.trainer
        self.trainer.eval_collector.data_collect(self.train_data)
        self.epoch = 0

    def train_epoch(self) -> float:
        self.trainer.model.train()
        start = time.perf_counter()
        self.trainer._train_epoch(self.train_data, self.epoch)
        self.epoch += 1
        return time.perf_counter() - start

    def step_multiply_adds(self, batches: int) -> float:
        """Mean multiply-adds of one training step (loss, forward and backward) over the first
        ``batches`` training batches."""
        model = self.trainer.model
        model.train()
        counts = []
        for _, interaction in zip(range(batches), self.train_data, strict=False):
            with FlopCounterMode(display=False) as counter:
                loss = model.calculate_loss(interaction)
                loss = sum(loss) if isinstance(loss, tuple) else loss
                loss.backward()
            model.zero_grad(set_to_none=True)
            counts.append(counter.get_total_flops() / 2)
        return statistics.mean(counts)

    def evaluate(self) -> float:
        start = time.perf_counter()
        self.trainer.evaluate(self.valid_data, load_best_model=False)
        return time.perf_counter() - start

    def fit_text_prior(self) -> float:
        """Fit the model's text prior on the training split (as the pipeline does after
        training); returns the seconds it took."""
        start = time.perf_counter()
        fit_text_prior(self.trainer.model, self.trainer.config, self.train_data._dataset)
        return time.perf_counter() - start

    def evaluate_with_prior(self, weight: float = 12.0) -> float:
        """A full-sort evaluation with the text prior on at ``weight``."""
        prior = self.trainer.model.text_prior
        prior.weight.fill_(weight)
        try:
            return self.evaluate()
        finally:
            prior.weight.zero_()


def interleave(tasks: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every task once per round, ``repeats`` rounds; the first round is a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for round_ in range(repeats + 1):
        for name, task in tasks.items():
            seconds = task()
            print(f"  round {round_} {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
            if round_ > 0:
                times[name].append(seconds)
    return times


def epoch_op_times(setup: Setup) -> dict[str, float]:
    """Self CPU milliseconds of each operator over one training epoch (torch profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        setup.train_epoch()
    return {event.key: event.self_cpu_time_total / 1000 for event in prof.key_averages()}


def op_time_table(bare: dict[str, float], faerec: dict[str, float], rows: int = 25) -> str:
    """The operators with the most extra self time in FAERec's epoch over the bare one's."""
    names = sorted(set(bare) | set(faerec), key=lambda n: bare.get(n, 0.0) - faerec.get(n, 0.0))
    lines = [f"{'operator':48s} {'bare ms':>9s} {'FAERec ms':>10s} {'extra ms':>9s}"]
    for name in names[:rows]:
        b, f = bare.get(name, 0.0), faerec.get(name, 0.0)
        lines.append(f"{name[:48]:48s} {b:9.1f} {f:10.1f} {f - b:9.1f}")
    b, f = sum(bare.values()), sum(faerec.values())
    lines.append(f"{'all operators':48s} {b:9.1f} {f:10.1f} {f - b:9.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--backbone", default="SASRec")
    parser.add_argument("--data-path", default=str(Path("dataset").resolve()))
    parser.add_argument("--repeats", type=int, default=3, help="counted rounds (after a warm-up)")
    parser.add_argument(
        "--prefix-repeats", type=int, default=1, help="prefix epochs to time (0: skip)"
    )
    parser.add_argument(
        "--length-repeats", type=int, default=1, help="length 20 vs 50 rounds to time (0: skip)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="per-operator times of one epoch of each model first"
    )
    parser.add_argument(
        "--flop-batches", type=int, default=20, help="batches to count step multiply-adds (0: skip)"
    )
    args, extra = parser.parse_known_args()
    overrides = parse_overrides(extra)
    sys.argv = sys.argv[:1]
    common = {
        "data_path": args.data_path,
        "train_mode": "all_positions",
        "show_progress": False,
        "state": "WARNING",
        "text_prior": True,
        **overrides,
    }
    bare = Setup(args.backbone, args.dataset, common, base=True)
    faerec = Setup(args.backbone, args.dataset, common, base=False)
    prior_fit = faerec.fit_text_prior()
    if args.profile:
        print(op_time_table(epoch_op_times(bare), epoch_op_times(faerec)))
    if args.flop_batches > 0:
        bare_macs = bare.step_multiply_adds(args.flop_batches)
        faerec_macs = faerec.step_multiply_adds(args.flop_batches)
        print(f"multiply-adds per training step: bare {bare_macs / 1e9:.2f} G, ", end="")
        print(f"FAERec {faerec_macs / 1e9:.2f} G (mean of {args.flop_batches} batches)")
        print(f"step_flop_ratio={faerec_macs / bare_macs:.2f}")

    times = interleave(
        {
            "bare train": bare.train_epoch,
            "FAERec train": faerec.train_epoch,
            "bare eval": bare.evaluate,
            "FAERec eval": faerec.evaluate,
            "FAERec + text prior eval": faerec.evaluate_with_prior,
        },
        args.repeats,
    )
    if args.prefix_repeats > 0:
        prefix = Setup(args.backbone, args.dataset, {**common, "train_mode": "prefix"}, base=True)
        prefix_times = interleave(
            {"bare prefix train": prefix.train_epoch, "bare all_positions train": bare.train_epoch},
            args.prefix_repeats,
        )
        times.update(prefix_times)
    if args.length_repeats > 0:
        lengths = {
            "len20": {"MAX_ITEM_LIST_LENGTH": 20},
            "len50": {"MAX_ITEM_LIST_LENGTH": 50},
            "len50 random batches": {"MAX_ITEM_LIST_LENGTH": 50, "length_bucket_pool": 0},
        }
        setups = {
            name: Setup(args.backbone, args.dataset, {**common, **keys}, base=True)
            for name, keys in lengths.items()
        }
        tasks = {f"bare {name} train": setup.train_epoch for name, setup in setups.items()}
        tasks.update({f"bare {name} eval": setup.evaluate for name, setup in setups.items()})
        times.update(interleave(tasks, args.length_repeats))
    median = {name: statistics.median(values) for name, values in times.items()}

    mode = common["train_mode"]
    print(f"{args.backbone} on {args.dataset}, {torch.get_num_threads()} torch threads")
    step_dtype = str(faerec.trainer.model.fusion.step_dtype).removeprefix("torch.")
    print(f"FAERec's training-step products in {step_dtype} (step_precision)")
    for name, value in median.items():
        print(f"{name:<26} {value:8.2f} s  (median of {len(times[name])})")
    if args.prefix_repeats > 0:
        print(f"training samples per epoch: prefix {len(prefix.train_data.dataset)}, ", end="")
        print(f"all_positions {len(bare.train_data.dataset)}")
        speedup = median["bare prefix train"] / median["bare all_positions train"]
        print(f"prefix_over_all_positions={speedup:.2f} (bare {args.backbone})")
    if args.length_repeats > 0:
        for name in ("len20", "len50", "len50 random batches"):
            key = name.replace(" ", "_")
            train, evaluate = median[f"bare {name} train"], median[f"bare {name} eval"]
            print(f"epoch_time_{key}={train:.2f} eval_time_{key}={evaluate:.2f}")
    with_prior = median["FAERec + text prior eval"]
    share = (with_prior - median["FAERec eval"]) / with_prior
    print(f"text_prior_fit_s={prior_fit:.1f} text_prior_eval_share={share:.2f}")
    print(f"(FAERec/bare ratios below measured with train_mode={mode})")
    train_ratio = median["FAERec train"] / median["bare train"]
    eval_ratio = median["FAERec eval"] / median["bare eval"]
    print(f"train_epoch_ratio={train_ratio:.2f} eval_ratio={eval_ratio:.2f}")


if __name__ == "__main__":
    main()
