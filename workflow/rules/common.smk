# Helpers shared by the rule files (the run's settings per dataset, its listings, and the input,
# params and resources functions the rules name). Their Python lives in avcmr.workflow (settings,
# provenance, listings, memory, targets; unit-tested there): each function here binds one to this
# run's config, SETTINGS, ROUTES and LISTINGS, or reads a rule's wildcards.
import functools
from pathlib import Path

from avcmr.config import ConfigError, stop, stop_on_config_error
from avcmr.reporting.tables import ABLATION_ONLY, TABLE4_METHODS
from avcmr.workflow import memory, provenance as provenance_of, settings, targets
from avcmr.workflow.listings import Listings, archive_paths as archive_paths_of

# ffmpeg is checked by the jobs that run it (decode, synthesize, index, download), not here: a
# parse runs in every job, training and report jobs included, and with conda the binaries come
# from the job's environment.

# Config and data errors end the run with their one line and no traceback (avcmr.config.stop),
# at parse time or from an input function, before any job runs: a function that can meet one is
# wrapped in stop_on_config_error.

# Every dataset is checked here, and every method_params key is an argument of its method's
# constructor (or `budget`): before any job runs, rather than inside the training job after all
# the extraction.
try:
    SETTINGS = settings.load_settings(config)
except ConfigError as error:
    stop(error)

# Each dataset's clips and shards, listed once per Snakemake invocation (avcmr.workflow.listings).
LISTINGS = Listings(SETTINGS)
shards = stop_on_config_error(LISTINGS.shards)
dataset_size = stop_on_config_error(LISTINGS.size)
remote_sources = stop_on_config_error(LISTINGS.remote_sources)
official_weights = stop_on_config_error(
    functools.partial(settings.official_weights, config)
)

# Dataset names as wildcard constraints (a regex that matches nothing when there is none).
alternation = settings.alternation
names_of_kind = functools.partial(settings.names_of_kind, SETTINGS)
archive_names = functools.partial(settings.archive_names, SETTINGS)
youtube_names = functools.partial(settings.youtube_names, SETTINGS)
frames_kept_names = functools.partial(settings.frames_kept_names, SETTINGS)


def spec_of(function):
    """Params function: ``function`` of the wildcard's dataset settings."""
    return stop_on_config_error(lambda wildcards: function(SETTINGS[wildcards.dataset]))


# --- What rules read from a dataset's settings (avcmr.workflow.settings) --------------------------


def feature_settings(dataset):
    return SETTINGS[dataset]["features"]


def backbone_threads(dataset):
    return settings.backbone_threads(SETTINGS[dataset])


def fit_threads(dataset):
    return settings.fit_threads(SETTINGS[dataset])


def method_params(dataset, method):
    return settings.method_params(config, SETTINGS[dataset], method)


def shared_fit_models(dataset, method, seeds):
    return settings.shared_fit_models(config, SETTINGS[dataset], method, seeds)


def training_rules():
    return settings.training_rules(config, SETTINGS)


gpus_of = settings.gpus_of
paper_reference_of = spec_of(settings.paper_reference_of)
media_dir = spec_of(settings.media_dir)

# --- Provenance: what decides each table (avcmr.workflow.provenance) ------------------------------


def provenance(level):
    """Params function: what produced a table, at the config level that can change it
    (extraction, split, evaluation; a training job's own method only)."""
    return lambda wildcards: provenance_of.table_provenance(
        level, config, SETTINGS[wildcards.dataset], wildcards.get("method")
    )


def map_header(wildcards):
    return provenance_of.map_header(config, SETTINGS[wildcards.dataset], ROUTES)


acquisition_header = spec_of(provenance_of.acquisition_header)
download_content = spec_of(provenance_of.download_content)
listing_spec = spec_of(provenance_of.listing_spec)
listing_provenance = spec_of(provenance_of.listing_provenance)
archive_settings = spec_of(provenance_of.archive_settings)
archive_provenance = spec_of(provenance_of.archive_provenance)

# --- Inputs and listings (avcmr.workflow.listings, avcmr.workflow.targets) ------------------------


def no_route_present(wildcards):
    """Input function of dataset_without_route: any result of an auto dataset with no route
    present stops the run, before any job, with the line naming each route and where its file goes.
    """
    stop(ROUTES.missing[wildcards.dataset])


def shard_paths(pattern):
    """Input function: ``pattern`` formatted for every shard of the wildcard's dataset."""
    return lambda wildcards: [
        pattern.format(dataset=wildcards.dataset, shard=shard)
        for shard in shards(wildcards.dataset)
    ]


@stop_on_config_error
def folder_members(wildcards):
    """Params function: one shard's members (ids, labels, paths, sizes, mtimes): a rerun trigger."""
    return LISTINGS.folder_members(wildcards.dataset, int(wildcards.shard))


@stop_on_config_error
def folder_clips(wildcards):
    """Params function: a folder dataset's whole listing for listing.parquet (None for others)."""
    return LISTINGS.folder_clips(wildcards.dataset)


@stop_on_config_error
def archive_input(wildcards):
    """Input function of unpack_archive: the local archive, with a clear error when it is missing."""
    return LISTINGS.archive_file(wildcards.dataset)


@stop_on_config_error
def manifest_inputs(wildcards):
    """Input function: the local list files of a YouTube dataset (none for other kinds)."""
    return LISTINGS.list_files(wildcards.dataset)


@stop_on_config_error
def feature_file_input(wildcards):
    """Input function of import_feature_file: the file, its shapes read first (one-line error)."""
    return LISTINGS.feature_file(wildcards.dataset)


def archive_paths(dataset):
    return archive_paths_of(SETTINGS[dataset])


def archive_targets():
    return targets.archive_targets(SETTINGS)


def backbone_weight_files(backbone):
    """Input function: the files of a backbone's weights (none when random)."""
    return lambda wildcards: targets.backbone_weight_files(
        SETTINGS[wildcards.dataset], backbone
    )


listed_split_input = spec_of(targets.listed_split_input)

# --- Result targets -------------------------------------------------------------------------------


def evaluation_targets(dataset, only=None, exclude=()):
    return targets.evaluation_targets(SETTINGS[dataset], only, exclude)


def failure_tables(dataset):
    return targets.failure_tables(SETTINGS[dataset], shards(dataset))


def benchmark_files(wildcards):
    """Input function: the benchmark files of the dataset's per-shard and training jobs, by rule."""
    dataset = wildcards.dataset
    return targets.benchmark_files(SETTINGS[dataset], shards(dataset))


default_targets = stop_on_config_error(
    functools.partial(targets.default_targets, config, SETTINGS, ROUTES)
)

# --- Memory declarations from the data's size (avcmr.workflow.memory, avcmr.resources) ------------


def mem_mb(stage):
    """Resources function: ``mem_mb`` of a dataset-wide job from the dataset's clip and test counts,
    times the attempt (retries)."""
    return lambda wildcards, attempt: attempt * memory.stage_mem_mb(
        stage,
        SETTINGS[wildcards.dataset],
        dataset_size(wildcards.dataset),
        getattr(wildcards, "method", "ours"),
    )
