"""Training and evaluation stages (rules of ``train.smk``): fit a method on the training pairs of
``features.parquet``, rank the test set both ways, write per-query AP (and P@K, test embeddings,
the fitted model). torch and scikit-learn are imported by the methods that use them.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.parquet import read_table, vector_column, vectors_from_column, write_table

log = logging.getLogger(__name__)


def load_feature_arrays(features_path):
    """(audio, visual, label codes, clip ids, label names) per split from ``features.parquet``."""
    table = read_table(features_path)
    split = np.asarray(table["split"].to_pylist(), dtype=object)
    labels = np.asarray(table["label"].to_pylist(), dtype=object)
    names, codes = np.unique(labels, return_inverse=True)
    audio = vectors_from_column(table["audio"])
    visual = vectors_from_column(table["visual"])
    clip_ids = np.asarray(table["clip_id"].to_pylist(), dtype=object)
    return {
        part: {
            "audio": audio[split == part], "visual": visual[split == part], "labels": codes[split == part],
            "label_names": labels[split == part], "clip_ids": clip_ids[split == part],
        }
        for part in ("train", "test")
    }


def fit_and_evaluate_seeds(features_path, method_name: str, params: Mapping, seeds: Sequence[int],
                           outputs: Mapping[str, str | Sequence[str]], provenance,
                           model_context: Mapping | None = None, shared_fits: Sequence[str] = (),
                           seeds_together: str = "auto") -> None:
    """:func:`fit_and_evaluate` for each seed in turn, in this process (one training job of a method
    over its seeds). ``outputs`` maps evaluation, history, precision, embeddings and model to one
    path per seed, in the order of ``seeds`` (a single path for a single seed). The features are
    read once for all seeds. ``shared_fits``: for a variant row, its base row's model file per seed
    (see ``shared_fit`` of :func:`fit_and_evaluate`); empty: fit.

    ``seeds_together``: ``always`` fits the seeds of a method that can (``fit_seeds``, the
    dual-subspace family) in one set of batched networks before evaluating them one by one, each
    seed's fit seconds being the joint fit's divided by the seeds; ``auto`` does so where the
    method trains on a GPU; ``never`` fits them one after the other."""
    per_seed = {key: [paths] if isinstance(paths, str) else list(paths) for key, paths in outputs.items()}
    for key, paths in per_seed.items():
        if len(paths) != len(seeds):
            raise ValueError(f"{len(paths)} {key} outputs for {len(seeds)} seeds")
    shared_fits = [shared_fits] if isinstance(shared_fits, str) else list(shared_fits)
    if shared_fits and len(shared_fits) != len(seeds):
        raise ValueError(f"{len(shared_fits)} shared fits for {len(seeds)} seeds")
    data = load_feature_arrays(features_path)
    prefits = [] if shared_fits else _fit_seeds_together(method_name, params, seeds, data, seeds_together)
    for index, seed in enumerate(seeds):
        fit_and_evaluate(features_path, method_name, params, int(seed),
                         eval_out=per_seed["evaluation"][index], history_out=per_seed["history"][index],
                         provenance=provenance, precision_out=per_seed["precision"][index],
                         embeddings_out=per_seed["embeddings"][index], model_out=per_seed["model"][index],
                         model_context=model_context, data=data,
                         shared_fit=shared_fits[index] if shared_fits else None,
                         prefit=prefits[index] if prefits else None)
        gc.collect()  # the next seed's fit starts from the memory one fit needs (mem_mb declares one)


SEEDS_TOGETHER = ("auto", "always", "never")


def _fit_seeds_together(method_name: str, params: Mapping, seeds: Sequence[int], data: Mapping,
                        mode: str) -> list[tuple]:  # fmt: skip
    """(fitted model, budget, fit seconds) per seed when the seeds are to be trained together (see
    :func:`fit_and_evaluate_seeds`), else []."""
    from avcmr.methods.budgets import budgeted_method
    from avcmr.methods.torch_utils import pick_device

    if mode not in SEEDS_TOGETHER:
        raise ValueError(f"seeds_together must be one of {', '.join(SEEDS_TOGETHER)}, got {mode!r}")
    if mode == "never" or len(seeds) < 2:
        return []
    train = data["train"]
    first, _ = budgeted_method(method_name, params, len(train["labels"]), random_state=int(seeds[0]))
    fit_seeds = getattr(type(first), "fit_seeds", None)
    if fit_seeds is None or (mode == "auto" and pick_device(getattr(first, "device", "cpu")).type != "cuda"):
        return []
    built = [budgeted_method(method_name, params, len(train["labels"]), random_state=int(seed)) for seed in seeds]
    log.info("fitting %d seeds of %r together on %d pairs", len(seeds), method_name, len(train["labels"]))
    started = time.perf_counter()
    fit_seeds([model for model, _ in built], train["audio"], train["visual"], train["labels"])
    share = (time.perf_counter() - started) / len(seeds)
    return [(model, budget, share) for model, budget in built]


def fit_and_evaluate(features_path, method_name: str, params: Mapping, seed: int, eval_out, history_out,
                     provenance, precision_out=None, embeddings_out=None, model_out=None,
                     model_context: Mapping | None = None, data: Mapping | None = None,
                     shared_fit=None, prefit: tuple | None = None) -> None:
    """Fit one (method, seed) on the training pairs, rank the test set both ways, store per-query AP.

    ``shared_fit``: for a variant row (``ugach_real``, ``agah_real``), the model file its base row
    wrote for this seed with the same parameters: that fitted model is evaluated the variant's way
    instead of training the same networks again; its fit time and training history are reported.
    ``prefit``: (model, budget, fit seconds) of a fit already made for this seed (seeds trained
    together); the row records ``seeds_together`` (how many).

    Optional outputs (each written when its path is given):
    - ``precision_out``: per-query P@K both ways, K = 10, 20, …, 1000 clipped to the number of
      candidates (duplicates after clipping dropped), long format ``direction, query_clip_id,
      query_label, k, precision`` (Fig. 4 and any later test read it instead of re-ranking);
    - ``embeddings_out``: the test clips' learned audio and visual embeddings (Fig. 8); an empty
      table with ``has_embeddings = false`` in its metadata for methods without one (``random``);
    - ``model_out``: the fitted model with its visual PCA and feature settings
      (:func:`avcmr.models_io.save_model`; ``model_context`` gives ``dataset, pca_path, features,
      backbone_weights``), which ``avcmr query`` loads.
    """
    from avcmr.evaluation.metrics import DEFAULT_SCOPES, evaluate_source, method_scores
    from avcmr.methods.budgets import budgeted_method, training_summary

    data = load_feature_arrays(features_path) if data is None else data  # given: already read
    train, test = data["train"], data["test"]
    if prefit is not None:
        method, budget, fit_seconds = prefit
        shared_with = None
    else:
        method, budget = budgeted_method(method_name, params, len(train["labels"]), random_state=seed)
    log.info("training budget %s: %s", budget.label, budget.params)
    if prefit is not None:
        log.info("%r was fitted with its other seeds (%.1f s its share)", method, fit_seconds)
    elif shared_fit is None:
        log.info("fitting %r on %d pairs", method, len(train["labels"]))
        started = time.perf_counter()
        method.fit(train["audio"], train["visual"], train["labels"])
        fit_seconds = time.perf_counter() - started
        shared_with = None
    else:
        method, fit_seconds, shared_with = _shared_fit(shared_fit, method, method_name, seed)
    started = time.perf_counter()
    # Scores come a block of queries at a time from the test embeddings (no n_test² matrix);
    # P@K comes from the same two rankings as AP (ranking is the whole cost of evaluation).
    scores = method_scores(method, test["audio"], test["visual"])
    scopes = np.unique(np.minimum(np.asarray(DEFAULT_SCOPES), scores.shape[1])) if precision_out is not None else None
    per_query = evaluate_source(scores, test["labels"], test["labels"], seed, scopes)
    del scores
    eval_seconds = time.perf_counter() - started
    device = str(getattr(method, "device_", "cpu"))
    log.info("%s seed %d: MAP a→v %.4f, v→a %.4f (fit %.1f s on %s)", method_name, seed,
             per_query["a2v"].mean(), per_query["v2a"].mean(), fit_seconds, device)
    rows = {
        "direction": ["a2v"] * len(per_query["a2v"]) + ["v2a"] * len(per_query["v2a"]),
        "query_clip_id": list(test["clip_ids"]) * 2,
        "query_label": list(test["label_names"]) * 2,
        "ap": np.concatenate([per_query["a2v"], per_query["v2a"]]),
    }
    summary = {
        "method": method_name, "seed": seed, "fit_seconds": fit_seconds, "eval_seconds": eval_seconds,
        "device": device, "n_train": len(train["labels"]), "n_test": len(test["labels"]),
        "n_parameters": int(method.n_parameters()), "params": {k: repr(v) for k, v in method.get_params().items()},
        **training_summary(method_name, method, budget, method.get_params(), len(train["labels"])),
        "simplifications": getattr(method, "simplifications", ""),
        **({"fit_shared_with": shared_with} if shared_with else {}),
        **({"seeds_together": True} if prefit is not None else {}),
    }
    write_table(pa.table(rows, schema=schemas.PER_QUERY_AP), eval_out, schemas.PER_QUERY_AP, provenance,
                summary=summary)
    history = pd.DataFrame(getattr(method, "history_", []) or {"epoch": []})
    write_table(pa.Table.from_pandas(history, preserve_index=False), history_out, None, provenance,
                method=method_name, seed=seed)
    if precision_out is not None:
        n_candidates = len(test["labels"])
        parts = []
        for direction in ("a2v", "v2a"):
            precision = per_query[f"{direction}_precision"]
            parts.append(pd.DataFrame({
                "direction": direction,
                "query_clip_id": np.repeat(test["clip_ids"], len(scopes)),
                "query_label": np.repeat(test["label_names"], len(scopes)),
                "k": np.tile(scopes, len(test["labels"])).astype(np.int32),
                "precision": precision.reshape(-1),
            }))
        table = pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False)
        write_table(table, precision_out, schemas.PER_QUERY_PRECISION, provenance, method=method_name,
                    seed=seed, n_candidates=n_candidates, nominal_scopes=[int(k) for k in DEFAULT_SCOPES])
    if embeddings_out is not None:
        _write_test_embeddings(method, test, embeddings_out, provenance, method_name, seed)
    if model_out is not None:
        from avcmr.models_io import save_model

        context = dict(model_context or {})
        save_model(model_out, method, method_name=method_name, seed=seed, dataset=context.get("dataset", ""),
                   class_names=np.unique(np.concatenate([train["label_names"], test["label_names"]])),
                   pca_path=context["pca_path"], feature_settings=context.get("features", {}),
                   backbone_weights=context.get("backbone_weights", {}), provenance=provenance,
                   feature_source=context.get("feature_source", "extracted"),
                   extra={"summary": {k: v for k, v in summary.items() if k != "params"}})


def _shared_fit(path, unfitted, method_name: str, seed: int):
    """(fitted variant, its training's fit seconds, base row) from the base row's model file,
    checked to be the training this row would run: same seed and the same parameters."""
    from avcmr.methods.registry import VARIANT_BASES, as_variant
    from avcmr.models_io import load_model

    saved = load_model(path)
    base = VARIANT_BASES.get(method_name)
    if saved.header["method"] != base or int(saved.header["seed"]) != seed:
        raise ValueError(f"{path}: holds {saved.header['method']} seed {saved.header['seed']}, not the "
                         f"{base} seed {seed} fit that {method_name} shares")
    method = as_variant(saved.method, method_name)
    ours, theirs = ({k: repr(v) for k, v in m.get_params().items()} for m in (unfitted, method))
    if ours != theirs:
        differing = sorted(k for k in ours if ours[k] != theirs.get(k))
        raise ValueError(f"{path}: {base} seed {seed} was trained with other parameters than {method_name} "
                         f"asks for ({', '.join(differing)}); fit it on its own")
    fit_seconds = float(saved.header["summary"]["fit_seconds"])
    log.info("%s seed %d: evaluating the %s fit of the same seed and parameters (%s; trained in %.1f s)",
             method_name, seed, base, path, fit_seconds)
    return method, fit_seconds, base


def _write_test_embeddings(method, test: Mapping, out, provenance, method_name: str, seed: int) -> None:
    try:
        audio = np.asarray(method.embed_audio(test["audio"]), dtype=np.float32)
        visual = np.asarray(method.embed_visual(test["visual"]), dtype=np.float32)
        has_embeddings = True
    except NotImplementedError:
        audio = visual = np.zeros((0, 1), dtype=np.float32)
        has_embeddings = False
    n_rows = len(audio)
    table = pa.table({
        "clip_id": list(test["clip_ids"][:n_rows]), "label": list(test["label_names"][:n_rows]),
        "audio": vector_column(audio), "visual": vector_column(visual),
    })
    write_table(table, out, schemas.embeddings(audio.shape[1], visual.shape[1]), provenance,
                method=method_name, seed=seed, has_embeddings=has_embeddings,
                similarity_kind=getattr(method, "similarity_kind", "cosine"))
