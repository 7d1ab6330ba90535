"""Which label-free criterion should end UGACH's training? Its checkpoints scored every epoch by
several candidate criteria and by the test MAP they would give, on a calibrated stand-in.

UGACH is unsupervised, so its model selection may not look at labels. Under ``quick`` it stops when
the held-out pairs' reciprocal rank of their own pair under 64-bit Hamming ranking
(``val_pair_mrr``) has not improved for 1,800 steps; at VEGAS size that criterion is flat and noisy
(.044–.054) and on seed 0 it picked a checkpoint at 480 steps (test MAP .855) while training on to
11,520 steps reached .904. This benchmark trains UGACH for ``--steps`` steps with no early stop and,
at every epoch, records:

- ``pair_mrr_hamming``: the current criterion (the fitted model's own ``val_pair_mrr``);
- ``pair_mrr_real``: the same pairs ranked by cosine on the real-valued relaxation 2σ − 1 (no ties);
- ``manifold_map_hamming``: MAP of the held-out pairs where a query's relevant items are its own
  pair and the pairs of its ``n_neighbors`` nearest same-modality held-out items: the manifold
  pairs UGACH trains on (paper Sec. 3.2), drawn from held-out data;
- the test MAP of that checkpoint, by Hamming (the ``ugach`` row) and by cosine (``ugach_real``).

Then, for each criterion, it replays the ``quick`` rule (best so far, stop after the patience, at the
latest at the cap) on the recorded scores and reports the test MAP of the checkpoint the rule would
keep, next to the last checkpoint at the cap. The held-out pairs are those UGACH's own fit carves
(``split_and_scale`` with the model's seed and fraction), so the replayed rule sees what the model saw.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/bench_ugach_criterion.py \\
        --standin vegas --seeds 0 1 2 --steps 10000 --out benchmarks/results/ugach_criterion_vegas.tsv

Writes ``--out`` (one row per seed and epoch) and ``*_rules.tsv`` / ``*_rules.md`` beside it (one row
per seed, criterion and rule).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_learning_curves import write_rows
from machine_info import load_average, machine_description

import avcmr.methods.ugach as ugach_module
from avcmr.data.calibrated_standin import PRESETS, calibrated_pairs
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.base import hamming_similarity
from avcmr.methods.budgets import (
    QUICK_CAP_STEPS,
    QUICK_PATIENCE_STEPS,
    step_schedule,
    steps_per_epoch,
)
from avcmr.methods.model_selection import BestEpoch, split_and_scale, validation_map
from avcmr.methods.registry import make_method

CRITERIA = ("pair_mrr_hamming", "pair_mrr_real", "manifold_map_hamming")
EPOCH_COLUMNS = ("seed", "epoch", "steps", *CRITERIA, "test_map_hamming", "test_map_real", "seconds")
RULE_COLUMNS = ("seed", "criterion", "rule", "kept_epoch", "kept_steps", "stopped_steps", "test_map_hamming",
                "test_map_real")  # fmt: skip


def average_precision_rows(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean over rows of the average precision of ranking each row's items by score (ties broken by
    index, as a stable sort), ``relevant`` the boolean matrix of relevant items."""
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1).astype(np.float64)
    ranks = np.arange(1, scores.shape[1] + 1, dtype=np.float64)
    precision_at_hits = (np.cumsum(hits, axis=1) / ranks) * hits
    return float((precision_at_hits.sum(axis=1) / np.maximum(hits.sum(axis=1), 1)).mean())


def manifold_relevance(features: np.ndarray, n_neighbors: int, pca_dims: int | None) -> np.ndarray:
    """n × n: item j is relevant to query i when j = i or j is one of i's nearest same-modality items
    (UGACH's own kNN graph search, on the held-out items)."""
    neighbours = ugach_module.knn_graph(features, n_neighbors, pca_dims, torch.device("cpu"))
    relevant = np.eye(len(features), dtype=bool)
    relevant[np.arange(len(features))[:, None], neighbours] = True
    return relevant


def test_maps(model, test: dict) -> tuple[float, float]:
    """(Hamming, cosine-on-relaxation) test MAP, each the mean of a→v and v→a."""
    results = []
    for scores in (model.similarity(test["audio"], test["visual"]),
                   model.real_similarity(test["audio"], test["visual"])):
        per_query = evaluate_scores(scores, test["labels"], test["labels"])
        results.append(float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2))
    return results[0], results[1]


def record_epochs(seed: int, data: dict, steps: int) -> list[dict]:
    """Train UGACH for ``steps`` steps (no early stop) and score every epoch's checkpoint."""
    train, test = data["train"], data["test"]
    n_train = len(train["labels"])
    defaults = make_method("ugach", {}).get_params()
    # holdout_best: the held-out pairs and the per-epoch validation these scores hook into (with
    # no patience it trains every step; fixed_epochs, the default, holds nothing out).
    model = make_method("ugach", {**step_schedule("ugach", defaults, n_train, steps, None), "device": "cpu",
                                  "selection": "holdout_best"}, random_state=seed)
    per_epoch = steps_per_epoch("ugach", model.get_params(), n_train)
    # The held-out pairs of the model's own fit (same seed, fraction and scaling).
    _, held_out, audio_scaler, visual_scaler = split_and_scale(
        train["audio"], train["visual"], None, model.validation_fraction, seed, model.standardize)
    held_audio = audio_scaler.transform(train["audio"][held_out])
    held_visual = visual_scaler.transform(train["visual"][held_out])
    relevance = {"a2v": manifold_relevance(held_audio, model.n_neighbors, model.graph_pca_dims),
                 "v2a": manifold_relevance(held_visual, model.n_neighbors, model.graph_pca_dims)}
    rows: list[dict] = []
    started = time.perf_counter()

    class ScoredBestEpoch(BestEpoch):  # scores each checkpoint as UGACH validates it
        def update(self, epoch: int, score: float) -> bool:
            raw_audio, raw_visual = train["audio"][held_out], train["visual"][held_out]
            # The model's own code and relaxation paths (they scale the raw features themselves).
            codes = model._codes("audio", raw_audio), model._codes("visual", raw_visual)
            real = model._real("audio", raw_audio), model._real("visual", raw_visual)
            hamming = hamming_similarity(*codes)
            test_hamming, test_real = test_maps(model, test)
            rows.append({
                "seed": seed, "epoch": epoch, "steps": epoch * per_epoch,
                "pair_mrr_hamming": round(score, 5),
                "pair_mrr_real": round(validation_map(*real, np.arange(len(held_out)), kind="cosine"), 5),
                "manifold_map_hamming": round(0.5 * (average_precision_rows(hamming, relevance["a2v"])
                                                     + average_precision_rows(hamming.T, relevance["v2a"])), 5),
                "test_map_hamming": round(test_hamming, 5), "test_map_real": round(test_real, 5),
                "seconds": round(time.perf_counter() - started, 1),
            })  # fmt: skip
            print("\t".join(str(rows[-1][column]) for column in EPOCH_COLUMNS), flush=True)
            return super().update(epoch, score)

    original = ugach_module.BestEpoch
    ugach_module.BestEpoch = ScoredBestEpoch
    try:
        model.fit(train["audio"], train["visual"], train["labels"])
    finally:
        ugach_module.BestEpoch = original
    return rows


def replay(rows: list[dict], criterion: str | None, patience_steps: int | None, cap_steps: int) -> dict:
    """The checkpoint the ``quick`` rule keeps when ``criterion`` scores the epochs (None: the last one
    at the cap), and where the rule stopped."""
    per_epoch = rows[0]["steps"] // rows[0]["epoch"]
    cap_epoch = max(1, math.ceil(cap_steps / per_epoch))
    patience = None if patience_steps is None else max(1, math.ceil(patience_steps / per_epoch))
    best, stopped = None, None
    for row in rows:
        if row["epoch"] > cap_epoch:
            break
        stopped = row
        if criterion is None:
            best = row
            continue
        if best is None or row[criterion] > best[criterion]:  # the first best, as BestEpoch
            best = row
        if patience is not None and row["epoch"] - best["epoch"] >= patience:
            break
    return {"kept_epoch": best["epoch"], "kept_steps": best["steps"], "stopped_steps": stopped["steps"],
            "test_map_hamming": best["test_map_hamming"], "test_map_real": best["test_map_real"]}


def rules_markdown(rule_rows: list[dict], header: str) -> str:
    lines = [f"**{header}**", "", "| criterion | rule | seeds | test MAP (Hamming) per seed | mean | kept at steps |",
             "|---|---|---:|---|---:|---|"]  # fmt: skip
    for key in dict.fromkeys((row["criterion"], row["rule"]) for row in rule_rows):
        chosen = [row for row in rule_rows if (row["criterion"], row["rule"]) == key]
        maps = [float(row["test_map_hamming"]) for row in chosen]
        kept = " / ".join(f"{int(row['kept_steps']):,}" for row in chosen)
        lines.append(f"| {key[0]} | {key[1]} | {len(chosen)} | {' / '.join(f'{m:.3f}' for m in maps)} | "
                     f"{np.mean(maps):.3f} | {kept} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standin", choices=sorted(PRESETS), default="vegas")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000, help="steps of every run (no early stop)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = calibrated_pairs(args.standin, random_state=0)
    machine = machine_description()
    header = (f"UGACH checkpoints, calibrated {args.standin} stand-in; {args.steps} steps, no early stop; "
              f"seeds {' '.join(map(str, args.seeds))}; {args.threads} thread(s); {machine}")
    print("#", header, flush=True)
    print("\t".join(EPOCH_COLUMNS), flush=True)
    epoch_rows, rule_rows = [], []
    cap, patience = QUICK_CAP_STEPS["ugach"], QUICK_PATIENCE_STEPS["ugach"]
    rules = [(criterion, f"quick (patience {patience:,}, cap {cap:,})", patience, cap) for criterion in CRITERIA]
    rules += [(criterion, f"best up to the cap ({cap:,})", None, cap) for criterion in CRITERIA]
    rules += [(None, f"last at the cap ({cap:,})", None, cap), (None, f"last at {args.steps:,}", None, args.steps)]
    for seed in args.seeds:
        rows = record_epochs(seed, data, args.steps)
        epoch_rows += rows
        write_rows(args.out, EPOCH_COLUMNS, epoch_rows, f"{header}; load {load_average()}")
        for criterion, rule, rule_patience, rule_cap in rules:
            rule_rows.append({"seed": seed, "criterion": criterion or "none", "rule": rule,
                              **replay(rows, criterion, rule_patience, rule_cap)})
        rules_path = args.out.with_name(args.out.stem + "_rules.tsv")
        write_rows(rules_path, RULE_COLUMNS, rule_rows, header)
        rules_path.with_suffix(".md").write_text(rules_markdown(rule_rows, header))
    print(rules_markdown(rule_rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
