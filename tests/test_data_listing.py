"""avcmr.data.listing: the clip-id rules and the duplicate policy every list parser shares."""

import pandas as pd
import pytest

from avcmr.data.listing import (
    DUPLICATE_POLICIES,
    ManifestError,
    apply_duplicate_policy,
    clip_id_for,
    clip_ids_for,
    safe_clip_id,
)


def test_clip_ids_name_files_safely():
    assert safe_clip_id("Bark/dog 1 (copy).mp4") == "Bark_dog_1_copy_.mp4"
    assert safe_clip_id("ok-id_1.2") == "ok-id_1.2"
    assert clip_id_for("abc", 1.5, 11.5) == "abc_1500_11500"


def test_the_column_form_of_a_clip_id_is_the_one_clip_form():
    ids, starts, ends = pd.Series(["a", "b", "c"]), pd.Series([0.0, 2.0004, 1.2345]), pd.Series([10.0, 12.0, 3.0])
    assert clip_ids_for(ids, starts, ends).tolist() == [clip_id_for(*row) for row in zip(ids, starts, ends, strict=True)]


@pytest.mark.parametrize(("policy", "kept"), [("first", ["a", "b", "c"]), ("drop", ["b", "c"]), ("drop_any", ["c"])])
def test_repeated_keys_follow_the_policy(policy, kept):
    rows = pd.DataFrame({"key": ["a", "b", "a", "c"], "row": [0, 1, 2, 3]})
    # `b` is repeated elsewhere in the file (a class left out): only drop_any drops it.
    kept_rows, counts = apply_duplicate_policy(rows, "key", policy, all_keys=["a", "b", "a", "c", "b"])
    assert kept_rows["key"].tolist() == kept
    assert counts["repeated_keys"] == 1 and counts["dropped_as_duplicates"] == len(rows) - len(kept)
    assert set(DUPLICATE_POLICIES) == {"first", "drop", "drop_any"}


def test_an_unknown_policy_names_the_known_ones():
    with pytest.raises(ManifestError, match=r"unknown duplicates policy 'last'; choose one of \['drop', 'drop_any', "):
        apply_duplicate_policy(pd.DataFrame({"key": ["a"]}), "key", "last")
