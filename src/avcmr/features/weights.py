"""Which backbone weights a run uses: the official files, or seeded random weights.

Config (``datasets.<name>.backbone_weights``)::

    vggish: random                      # or {checkpoint: path, pca_params: path}
    inception: random                   # or a path to the Keras InceptionV3 no-top .h5 file
    seed: 0                             # seeds the random weights

Random weights exist for the embedded synthetic dataset and tests only: every table computed from
them says so in its metadata, and paper datasets refuse them unless explicitly allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Where the official files come from (printed in errors so users know how to get them).
OFFICIAL_SOURCES = {
    "VGGish checkpoint": "vggish_model.ckpt from the AudioSet VGGish release (tensorflow/models, research/audioset/vggish)",
    "VGGish PCA parameters": "vggish_pca_params.npz from the AudioSet VGGish release (tensorflow/models, research/audioset/vggish)",
    "InceptionV3 weights": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 from the Keras applications release",
}


class MissingWeightsError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class WeightsSpec:
    backbone: str
    is_random: bool
    seed: int = 0
    paths: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if self.is_random:
            return f"random(seed={self.seed})"
        return ", ".join(f"{key}={value}" for key, value in sorted(self.paths.items()))


def parse_weights(backbone_weights: dict, backbone: str) -> WeightsSpec:
    """The spec of one backbone (``vggish`` or ``inception``) from the dataset's config block."""
    value = backbone_weights.get(backbone, "random")
    seed = int(backbone_weights.get("seed", 0))
    if value == "random":
        return WeightsSpec(backbone, True, seed)
    if backbone == "vggish":
        if isinstance(value, str):
            value = {"checkpoint": value}
        return WeightsSpec(backbone, False, seed, {k: str(v) for k, v in value.items()})
    return WeightsSpec(backbone, False, seed, {"h5": str(value)})


def require_file(path: str | Path, what: str) -> Path:
    """The path if it exists, else a one-line error naming it and where the file comes from."""
    path = Path(path)
    if not path.is_file() and not Path(f"{path}.index").is_file():  # TF checkpoints are a file set
        raise MissingWeightsError(
            f"{what} not found at {path}: get {OFFICIAL_SOURCES.get(what, 'the official file')} and place it there "
            "(or point backbone_weights in the config at it)"
        )
    return path


def describe_weights(backbone_weights: dict) -> dict[str, str]:
    """Human-readable weights of both backbones, for table metadata and report headers."""
    return {backbone: parse_weights(backbone_weights, backbone).describe() for backbone in ("vggish", "inception")}


def uses_random_weights(backbone_weights: dict) -> bool:
    return any(parse_weights(backbone_weights, b).is_random for b in ("vggish", "inception"))
