"""An easy paired feature set for the adversarial / hashing baselines' tests.

10 classes, 400 training and 100 test pairs, 128-D "audio" and 1024-D "visual": each vector is its
class mean (independent per modality) plus a pair latent shared by the two modalities of a clip
plus isotropic noise. Class means dominate, so any working cross-modal method — supervised or
not — ranks same-class items first, far above the chance MAP Σ_c p_c².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avcmr.evaluation.metrics import evaluate_scores


@dataclass(frozen=True)
class EasySplit:
    audio_train: np.ndarray
    visual_train: np.ndarray
    labels_train: np.ndarray
    audio_test: np.ndarray
    visual_test: np.ndarray
    labels_test: np.ndarray


def make_easy_features(
    n_classes: int = 10,
    n_train: int = 400,
    n_test: int = 100,
    audio_dim: int = 128,
    visual_dim: int = 1024,
    class_separation: float = 1.0,
    pair_strength: float = 0.5,
    noise: float = 1.0,
    seed: int = 0,
) -> EasySplit:
    rng = np.random.default_rng(seed)
    n_items = n_train + n_test
    labels = np.arange(n_items) % n_classes
    rng.shuffle(labels)
    pair_latent = rng.standard_normal((n_items, 8))

    def modality(dim: int) -> np.ndarray:
        means = class_separation * rng.standard_normal((n_classes, dim))
        pair_part = pair_latent @ rng.standard_normal((8, dim)) / np.sqrt(8)
        return (
            means[labels] + pair_strength * pair_part + noise * rng.standard_normal((n_items, dim))
        ).astype(np.float32)

    audio, visual = modality(audio_dim), modality(visual_dim)
    train, test = slice(0, n_train), slice(n_train, n_items)
    return EasySplit(
        audio[train], visual[train], labels[train], audio[test], visual[test], labels[test]
    )


def chance_map(labels: np.ndarray) -> float:
    """Expected MAP of a random ranking: Σ_c p_c² (METHODS.md, "Random")."""
    shares = np.unique(labels, return_counts=True)[1] / len(labels)
    return float((shares**2).sum())


def average_map(method, split: EasySplit) -> float:
    """(MAP a→v + MAP v→a) / 2 of a fitted method on the test pairs."""
    scores = method.similarity(split.audio_test, split.visual_test)
    ap = evaluate_scores(scores, split.labels_test, split.labels_test)
    return float((ap["a2v"].mean() + ap["v2a"].mean()) / 2)


def hamming_distance(left_codes: np.ndarray, right_codes: np.ndarray) -> np.ndarray:
    """Number of differing bits between every left and right code (computed by comparison)."""
    return (left_codes[:, None, :] != right_codes[None, :, :]).sum(axis=2)
