"""The files the rules ask for: each dataset's default targets, the inputs of the result tables
(evaluations, failure and benchmark tables, backbone files) and the report's items (figures,
table views, retrieval page, α/β grid).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from avcmr.config import ConfigError
from avcmr.features.weights import parse_weights
from avcmr.reporting.tables import ABLATION_ONLY, TABLE4_METHODS
from avcmr.routes import Resolution
from avcmr.workflow.listings import archive_paths
from avcmr.workflow.settings import figure_settings, fit_jobs_of

# The per-shard stages that write a failures table, per dataset kind.
FAILURE_STAGES = {
    "synthetic": ["decode", "logmel", "vggish", "inception"],
    "folder": ["index", "decode", "logmel", "vggish", "inception"],
    "vegas": ["download", "decode", "logmel", "vggish", "inception"],
    "ave": ["download", "decode", "logmel", "vggish", "inception"],
    "audioset": ["download", "decode", "logmel", "vggish", "inception"],
    "vggsound": ["download", "decode", "logmel", "vggish", "inception"],
    "features": [],  # a bad feature file stops its import with one line: no per-clip failures
}
BENCHMARKED_SHARD_STAGES = ("decode", "logmel", "vggish", "inception")
RESULT_FILES = ("map.tsv", "failures.parquet", "acquisition.tsv", "table3.tsv", "job_costs.tsv")
# A grid value of the α/β wildcards, as format_grid_value writes it (0, 0.001, 1e-05, ...).
GRID_VALUE = r"[0-9][0-9.]*(e[+-]?[0-9]+)?"
TABLE_VIEWS = {
    "table2": "Table 2: MAP of every method",
    "table3": "Table 3: training cost",
    "table4": "Table 4: ablation",
    "acquisition": "Acquisition summary",
    "alpha_beta": "α/β grid (Fig. 7 data)",
}
FIGURES = {
    "fig3_class_counts": "Fig. 3: clips per class",
    "fig4_precision_scope": "Fig. 4: precision-scope curves",
    "fig5_training_losses": "Fig. 5: training losses",
    "fig6_per_class_ap": "Fig. 6: per-class AP",
    "fig7_alpha_beta": "Fig. 7: MAP over the α/β grid",
    "fig8_tsne": "Fig. 8: t-SNE of features and embeddings",
}


def configured_methods(spec: Mapping) -> list[str]:
    return spec["evaluation"]["methods"]


def has_table2(methods: Iterable[str]) -> bool:
    """Table 2 lists every method but the ablation-only variants: made when one is configured."""
    return bool(set(methods) - set(ABLATION_ONLY))


def has_table4(methods: Iterable[str]) -> bool:
    """Table 4 is the ablation: made when one of its rows other than `random` is configured."""
    return bool(set(methods) & (set(TABLE4_METHODS) - {"random"}))


def includes_alpha_beta(config: Mapping) -> bool:
    return bool(figure_settings(config).get("include_alpha_beta", False))


# --- Results ---------------------------------------------------------------------------------------


def default_targets(config: Mapping, settings: Mapping[str, Mapping], routes: Resolution) -> list[str]:
    """The result tables and report items of every default dataset (``default_datasets``, else
    every configured one); an auto dataset without a route is its one-line error."""
    targets = []
    for dataset in config.get("default_datasets", list(settings)):
        if dataset in routes.missing:
            raise ConfigError(routes.missing[dataset])
        if dataset not in settings:
            raise ConfigError(f"default_datasets names {dataset!r}, which is not under datasets:")
        spec = settings[dataset]
        targets += [f"results/{dataset}/{name}" for name in RESULT_FILES]
        if has_table2(configured_methods(spec)):
            targets.append(f"results/{dataset}/table2.tsv")
        if has_table4(configured_methods(spec)):
            targets.append(f"results/{dataset}/table4.tsv")
        targets += report_targets(config, spec)
    return targets


def evaluation_targets(spec: Mapping, only: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """Per-(method, seed) evaluation tables of the configured methods (optionally a subset)."""
    only, exclude = (None if only is None else set(only)), set(exclude)
    evaluation = spec["evaluation"]
    methods = [m for m in evaluation["methods"] if (only is None or m in only) and m not in exclude]
    return [
        f"results/{spec['name']}/eval/{method}_seed{seed}.parquet"
        for method in methods
        for seed in evaluation["seeds"]
    ]


def failure_tables(spec: Mapping, shards: Sequence[int]) -> list[str]:
    """The per-shard failure tables of every stage of the dataset's kind."""
    return [
        f"results/{spec['name']}/failures/{stage}/shard{shard}.parquet"
        for stage in FAILURE_STAGES[spec["kind"]]
        for shard in shards
    ]


def benchmark_files(spec: Mapping, shards: Sequence[int]) -> dict[str, list[str]]:
    """The benchmark files of the dataset's per-shard and training jobs, by rule."""
    dataset = spec["name"]
    stages = [stage for stage in BENCHMARKED_SHARD_STAGES if stage in FAILURE_STAGES[spec["kind"]]]
    files = {
        stage: [f"results/{dataset}/benchmarks/{stage}/shard{shard}.tsv" for shard in shards]
        for stage in stages
    }
    evaluation = spec["evaluation"]
    per_seed = fit_jobs_of(spec) == "per_seed"
    files["fit_evaluate"] = [
        f"results/{dataset}/benchmarks/fit_evaluate/{method}" + (f"_seed{seed}.tsv" if per_seed else ".tsv")
        for method in evaluation["methods"]
        for seed in (evaluation["seeds"] if per_seed else [None])
    ]
    return files


# --- Inputs ----------------------------------------------------------------------------------------


def archive_targets(settings: Mapping[str, Mapping]) -> list[str]:
    """The member tables of every dataset with an archive (target of `fetch_archives`)."""
    return [archive_paths(spec)["members"] for spec in settings.values() if spec.get("archive")]


def backbone_weight_files(spec: Mapping, backbone: str) -> list[str]:
    """The files of a backbone's weights (none when random), so that a missing official file is
    fetched by its `fetch_weights_*` rule and a replaced file re-runs the extraction. A TF
    checkpoint given as a prefix (``x.ckpt`` with ``x.ckpt.index`` + data files) is its files.
    """
    weights = parse_weights(spec["backbone_weights"], backbone)
    if weights.is_random:
        return []
    keys = ["h5"] if backbone == "inception" else ["checkpoint"]
    if backbone == "vggish" and spec["features"].get("vggish_postprocess"):
        keys.append("pca_params")
    paths = []
    for key in keys:
        path = Path(weights.paths[key])
        prefix_files = sorted(path.parent.glob(f"{path.name}.*"))
        if not path.exists() and Path(f"{path}.index").is_file():
            paths += [str(p) for p in prefix_files]
        else:
            paths.append(str(path))
    return paths


def listed_split_input(spec: Mapping) -> dict[str, str]:
    """The listing, whose split column the split keeps when split.from_manifest is set (vggsound)."""
    if spec["split"].get("from_manifest", False):
        return {"listing": f"results/{spec['name']}/listing.parquet"}
    return {}


# --- Report ----------------------------------------------------------------------------------------


def seed_paths(pattern: str, spec: Mapping, first_seed_only: bool = False) -> list[str]:
    """``pattern`` for every configured method and seed (the first seed only: ``first_seed_only``)."""
    seeds = spec["evaluation"]["seeds"]
    return [
        pattern.format(dataset=spec["name"], method=method, seed=seed)
        for method in configured_methods(spec)
        for seed in (seeds[:1] if first_seed_only else seeds)
    ]


def format_grid_value(value: float) -> str:
    return f"{float(value):g}"


def alpha_beta_targets(config: Mapping, spec: Mapping) -> list[str]:
    """Per-query AP tables of `ours` at every (α, β) of the grid and every grid seed."""
    settings = figure_settings(config)
    seeds = settings["alpha_beta_seeds"] or spec["evaluation"]["seeds"][:1]
    grid = [format_grid_value(value) for value in settings["alpha_beta_grid"]]
    return [
        f"results/{spec['name']}/alpha_beta/ours_alpha{alpha}_beta{beta}_seed{seed}.parquet"
        for alpha in grid
        for beta in grid
        for seed in seeds
    ]


def retrieval_targets(dataset: str) -> list[str]:
    """The retrieval page (media beside it) and its copy for the report (media inline)."""
    return [f"results/{dataset}/retrieval.html", f"results/{dataset}/report/retrieval.html"]


def table_views(config: Mapping, spec: Mapping) -> list[str]:
    methods = configured_methods(spec)
    names = ["acquisition", "table3"]
    if has_table2(methods):
        names.append("table2")
    if has_table4(methods):
        names.append("table4")
    if includes_alpha_beta(config):
        names.append("alpha_beta")
    return [f"results/{spec['name']}/report/{name}.html" for name in sorted(names)]


def figure_targets(config: Mapping, spec: Mapping) -> list[str]:
    names = ["fig3_class_counts", "fig4_precision_scope", "fig5_training_losses", "fig6_per_class_ap"]
    if set(configured_methods(spec)) - {"random"}:
        names.append("fig8_tsne")  # needs a method with embeddings
    if includes_alpha_beta(config):
        names.append("fig7_alpha_beta")
    return [f"results/{spec['name']}/figures/{name}.{ext}" for name in sorted(names) for ext in ("png", "pdf")]


def report_items(config: Mapping, spec: Mapping) -> list[str]:
    """Every figure, table view and the retrieval page of the dataset's report."""
    return figure_targets(config, spec) + table_views(config, spec) + retrieval_targets(spec["name"])


def report_targets(config: Mapping, spec: Mapping) -> list[str]:
    """Everything `snakemake --report` shows for a dataset (add to the default targets)."""
    return [f"results/{spec['name']}/report/run_summary.rst"] + report_items(config, spec)
