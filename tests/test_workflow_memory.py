"""avcmr.workflow.memory: the memory a dataset-wide job declares, from the dataset's settings and size."""

import pytest
from workflow_configs import run_config, synthetic

from avcmr import resources
from avcmr.workflow import memory
from avcmr.workflow.settings import load_settings


def spec_of(**spec):
    return load_settings(run_config({"a": synthetic(**spec)}))["a"]


def test_each_stage_declares_what_avcmr_resources_computes_from_the_size():
    a = spec_of(features={"shard_size": 100, "pca_dim": 64, "fps": 1},
                split={"train_fraction": 0.8, "test_size": None},
                evaluation={"methods": ["random", "cca"], "seeds": [0, 1, 2], "threads_per_fit": 3})
    size = (1000, 10, 9.5)  # clips, classes, longest clip (s): ten 1-fps frames
    n_test = resources.expected_test_clips(1000, 0.8, None, 10)
    assert memory.dataset_test_clips(a, size) == n_test == 210
    assert memory.stage_mem_mb("visual_pca", a, size) == resources.visual_pca_mem_mb(1000, 100, 10)
    assert memory.stage_mem_mb("pool", a, size) == resources.pool_mem_mb(1000, 100, 10, 64)
    assert memory.stage_mem_mb("fit_evaluate", a, size, "random") == resources.fit_evaluate_mem_mb(
        1000, n_test, 64, "random", 3)
    assert memory.stage_mem_mb("table", a, size) == resources.table_mem_mb(n_test, 6)
    # The dense scores of `random` cost more than a method with embeddings.
    assert memory.stage_mem_mb("fit_evaluate", a, size, "random") > memory.stage_mem_mb("fit_evaluate", a, size)


def test_declarations_grow_with_the_data_and_a_fixed_test_size_caps_the_test_set():
    a = spec_of()
    for stage in memory.STAGES:
        assert memory.stage_mem_mb(stage, a, (20_000, 10, 10.0)) > memory.stage_mem_mb(stage, a, (1_000, 10, 10.0))
    capped = spec_of(split={"test_size": 50})
    assert memory.dataset_test_clips(capped, (20_000, 10, 10.0)) == 50


def test_an_unknown_stage_names_the_known_ones():
    with pytest.raises(ValueError, match="no memory estimate for 'decode'; stages: visual_pca, pool"):
        memory.stage_mem_mb("decode", spec_of(), (10, 2, 1.0))
