"""Seeds of a dual-subspace variant trained together (``fit_together``: one vmapped forward and
backward over the seeds' stacked weights) against the same seeds fitted one by one."""

from __future__ import annotations

import numpy as np
import pytest

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.methods.dual_subspace import (
    DualSubspace,
    ExplicitImplicitShared,
    ExplicitSpace,
    fit_together,
)

SMALL = {"audio_hidden": (32, 32), "visual_hidden": (32, 64), "batch_size": 100, "epochs": 6, "patience": None,
         "device": "cpu"}  # fmt: skip
SEEDS = (0, 1)
# Batched and single matrix products round differently (float32, summation order); over 18 steps
# that moves the test scores by 6e-7 to 3e-3 relative here. The bound leaves room for other BLAS
# builds while still failing for any seed mix-up (other seeds' scores differ by O(1)).
SCORE_RTOL = 1e-2
# A few held-out items may swap ranks under that rounding.
VAL_MAP_ATOL = 2e-3


@pytest.fixture(scope="module")
def data():
    table = make_synthetic_features(n_clips=400, train_size=320, class_separation=3.0, pair_correlation=0.2,
                                    noise=0.5, random_state=3)  # fmt: skip
    audio, visual, labels, test_audio, test_visual, _ = split_arrays(table)
    return {"audio": audio, "visual": visual, "labels": labels}, {"audio": test_audio, "visual": test_visual}


def relative_difference(left: np.ndarray, right: np.ndarray) -> float:
    return float(np.linalg.norm(left - right) / np.linalg.norm(right))


@pytest.mark.parametrize("variant", [DualSubspace, ExplicitSpace, ExplicitImplicitShared])
def test_seeds_trained_together_equal_seeds_trained_apart(data, variant):
    train, test = data
    apart = [variant(**SMALL, random_state=seed).fit(train["audio"], train["visual"], train["labels"])
             for seed in SEEDS]  # fmt: skip
    together = fit_together([variant(**SMALL, random_state=seed) for seed in SEEDS],
                            train["audio"], train["visual"], train["labels"])  # fmt: skip
    for one, joint in zip(apart, together, strict=True):
        assert joint.n_steps_ == one.n_steps_ > 0
        assert joint.best_epoch_ == one.best_epoch_
        np.testing.assert_array_equal(joint.held_out_rows_, one.held_out_rows_)
        np.testing.assert_allclose([r["val_map"] for r in joint.history_], [r["val_map"] for r in one.history_],
                                   atol=VAL_MAP_ATOL)  # fmt: skip
        np.testing.assert_allclose([r["total"] for r in joint.history_], [r["total"] for r in one.history_], rtol=1e-4)
        # Scores, not embeddings: a fusion component may flip its sign (in both modalities at once).
        assert relative_difference(joint.similarity(test["audio"], test["visual"]),
                                   one.similarity(test["audio"], test["visual"])) < SCORE_RTOL  # fmt: skip
    # The seeds really differ (a shared-weights mix-up would make them equal).
    first, second = (model.similarity(test["audio"], test["visual"]) for model in together[:2])
    assert relative_difference(first, second) > 0.1


def test_an_early_stopped_seed_leaves_the_batch_and_ends_as_its_own_fit(data):
    """With patience, seeds stop at different epochs; each ends where its own fit ends."""
    train, _ = data
    params, seeds = {**SMALL, "epochs": 12, "patience": 2}, (0, 1, 2)
    apart = [DualSubspace(**params, random_state=seed).fit(train["audio"], train["visual"], train["labels"])
             for seed in seeds]  # fmt: skip
    together = fit_together([DualSubspace(**params, random_state=seed) for seed in seeds],
                            train["audio"], train["visual"], train["labels"])  # fmt: skip
    assert len({len(m.history_) for m in apart}) > 1  # the seeds do stop at different epochs
    assert [len(m.history_) for m in together] == [len(m.history_) for m in apart]
    assert [m.best_epoch_ for m in together] == [m.best_epoch_ for m in apart]


def test_fit_together_refuses_models_that_differ_beyond_the_seed(data):
    train, _ = data
    models = [DualSubspace(**SMALL, random_state=0), DualSubspace(**{**SMALL, "alpha": 0.1}, random_state=1)]
    with pytest.raises(ValueError, match="differ only in random_state; these differ: \\['alpha'\\]"):
        fit_together(models, train["audio"], train["visual"], train["labels"])
    with pytest.raises(ValueError, match="one variant"):
        fit_together([DualSubspace(**SMALL), ExplicitSpace(**SMALL)], train["audio"], train["visual"], train["labels"])


# -- the validation step on the device --------------------------------------------------------
def test_validation_map_on_device_equals_sklearn_and_the_host_ranking():
    import torch
    from sklearn.metrics import average_precision_score

    from avcmr.methods.base import cosine_similarity
    from avcmr.methods.model_selection import validation_map, validation_map_on_device

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    audio, visual = rng.standard_normal((60, 5)), rng.standard_normal((60, 5))
    scores = cosine_similarity(audio, visual)  # continuous: no ties, where sklearn's AP is the same
    expected = np.mean([np.mean([average_precision_score(labels == labels[i], row[i]) for i in range(60)])
                        for row in (scores, scores.T)])  # fmt: skip
    got = validation_map_on_device(torch.tensor(audio), torch.tensor(visual), torch.tensor(labels))
    assert got == pytest.approx(expected, abs=1e-12)
    # Ties (repeated and zero rows) broken in index order, as the host's tie_seed=None.
    audio[10:20], visual[30:40], audio[5] = audio[0], visual[1], 0.0
    host = validation_map(audio, visual, labels, tie_seed=None)
    assert validation_map_on_device(torch.tensor(audio), torch.tensor(visual), torch.tensor(labels)) == pytest.approx(
        host, abs=1e-12)


def test_the_models_validation_step_equals_embedding_and_ranking_on_the_host(data):
    import torch

    from avcmr.methods.model_selection import validation_map

    train, _ = data
    model = DualSubspace(**SMALL, random_state=0).fit(train["audio"], train["visual"], train["labels"])
    classes, class_index = np.unique(train["labels"], return_inverse=True)
    scaled = [torch.as_tensor(scaler.transform(train[m]), dtype=torch.float32)
              for scaler, m in ((model.audio_scaler_, "audio"), (model.visual_scaler_, "visual"))]  # fmt: skip
    rows = torch.as_tensor(model.held_out_rows_)
    head, scored = rows[0::2], rows[1::2]
    got = model._validation_map(model.networks_, *scaled, class_index, head, scored)
    scalers, cca = model._fit_head(model._outputs(scaled[0][head], "audio"), model._outputs(scaled[1][head], "visual"))
    audio = model._apply_head(model._outputs(scaled[0][scored], "audio"), scalers, cca, "audio")
    visual = model._apply_head(model._outputs(scaled[1][scored], "visual"), scalers, cca, "visual")
    assert got == pytest.approx(validation_map(audio, visual, class_index[scored.numpy()], tie_seed=None), abs=1e-9)
