import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# TensorFlow's C++ start-up chatter is noise in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require_shared(relative: str) -> Path:
    """A file from ../shared, or a skip with the reason when the checkout has none beside it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only beside developer and CI checkouts)")
    return path


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory) -> tuple[Path, float]:
    """One real H.264 + AAC clip from the synthetic generator, and its planned duration."""
    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips

    spec = SyntheticSpec(n_classes=3, n_clips=3, min_duration_s=3.2, max_duration_s=4.8, seed=3)
    clips = write_clips(plan_clips(spec).head(1), spec, tmp_path_factory.mktemp("clip"))
    return Path(clips["path"].iloc[0]), float(clips["duration_s"].iloc[0])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def single_cpu_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``).

    Tiny networks gain nothing from a second thread, and on a shared, oversubscribed CPU
    OpenMP's spinning workers make them many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def adversarial_easy():
    """The easy paired split of ``easy_features_adversarial`` (adversarial and hashing tests)."""
    from easy_features_adversarial import make_easy_features

    return make_easy_features()
