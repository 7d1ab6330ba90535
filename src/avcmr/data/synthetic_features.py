"""A feature-level stand-in for VEGAS: 128-D "VGGish" audio and 1024-D "Inception" visual vectors.

Used where the real features are not available (tests, benchmarks, the offline default config).
Each clip gets

- a class label drawn with mildly unequal class shares (VEGAS is imbalanced, so the chance MAP
  Σ_c p_c² is a little above 1/C);
- per modality, a *class latent* ``class_separation · prototype[label] + within-class variation``
  (prototypes and variation independent per modality: the label is the only thing linking
  the two modalities' class geometry), lifted into feature space by a fixed random one-hidden-
  layer ReLU network, so that the class structure is not linear in the features;
- a *pair latent* shared by the clip's audio and visual vector but independent of the label
  (recording conditions, scene, camera) mixed in linearly with weight ``pair_correlation``: it is
  the strongest *linear* cross-modal correlation, which an unsupervised linear method (``cca``)
  partly spends its 10 components on, while a label-aware model learns to ignore it;
- isotropic Gaussian ``noise``.

The defaults give a realistic, not trivial, benchmark: closed-form ``cca`` lands well above chance
and well below the supervised dual-subspace model (see ``benchmarks/bench_dual_subspace.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

# Dimensions of the hidden generative factors; fixed because they describe the simulated world,
# not a knob of the benchmark (difficulty is set by separation, pair correlation and noise).
CLASS_LATENT_DIM = 16
PAIR_LATENT_DIM = 8
LIFT_HIDDEN_UNITS = 256
# Dirichlet concentration of the class shares: large enough that no class is tiny.
CLASS_SHARE_CONCENTRATION = 8.0


def make_synthetic_features(
    n_clips: int = 28103,
    n_classes: int = 10,
    audio_dim: int = 128,
    visual_dim: int = 1024,
    train_size: int = 22482,
    class_separation: float = 1.0,
    pair_correlation: float = 0.2,
    noise: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Paired audio/visual feature vectors with class labels and a stratified train/test split.

    Returns a DataFrame with columns ``clip_id`` (str), ``label`` (int, 0…C−1), ``split``
    ("train"/"test"), ``audio`` (float32 array of ``audio_dim``) and ``visual`` (float32 array of
    ``visual_dim``); rows are in clip order, ``train_size`` rows have split "train". The same
    ``random_state`` gives the same table.
    """
    if not 0 < train_size < n_clips:
        raise ValueError(f"train_size must be in (0, n_clips={n_clips}), got {train_size}")
    if n_classes < 2:
        raise ValueError("need at least two classes")
    rng = np.random.default_rng(random_state)
    class_shares = rng.dirichlet(np.full(n_classes, CLASS_SHARE_CONCENTRATION))
    labels = rng.choice(n_classes, size=n_clips, p=class_shares)
    pair_latent = rng.standard_normal((n_clips, PAIR_LATENT_DIM))

    audio = _modality_features(rng, labels, pair_latent, audio_dim, n_classes, class_separation, pair_correlation, noise)
    visual = _modality_features(rng, labels, pair_latent, visual_dim, n_classes, class_separation, pair_correlation, noise)

    clip_index = np.arange(n_clips)
    train_index, _ = train_test_split(
        clip_index, train_size=train_size, stratify=labels, random_state=random_state
    )
    split = np.full(n_clips, "test", dtype=object)
    split[train_index] = "train"
    return pd.DataFrame(
        {
            "clip_id": [f"synthetic_{i:06d}" for i in clip_index],
            "label": labels.astype(np.int64),
            "split": split,
            "audio": list(audio),
            "visual": list(visual),
        }
    )


def _modality_features(rng, labels, pair_latent, dim, n_classes, class_separation, pair_correlation, noise):
    n_clips = len(labels)
    prototypes = rng.standard_normal((n_classes, CLASS_LATENT_DIM))
    class_latent = class_separation * prototypes[labels] + rng.standard_normal((n_clips, CLASS_LATENT_DIM))
    lift_in = rng.standard_normal((CLASS_LATENT_DIM, LIFT_HIDDEN_UNITS)) / np.sqrt(CLASS_LATENT_DIM)
    lift_bias = rng.standard_normal(LIFT_HIDDEN_UNITS)
    lift_out = rng.standard_normal((LIFT_HIDDEN_UNITS, dim)) / np.sqrt(LIFT_HIDDEN_UNITS)
    class_part = np.maximum(class_latent @ lift_in + lift_bias, 0.0) @ lift_out
    # Unit average variance per block, so the three weights are comparable across dimensions.
    class_part = (class_part - class_part.mean(axis=0)) / class_part.std()
    pair_part = pair_latent @ rng.standard_normal((PAIR_LATENT_DIM, dim)) / np.sqrt(PAIR_LATENT_DIM)
    noise_part = rng.standard_normal((n_clips, dim))
    features = class_part + pair_correlation * pair_part + noise * noise_part
    return features.astype(np.float32)


def split_arrays(df: pd.DataFrame):
    """(audio_train, visual_train, y_train, audio_test, visual_test, y_test) as numpy arrays."""
    train = (df["split"] == "train").to_numpy()
    audio = np.stack(df["audio"].to_numpy()).astype(np.float32, copy=False)
    visual = np.stack(df["visual"].to_numpy()).astype(np.float32, copy=False)
    labels = df["label"].to_numpy()
    return audio[train], visual[train], labels[train], audio[~train], visual[~train], labels[~train]


def write_feature_table(table: pd.DataFrame, out, provenance) -> None:
    """``table`` (from ``make_synthetic_features``) as the workflow's ``features.parquet``, so the
    workflow's own fit/evaluate and table code can run on it (benchmarks)."""
    import pyarrow as pa

    from avcmr.io import schemas
    from avcmr.io.parquet import vector_column, write_table

    audio, visual = np.stack(table["audio"]), np.stack(table["visual"])
    features = pa.table({"clip_id": table["clip_id"], "label": [f"class_{label}" for label in table["label"]],
                         "split": table["split"], "audio": vector_column(audio), "visual": vector_column(visual)})
    write_table(features, out, schemas.features(audio.shape[1], visual.shape[1]), provenance)
