import pandas as pd
import pytest

from avcmr.data.split import balanced_split


def test_split_is_balanced_per_class_and_seeded():
    labels = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    split = balanced_split(labels, 0.8, seed=1)
    counts = pd.crosstab(labels, split)
    assert counts.loc["a", "test"] == 10 and counts.loc["b", "test"] == 6 and counts.loc["c", "test"] == 4
    assert split.equals(balanced_split(labels, 0.8, seed=1))
    assert not split.equals(balanced_split(labels, 0.8, seed=2))


def test_fixed_test_size_is_shared_in_proportion():
    labels = pd.Series(["a"] * 100 + ["b"] * 50 + ["c"] * 10)
    split = balanced_split(labels, 0.8, seed=0, test_size=16)
    assert (split == "test").sum() == 16
    counts = pd.crosstab(labels, split)["test"]
    assert counts["a"] == 10 and counts["b"] == 5 and counts["c"] == 1


def test_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="train_fraction"):
        balanced_split(pd.Series(["a", "b"]), 1.0)
