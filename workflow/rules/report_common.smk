# Helpers of the training, figure and report rules (train.smk, report.smk): the model file's
# context, the optional `figures` config section, the α/β grid and the report's items. Their
# Python lives in avcmr.workflow (settings, targets); these bind it to the run's config.
from avcmr.workflow.targets import FIGURES, GRID_VALUE, TABLE_VIEWS


def model_context(dataset):
    """Params function: what the model file records besides the estimator (and the PCA input)."""
    return settings.model_context(SETTINGS[dataset])


def figure_settings():
    """The optional `figures` config section with its defaults (avcmr.workflow.settings)."""
    return settings.figure_settings(config)


def retrieval_page_settings():
    return settings.retrieval_page_settings(config)


def configured_methods(dataset):
    return targets.configured_methods(SETTINGS[dataset])


def alpha_beta_targets(dataset):
    """Per-query AP tables of `ours` at every (α, β) of the grid and every grid seed."""
    return targets.alpha_beta_targets(config, SETTINGS[dataset])


def first_seed_paths(pattern):
    """Input function: ``pattern`` for every configured method at the first seed."""
    return lambda wildcards: targets.seed_paths(
        pattern, SETTINGS[wildcards.dataset], first_seed_only=True
    )


def all_seed_paths(pattern):
    """Input function: ``pattern`` for every configured method and seed."""
    return lambda wildcards: targets.seed_paths(pattern, SETTINGS[wildcards.dataset])


def reference_configured(wildcards):
    """Params function: whether the paper's model is configured (captions say so otherwise)."""
    return "ours" in configured_methods(wildcards.dataset)


def report_items(wildcards):
    """Input function: every figure, table view and the retrieval page of the dataset's report."""
    return targets.report_items(config, SETTINGS[wildcards.dataset])


def figure_report(name, caption):
    return report(
        f"results/{{dataset}}/figures/{name}.png",
        caption=f"../report/{caption}",
        category="Figures",
        subcategory="{dataset}",
        labels={"figure": FIGURES[name], "dataset": "{dataset}"},
    )
