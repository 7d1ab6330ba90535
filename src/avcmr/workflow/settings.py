"""Per-dataset settings of a run and the values rules read from them.

The config becomes one settings dict per dataset (:func:`avcmr.config.dataset_settings`: the global
features/split/evaluation sections merged under the dataset's own, its name under ``name``),
checked before any job runs. The other functions take the config or one dataset's settings
(``spec``) and give a rule's wildcard constraint, threads or parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from avcmr.config import ConfigError, check_dataset, check_method_params, dataset_settings
from avcmr.data.manifests import YOUTUBE_KINDS

Spec = Mapping[str, object]

FIT_JOBS = ("per_method", "per_seed")


def load_settings(config: Mapping) -> dict[str, dict]:
    """Dataset name → its settings, every ``method_params`` key and every dataset checked first
    (:class:`ConfigError` with one line: before any job, not inside a job after the extraction)."""
    check_method_params(config)
    settings = {}
    for name in config["datasets"]:
        settings[name] = dataset_settings(config, name)
        check_dataset(settings[name])
    return settings


# --- Dataset names as wildcard constraints --------------------------------------------------------


def alternation(names: Iterable[str]) -> str:
    """Regex alternation of ``names`` (matches nothing when there is none)."""
    names = list(names)
    return "|".join(names) if names else "(?!)"


def names_where(settings: Mapping[str, Spec], predicate: Callable[[Spec], object]) -> str:
    """Regex alternation of the datasets whose settings satisfy ``predicate``."""
    return alternation(name for name, spec in settings.items() if predicate(spec))


def names_of_kind(settings: Mapping[str, Spec], kind: str) -> str:
    return names_where(settings, lambda spec: spec["kind"] == kind)


def archive_names(settings: Mapping[str, Spec]) -> str:
    """The datasets with a release archive (``archive:``)."""
    return names_where(settings, lambda spec: spec.get("archive"))


def youtube_names(settings: Mapping[str, Spec]) -> str:
    """The YouTube datasets (vegas, ave, audioset, vggsound)."""
    return names_where(settings, lambda spec: spec["kind"] in YOUTUBE_KINDS)


def keeps_decoded_frames(spec: Spec) -> bool:
    """``features.keep_decoded_frames`` of the dataset (its own section over the global one)."""
    return spec["features"].get("keep_decoded_frames", False)


def frames_kept_names(settings: Mapping[str, Spec], keep: bool) -> str:
    """The datasets that keep (``keep``) or drop their decoded frames.

    Output flags such as ``temp()`` cannot depend on wildcards, so decode.smk has two variants of
    the decode rule, one per answer, each constrained to its datasets' names.
    """
    return names_where(settings, lambda spec: keeps_decoded_frames(spec) == keep)


# --- Threads, GPUs, training -----------------------------------------------------------------------


def backbone_threads(spec: Spec) -> int:
    """Threads of one VGGish / InceptionV3 job: ``features.backbone_threads`` (default 2)."""
    return spec["features"].get("backbone_threads", 2)


def fit_threads(spec: Spec) -> int:
    """Threads of one training job: ``evaluation.threads_per_fit`` (default 2)."""
    return spec["evaluation"].get("threads_per_fit", 2)


def gpus_of(method: str) -> int:
    """GPUs a training job of ``method`` asks for: 1 for the torch methods, 0 for the others."""
    from avcmr.methods.registry import uses_torch

    return 1 if uses_torch(method) else 0


def method_params(config: Mapping, spec: Spec, method: str) -> dict:
    """The method's training budget (dataset's ``budget``, else the global one) and its global
    hyper-parameters, updated by the dataset's own ``method_params`` (either may set ``budget``).
    """
    return {
        "budget": spec.get("budget", config.get("budget", "quick")),
        **config.get("method_params", {}).get(method, {}),
        **spec.get("method_params", {}).get(method, {}),
    }


def shared_fit_models(config: Mapping, spec: Spec, method: str, seeds: Iterable) -> list[str]:
    """Model files whose fit a variant row evaluates instead of training (``ugach_real`` and
    ``agah_real`` rank the fitted ``ugach`` / ``agah`` networks by cosine): the base row's, one per
    seed, when the dataset trains both rows with the same parameters; else none (it trains).
    """
    from avcmr.methods.registry import VARIANT_BASES

    base = VARIANT_BASES.get(method)
    if (
        base is None
        or base not in spec["evaluation"]["methods"]
        or method_params(config, spec, base) != method_params(config, spec, method)
    ):
        return []
    return [f"results/{spec['name']}/models/{base}_seed{seed}.joblib" for seed in seeds]


def fit_jobs_of(spec: Spec) -> str:
    """``evaluation.fit_jobs`` of a settings dict: per_method (the default) or per_seed."""
    return spec.get("evaluation", {}).get("fit_jobs", "per_method")


def fit_job_shape(spec: Spec) -> tuple[str, tuple]:
    """What a training job covers: ``("per_seed", ())`` or ``("per_method", seeds)``."""
    mode = fit_jobs_of(spec)
    return (mode, ()) if mode == "per_seed" else (mode, tuple(spec["evaluation"]["seeds"]))


def training_rules(config: Mapping, settings: Mapping[str, Spec]) -> list[tuple[str, str, tuple, str]]:
    """The training rules to define, one per distinct job shape among the datasets, as (name, mode,
    seeds, regex of its datasets). Outputs stay per (method, seed); a per-method rule lists its
    seeds' files, so datasets with other seeds need a rule of their own. The shape of the global
    ``evaluation`` section (else the first dataset's) is named ``fit_evaluate``, the name profiles
    use (``set-threads``, ``set-resources``); any other is ``fit_evaluate_seeds_<seeds>`` or
    ``fit_evaluate_per_seed``.
    """
    shapes: dict[tuple, list[str]] = {}
    for name, spec in settings.items():
        shapes.setdefault(fit_job_shape(spec), []).append(name)
    if not shapes:
        return []
    global_section = config.get("evaluation", {})
    main = fit_job_shape({"evaluation": global_section}) if "seeds" in global_section else next(iter(shapes))
    rules = []
    for shape, names in shapes.items():
        mode, seeds = shape
        if shape == main:
            rule_name = "fit_evaluate"
        elif mode == "per_seed":
            rule_name = "fit_evaluate_per_seed"
        else:
            rule_name = "fit_evaluate_seeds_" + "_".join(str(s).replace("-", "m") for s in seeds)
        rules.append((rule_name, mode, seeds, "|".join(names)))
    return rules


def model_context(spec: Spec) -> dict:
    """What the model file records besides the estimator (and the PCA input)."""
    from avcmr.models_io import model_feature_settings

    return {
        "dataset": spec["name"],
        "features": model_feature_settings(spec["features"]),
        "backbone_weights": spec["backbone_weights"],
        # A features dataset was not extracted here: its models cannot embed a new clip.
        "feature_source": "released features" if spec["kind"] == "features" else "extracted",
    }


# --- Sources, weights, figures ---------------------------------------------------------------------


def media_dir(spec: Spec) -> str:
    """Where a YouTube dataset's clips land (kept across runs: downloads resume from it)."""
    return f"{spec.get('media_dir', 'resources/media')}/{spec['name']}"


def paper_reference_of(spec: Spec) -> str | None:
    """vegas / ave when the dataset's tables get the paper's numbers beside ours, else None."""
    from avcmr.reporting.paper_numbers import paper_reference

    return paper_reference(spec["name"], spec.get("paper_reference"))


def official_weights(config: Mapping) -> dict[str, dict]:
    """url, path, sha256 (+ published md5) of each official backbone file (config: official_weights)."""
    from avcmr.features.weights import official_file_settings

    try:
        return official_file_settings(config.get("official_weights"))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def figure_settings(config: Mapping) -> dict:
    """The optional `figures` config section with its defaults (t-SNE subsample, α/β grid; the
    retrieval page's keys default in avcmr.reporting.retrieval_page_types.PageSettings)."""
    settings = {
        "tsne_max_points": 2000,
        "tsne_perplexity": 30.0,
        "tsne_seed": 0,
        "alpha_beta_grid": [0, 0.001, 0.01, 0.1, 1],
        "alpha_beta_seeds": None,
    }
    settings.update(config.get("figures") or {})
    return settings


def retrieval_page_settings(config: Mapping) -> dict:
    """The retrieval page's settings (avcmr.reporting.retrieval_page_types.PageSettings)."""
    from dataclasses import asdict

    from avcmr.reporting.retrieval_page_types import PageSettings

    return asdict(PageSettings.from_config(config.get("figures")))
