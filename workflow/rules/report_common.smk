# Helpers of the training, figure and report rules (train.smk, report.smk): the model file's
# context, the optional `figures` config section, the α/β grid and the report's items.


from avcmr.models_io import model_feature_settings

# A grid value of the α/β wildcards, as format_grid_value writes it (0, 0.001, 1e-05, ...).
GRID_VALUE = r"[0-9][0-9.]*(e[+-]?[0-9]+)?"


def model_context(dataset):
    """Params function: what the model file records besides the estimator (and the PCA input)."""
    features = feature_settings(dataset)
    return {
        "dataset": dataset,
        "features": model_feature_settings(features),
        "backbone_weights": SETTINGS[dataset]["backbone_weights"],
        # A features dataset was not extracted here: its models cannot embed a new clip.
        "feature_source": (
            "released features"
            if SETTINGS[dataset]["kind"] == "features"
            else "extracted"
        ),
    }


def figure_settings():
    """The optional `figures` config section with its defaults (t-SNE subsample, α/β grid; the
    retrieval page's keys default in avcmr.reporting.retrieval_page.PageSettings)."""
    settings = {
        "tsne_max_points": 2000,
        "tsne_perplexity": 30.0,
        "tsne_seed": 0,
        "alpha_beta_grid": [0, 0.001, 0.01, 0.1, 1],
        "alpha_beta_seeds": None,
    }
    settings.update(config.get("figures") or {})
    return settings


def retrieval_page_settings():
    """Params function: the retrieval page's settings (avcmr.reporting.retrieval_page.PageSettings)."""
    from dataclasses import asdict

    from avcmr.reporting.retrieval_page import PageSettings

    return asdict(PageSettings.from_config(config.get("figures")))


def retrieval_targets(dataset):
    """The retrieval page (media beside it) and its copy for the report (media inline)."""
    return [
        f"results/{dataset}/retrieval.html",
        f"results/{dataset}/report/retrieval.html",
    ]


def format_grid_value(value):
    return f"{float(value):g}"


def alpha_beta_targets(dataset):
    """Per-query AP tables of `ours` at every (α, β) of the grid and every grid seed."""
    settings = figure_settings()
    seeds = settings["alpha_beta_seeds"] or SETTINGS[dataset]["evaluation"]["seeds"][:1]
    grid = [format_grid_value(value) for value in settings["alpha_beta_grid"]]
    return [
        f"results/{dataset}/alpha_beta/ours_alpha{alpha}_beta{beta}_seed{seed}.parquet"
        for alpha in grid
        for beta in grid
        for seed in seeds
    ]


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


def configured_methods(dataset):
    return SETTINGS[dataset]["evaluation"]["methods"]


def first_seed_paths(pattern):
    """Input function: ``pattern`` for every configured method at the first seed."""

    def paths(wildcards):
        seed = SETTINGS[wildcards.dataset]["evaluation"]["seeds"][0]
        return [
            pattern.format(dataset=wildcards.dataset, method=method, seed=seed)
            for method in configured_methods(wildcards.dataset)
        ]

    return paths


def all_seed_paths(pattern):
    """Input function: ``pattern`` for every configured method and seed."""

    def paths(wildcards):
        evaluation = SETTINGS[wildcards.dataset]["evaluation"]
        return [
            pattern.format(dataset=wildcards.dataset, method=method, seed=seed)
            for method in evaluation["methods"]
            for seed in evaluation["seeds"]
        ]

    return paths


def reference_configured(wildcards):
    """Params function: whether the paper's model is configured (captions say so otherwise)."""
    return "ours" in configured_methods(wildcards.dataset)


def table_views(dataset):
    methods = set(configured_methods(dataset))
    names = ["acquisition", "table3"]
    if methods - set(ABLATION_ONLY):
        names.append("table2")
    if methods & (set(TABLE4_METHODS) - {"random"}):
        names.append("table4")
    if figure_settings().get("include_alpha_beta", False):
        names.append("alpha_beta")
    return [f"results/{dataset}/report/{name}.html" for name in sorted(names)]


def figure_targets(dataset):
    names = [
        "fig3_class_counts",
        "fig4_precision_scope",
        "fig5_training_losses",
        "fig6_per_class_ap",
    ]
    if set(configured_methods(dataset)) - {"random"}:
        names.append("fig8_tsne")  # needs a method with embeddings
    if figure_settings().get("include_alpha_beta", False):
        names.append("fig7_alpha_beta")
    return [
        f"results/{dataset}/figures/{name}.{ext}"
        for name in sorted(names)
        for ext in ("png", "pdf")
    ]


def report_items(wildcards):
    """Input function: every figure, table view and the retrieval page of the dataset's report."""
    return (
        figure_targets(wildcards.dataset)
        + table_views(wildcards.dataset)
        + retrieval_targets(wildcards.dataset)
    )


def report_targets(dataset):
    """Everything `snakemake --report` shows for a dataset (add to the default targets)."""
    return (
        [f"results/{dataset}/report/run_summary.rst"]
        + figure_targets(dataset)
        + table_views(dataset)
        + retrieval_targets(dataset)
    )


def figure_report(name, caption):
    return report(
        f"results/{{dataset}}/figures/{name}.png",
        caption=f"../report/{caption}",
        category="Figures",
        subcategory="{dataset}",
        labels={"figure": FIGURES[name], "dataset": "{dataset}"},
    )
