"""The official LLM-ESR code (github liuqidong07/LLM-ESR) on a plugin dataset, under the plugin's
protocol, to compare with ``--method=llmesr``.

    python benchmarks/llmesr_official.py --official PATH/TO/LLM-ESR [--dataset amazon-beauty]
        [--data-path dataset] [--out runs/llmesr-official] [--max-len 50] [--seed 42]
        [--epochs 200] [--cpu] [--smoke]

Nothing of the official code is copied or changed: it is imported from ``--official`` (a checkout
of its repository) and runs with its own model, data, training epoch, optimiser and early
stopping, with the settings of its ``experiments/beauty.bash``. This script only

* writes its input files (``data/<name>/handled/``) from the plugin's dataset: every user's
  items in the plugin's order (the plugin's internal ids, so the splits are the plugin's
  leave-one-out), the plugin's LLM item table (``itm_emb_np.pkl``), its PCA to the hidden size
  (``pca64_itm_emb_np.pkl``, the plugin's reduction) and each user's similar users from the
  plugin's user embeddings (``sim_user_100.pkl``, the first ``llmesr_similar_users``);
* replaces its evaluation (100 sampled negatives) with the plugin's: full ranking with the
  user's earlier items removed, H@10, N@10 and tail H@10 (head: the top ``head_ratio`` of items by
  training popularity);
* turns off ``torch.autograd.set_detect_anomaly``, which its ``main.py`` switches on (a debugging
  aid: the same values, several times slower);
* runs its epoch loop (train one epoch, validate, its early stopping; at the end, test at the
  best epoch) with a resume point after each epoch (``<out>/resume.pth``: the model, optimiser,
  scheduler, early-stopping counters, random states and the validation so far), so that a run
  killed at any point goes on where it stopped when the same command is run again. ``--epochs``
  may change between runs: one at or below the epochs already trained tests the best epoch so
  far (the figures of a run that has not stopped yet; give it another ``--out`` holding a copy
  of ``resume.pth`` and ``saved/`` while the run itself goes on).

Writes ``<out>/results.json`` (validation at every epoch, test at the best one) and prints the test
figures. ``--smoke`` keeps the first 300 users only, to check the set-up (with ``--epochs 2``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import torch

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset
from recbole_faerec.data.similar_users import training_histories
from recbole_faerec.io import atomic_open, write_json
from recbole_faerec.model.fusion import pca_initialisation
from recbole_faerec.popularity import head_mask

#: The official dataset name the files are written under (its ``--dataset`` has fixed choices).
OFFICIAL_NAME = "beauty"
#: ``experiments/beauty.bash`` of the official code, for ``llmesr_sasrec``.
OFFICIAL_ARGS = [
    "--model_name=llmesr_sasrec",
    "--hidden_size=64",
    "--train_batch_size=128",
    "--patience=20",
    "--freeze",
    "--user_sim_func=kd",
    "--alpha=0.1",
    "--use_cross_att",
    "--ts_user=9",
    "--ts_item=4",
]
HIDDEN_SIZE = 64
K = 10
#: The early-stopping fields of the official ``EarlyStoppingNew`` that a resume restores.
STOPPER_FIELDS = ("best_score", "best_epoch", "counter", "early_stop")
#: The official argument a resume may change: the epoch budget.
EPOCH_BUDGET = "--num_train_epochs="


def export(dataset_name: str, data_path: str, out: Path, smoke: bool) -> dict:
    """Write the official input files from the plugin's dataset; returns what evaluation needs."""
    config = build_config(
        "SASRec",
        dataset_name,
        config_dict={"data_path": data_path, "train_mode": "prefix", "show_progress": True},
        method="llmesr",
    )
    dataset = create_dataset(config)
    train, valid, test = dataset.build()
    histories = training_histories(train)
    valid_target = dict(
        zip(
            *(valid.inter_feat[f].tolist() for f in (valid.uid_field, valid.iid_field)), strict=True
        )
    )
    test_target = dict(
        zip(*(test.inter_feat[f].tolist() for f in (test.uid_field, test.iid_field)), strict=True)
    )
    users = [u for u in range(1, dataset.user_num) if u in valid_target and u in test_target]
    if smoke:
        users = users[:300]
    index = {user: row for row, user in enumerate(users)}
    handled = out / "data" / OFFICIAL_NAME / "handled"
    handled.mkdir(parents=True, exist_ok=True)
    lines = []
    for user in users:
        for item in [*histories[user], valid_target[user], test_target[user]]:
            lines.append(f"{index[user] + 1} {item}")
    (handled / "inter.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    llm_table = torch.as_tensor(dataset.llm_embeddings, dtype=torch.float32)
    with open(handled / "itm_emb_np.pkl", "wb") as file:
        pickle.dump(llm_table[1:].numpy(), file)
    with open(handled / "pca64_itm_emb_np.pkl", "wb") as file:
        pickle.dump(pca_initialisation(llm_table, HIDDEN_SIZE)[1:].numpy(), file)
    neighbours = train.similar_users
    similar = []
    for user in users:  # the official code indexes users by row and keeps only known ones
        kept = [index[n] for n in neighbours[user] if n in index] or [index[user]]
        similar.append(kept + [kept[0]] * (neighbours.shape[1] - len(kept)))
    with open(handled / "sim_user_100.pkl", "wb") as file:
        pickle.dump(np.asarray(similar, dtype=np.int64), file)
    popularity = train.train_item_popularity
    return {
        "item_num": dataset.item_num - 1,
        "head": head_mask(popularity, config["head_ratio"]),
        "earlier": {
            False: [set(histories[u]) for u in users],
            True: [{*histories[u], valid_target[u]} for u in users],
        },
        "similar_users": int(neighbours.shape[1]),
        "users": len(users),
    }


def full_ranking_trainer(base: type, data: dict, record: dict) -> type:
    """The official trainer with the plugin's evaluation in place of its sampled one."""

    class FullRankingTrainer(base):
        def eval(self, epoch: int = 0, test: bool = False) -> dict:
            if test:
                state = torch.load(os.path.join(self.args.output_dir, "pytorch_model.bin"))
                self.model.load_state_dict(state["state_dict"])
            loader = self.test_loader if test else self.valid_loader
            self.model.eval()
            items = torch.arange(1, data["item_num"] + 1, device=self.device)
            ranks, targets, row = [], [], 0
            with torch.no_grad():
                table = self.model._get_embedding(items)
                for batch in loader:
                    inputs = self._prepare_eval_inputs(tuple(t.to(self.device) for t in batch))
                    user = self.model.log2feats(inputs["seq"], inputs["positions"])[:, -1, :]
                    scores = user @ table.T
                    for offset in range(scores.size(0)):
                        seen = [i - 1 for i in data["earlier"][test][row + offset]]
                        scores[offset, seen] = -torch.inf
                    target = inputs["pos"].long()
                    target_score = scores.gather(1, (target - 1).unsqueeze(1))
                    ranks.append((scores > target_score).sum(dim=1).cpu())
                    targets.append(target.cpu())
                    row += scores.size(0)
            rank, target = torch.cat(ranks).numpy(), torch.cat(targets).numpy()
            hit = rank < K
            tail = ~data["head"][target]
            result = {
                "NDCG@10": float(np.where(hit, 1 / np.log2(rank + 2), 0).mean()),
                "HR@10": float(hit.mean()),
                "TailHR@10": float(hit[tail].mean()),
            }
            record["test" if test else "valid"].append(
                result if test else {"epoch": epoch, **result}
            )
            self.logger.info(f"{'test' if test else f'epoch {epoch} valid'}: {result}")
            return result

    return FullRankingTrainer


def resumable_trainer(base: type, resume_file: Path, arguments: list[str], record: dict) -> type:
    """The official trainer whose epoch loop saves a resume point after every epoch.

    The loop is the official ``Trainer.train``'s (one epoch of its training, its validation, its
    early stopping on ``watch_metric``; at the end its test of the best checkpoint); a resume
    point made with other ``arguments`` (the epoch budget aside) is refused.
    """
    same_run = _without_epoch_budget(arguments)

    class ResumableTrainer(base):
        def train(self) -> tuple[dict, int]:
            start = self._resume()
            for epoch in range(start, int(self.args.num_train_epochs)):
                if self.stopper.early_stop:
                    break
                self._train_one_epoch(epoch)
                metrics = self.eval(epoch=epoch)
                self.stopper(
                    metrics[self.watch_metric], epoch, self.model, self.optimizer, self.scheduler
                )
                self._save_resume_point(epoch)
            return self.eval(test=True), self.stopper.best_epoch

        def _save_resume_point(self, epoch: int) -> None:
            state = {
                "arguments": arguments,
                "epoch": epoch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "stopper": {field: getattr(self.stopper, field) for field in STOPPER_FIELDS},
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy_rng": np.random.get_state(),
                "python_rng": random.getstate(),
                "valid": record["valid"],
            }
            with atomic_open(resume_file, "wb") as file:
                torch.save(state, file)

        def _resume(self) -> int:
            """Restore the last resume point, if any; returns the first epoch to train."""
            if not resume_file.is_file():
                return 0
            state = torch.load(resume_file, map_location=self.device, weights_only=False)
            if _without_epoch_budget(state["arguments"]) != same_run:
                raise SystemExit(
                    f"error: --out: {resume_file} was made with other arguments "
                    f"({' '.join(state['arguments'])}); fix: another --out, or delete that file"
                )
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            for field, value in state["stopper"].items():
                setattr(self.stopper, field, value)
            torch.set_rng_state(state["torch_rng"].cpu())
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            np.random.set_state(state["numpy_rng"])
            random.setstate(state["python_rng"])
            record["valid"][:] = state["valid"]
            self.logger.info(f"resumed after epoch {state['epoch']} from {resume_file}")
            return state["epoch"] + 1

    return ResumableTrainer


def _without_epoch_budget(arguments: list[str]) -> list[str]:
    return [argument for argument in arguments if not argument.startswith(EPOCH_BUDGET)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="a checkout of liuqidong07/LLM-ESR")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data-path", default="dataset")
    parser.add_argument("--out", default="runs/llmesr-official")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    official = Path(args.official).resolve()
    if not (official / "main.py").is_file():
        parser.error(
            f"--official: {official} has no main.py; fix: a checkout of liuqidong07/LLM-ESR"
        )
    out = Path(args.out).resolve()
    data = export(args.dataset, str(Path(args.data_path).resolve()), out, args.smoke)
    record: dict = {"valid": [], "test": []}
    sys.argv = [
        "main.py",
        *OFFICIAL_ARGS,
        f"--dataset={OFFICIAL_NAME}",
        f"--max_len={args.max_len}",
        f"--num_train_epochs={args.epochs}",
        f"--seed={args.seed}",
        f"--sim_user_num={data['similar_users']}",
        "--check_path=",
        *(["--no_cuda"] if args.cpu else []),
    ]
    os.chdir(out)
    sys.path.insert(0, str(official))
    import main as official_main  # parses sys.argv and seeds at import

    torch.autograd.set_detect_anomaly(False)
    trainer = full_ranking_trainer(official_main.SeqTrainer, data, record)
    run = [  # what the resume point must share (not the device)
        f"--plugin-dataset={args.dataset}",
        *(["--smoke"] if args.smoke else []),
        *(argument for argument in sys.argv[1:] if argument != "--no_cuda"),
    ]
    official_main.SeqTrainer = resumable_trainer(trainer, out / "resume.pth", run, record)
    official_main.main()
    best = max(record["valid"], key=lambda r: r["NDCG@10"])
    summary = {
        "official": str(official),
        "dataset": args.dataset,
        "arguments": sys.argv[1:],
        "users": data["users"],
        "best_valid": best,
        "test": record["test"][-1],
        "valid": record["valid"],
    }
    write_json(out / "results.json", summary)
    print(json.dumps({"best_valid": best, "test": summary["test"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
