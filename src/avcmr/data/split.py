"""Class-balanced, seeded train/test split of clips."""

from __future__ import annotations

import numpy as np
import pandas as pd


def balanced_split(labels: pd.Series, train_fraction: float = 0.8, seed: int = 0,
                   test_size: int | None = None) -> pd.Series:
    """``"train"``/``"test"`` per clip: within each class a seeded shuffle, the first
    round(train_fraction·n_c) clips train (``test_size`` instead fixes the total test count,
    shared across classes in proportion to their size, as for AVE's 1,766/189)."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=labels.index, dtype=object)
    counts = labels.value_counts().sort_index()
    if test_size is not None:
        shares = counts / counts.sum() * test_size
        test_counts = np.floor(shares).astype(int)
        # Hand the remaining test items to the classes with the largest fractional parts.
        remainder = int(test_size - test_counts.sum())
        test_counts[(shares - test_counts).sort_values(ascending=False).index[:remainder]] += 1
    else:
        test_counts = counts - np.round(counts * train_fraction).astype(int)
    for label in counts.index:
        members = labels.index[labels == label].to_numpy()
        members = members[rng.permutation(len(members))]
        split.loc[members[: int(test_counts[label])]] = "test"
    return split


def listed_split(clip_ids: pd.Series, listing: pd.DataFrame) -> pd.Series:
    """``"train"``/``"test"`` per clip as the dataset's own list gives it (VGGSound's 4th column).

    ``listing``: ``clip_id, split`` of every listed clip. The split is kept, not re-drawn, so results
    compare with others' on the same list; a clip the list gives no train/test for, or a side left
    empty (e.g. every test clip failed to download), is an error with one line.
    """
    given = listing.drop_duplicates("clip_id").set_index("clip_id")["split"]
    split = clip_ids.map(given)
    unknown = ~split.isin(("train", "test"))
    if unknown.any():
        raise ValueError(f"split.from_manifest: {int(unknown.sum())} clips have no train/test in the list "
                         f"(first: {clip_ids[unknown].iloc[0]!r}); only vggsound lists give a split")
    sizes = split.value_counts()
    for side in ("train", "test"):
        if sizes.get(side, 0) == 0:
            raise ValueError(f"split.from_manifest: no usable {side} clip among the {len(split)} usable clips")
    return split.rename(None).astype(object)
