"""Frame-mean pooling (``avcmr.stages.split.clip_means``, used by the pool stage): each clip's mean over
its rows, checked against a plain per-clip loop, with the clip's rows together or apart."""

import numpy as np
import pytest

from avcmr.stages.split import clip_means


def brute_force_means(clip_ids, vectors):
    means = {}
    for clip in dict.fromkeys(clip_ids):
        rows = [vectors[i] for i, other in enumerate(clip_ids) if other == clip]
        means[clip] = np.sum(rows, axis=0, dtype=np.float64) / len(rows)
    return means


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interleaved", [False, True])
def test_clip_means_equal_a_per_clip_loop(dtype, interleaved):
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 12, 40)
    clip_ids = np.repeat([f"clip_{i:02d}" for i in range(len(counts))], counts).tolist()
    if interleaved:  # a clip's rows apart (not how the extractors write, but handled)
        clip_ids = [clip_ids[i] for i in rng.permutation(len(clip_ids))]
    vectors = rng.normal(size=(len(clip_ids), 16)).astype(dtype)
    means = clip_means(clip_ids, vectors)
    expected = brute_force_means(clip_ids, vectors)
    assert list(means) == sorted(expected) if interleaved else list(means) == list(expected)
    for clip, mean in means.items():
        assert mean.dtype == dtype and mean.shape == (16,)
        # float32 sums round at each of ≤ 11 additions of values ~1: ≤ 1e-6 apart from the exact mean.
        tolerance = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(mean, expected[clip], rtol=tolerance, atol=tolerance)


def test_clip_means_keep_numpys_arithmetic_for_either_layout():
    # The pool stage relies on this to stay bit-identical to earlier versions' pandas groups.
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 64))
    clip_ids = [f"c{i // 10}" for i in range(30)]
    for layout in (np.ascontiguousarray, np.asfortranarray):
        laid_out = layout(vectors)
        means = clip_means(clip_ids, laid_out)
        for k, clip in enumerate(("c0", "c1", "c2")):
            assert np.array_equal(means[clip], laid_out[10 * k : 10 * k + 10].mean(axis=0))


def test_clip_means_need_one_id_per_row():
    assert clip_means([], np.zeros((0, 3))) == {}
    with pytest.raises(ValueError, match="2 clip ids for 3 rows"):
        clip_means(["a", "b"], np.zeros((3, 4)))
