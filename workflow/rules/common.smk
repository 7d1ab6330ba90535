# Helpers shared by all rule files (settings per dataset, shard lists, provenance)
import functools
import math
from pathlib import Path
from urllib.parse import urlparse

from avcmr.config import (
    ConfigError,
    check_dataset,
    check_method_params,
    config_hash,
    dataset_settings,
    n_synthetic_shards,
    stop,
)
from avcmr.data.archive import ARCHIVES, local_archive_path
from avcmr.data.feature_file import RELEASED_FEATURES_WEIGHTS, released_features_line
from avcmr.data.folder import list_folder_dataset, shard_members
from avcmr.data.manifests import (
    MANIFEST_CACHE,
    YOUTUBE_KINDS,
    ManifestError,
    check_sha256,
    dataset_listing,
    is_url,
    local_list_path,
    segment_sources,
)
from avcmr.features.weights import describe_weights, parse_weights, uses_random_weights
from avcmr.io.parquet import read_metadata
from avcmr.reporting.tables import ABLATION_ONLY, TABLE4_METHODS
from avcmr.routes import route_line

# ffmpeg is checked by the jobs that run it (decode, synthesize, index, download), not here: a
# parse runs in every job, training and report jobs included, and with conda the binaries come
# from the job's environment.

# Config and data errors end the run with their one line and no traceback (avcmr.config.stop),
# at parse time or from an input function, before any job runs.

# Every method_params key is an argument of its method's constructor (or `budget`): checked here,
# before any job runs, rather than inside the training job after all the extraction.
try:
    check_method_params(config)
except ConfigError as error:
    stop(error)

SETTINGS = {}
for _name in config["datasets"]:
    try:
        SETTINGS[_name] = dataset_settings(config, _name)
        check_dataset(SETTINGS[_name])
    except ConfigError as error:
        stop(error)


# --- Routes of the auto datasets (vegas, ave: avcmr.routes, resolved in the Snakefile) ------------


def missing_route_names():
    """Regex alternation of the auto datasets with no route present (matches nothing when none)."""
    return "|".join(ROUTES.missing) if ROUTES.missing else "(?!)"


def no_route_present(wildcards):
    """Input function of dataset_without_route: any result of such a dataset stops the run, before
    any job, with the one line naming each route and where its file goes."""
    stop(ROUTES.missing[wildcards.dataset])


def route_header(dataset):
    """Header lines naming the dataset's route (none for the synthetic set) and, for an auto
    dataset, how it was chosen."""
    lines = [route_line(dataset, SETTINGS[dataset])]
    if dataset in ROUTES.chosen:
        lines.append(ROUTES.chosen[dataset].header_line())
    return [line for line in lines if line]


def acquisition_header(wildcards):
    """Params function: acquisition.tsv's route line. Only what the dataset's entry says, so that
    the same entry given by --configfile or chosen by kind auto reruns nothing."""
    line = route_line(wildcards.dataset, SETTINGS[wildcards.dataset])
    return [line] if line else []


def names_of_kind(kind):
    """Regex alternation of the dataset names of one kind (matches nothing when there is none)."""
    names = [name for name, spec in SETTINGS.items() if spec["kind"] == kind]
    return "|".join(names) if names else "(?!)"


_FOLDER_LISTINGS = {}


def folder_listing(dataset):
    """The folder dataset's clips with their shards and file fingerprints, listed once per Snakemake
    invocation: the one source of shard membership (avcmr.data.folder). An archive dataset lists
    the member table of its unpacked archive."""
    if dataset not in _FOLDER_LISTINGS:
        spec = SETTINGS[dataset]
        members = check_unpacked(dataset) if spec.get("archive") else None
        try:
            _FOLDER_LISTINGS[dataset] = list_folder_dataset(spec, members)
        except (ValueError, OSError) as error:
            stop(f"dataset {dataset!r}: {error}")
    return _FOLDER_LISTINGS[dataset]


def folder_members(wildcards):
    """Params function: one shard's members (ids, labels, paths, sizes, mtimes), a rerun trigger:
    the shard's jobs rerun when, and only when, its files change."""
    return shard_members(folder_listing(wildcards.dataset), int(wildcards.shard))


def folder_clips(wildcards):
    """Params function: a folder dataset's whole listing for listing.parquet (None for other kinds)."""
    if SETTINGS[wildcards.dataset]["kind"] != "folder":
        return None
    listing = folder_listing(wildcards.dataset)
    return listing[["clip_id", "label", "shard", "size", "mtime_ns"]].to_dict("records")


# --- Release archives of folder datasets (`archive:`): downloaded, unpacked, listed by a layout ---

ARCHIVE_KEYS = (
    "archive",
    "archive_sha256",
    "archive_bytes",
    "layout",
    "annotations",
    "classes",
    "duplicates",
    "archive_limits",
    "root",
)


def archive_names():
    """Regex alternation of the datasets with an archive (matches nothing when there is none)."""
    names = [n for n, spec in SETTINGS.items() if spec.get("archive")]
    return "|".join(names) if names else "(?!)"


def archive_paths(dataset):
    """The local archive (a download for a URL), the unpacking folder and the member table."""
    spec = SETTINGS[dataset]
    return {
        "archive": local_archive_path(dataset, spec["archive"]),
        "unpacked": spec.get("root") or f"{ARCHIVES}/{dataset}/unpacked",
        "members": f"{ARCHIVES}/{dataset}/members.parquet",
    }


def archive_input(wildcards):
    """Input function of unpack_archive: the local archive, with a clear error when it is missing."""
    local = archive_paths(wildcards.dataset)["archive"]
    if not is_url(SETTINGS[wildcards.dataset]["archive"]) and not Path(local).is_file():
        stop(
            f"dataset {wildcards.dataset!r}: archive {local} not found; place your copy of the "
            f"release archive there, or set datasets.{wildcards.dataset}.archive to its path or URL "
            "(README, 'Release archives')"
        )
    return local


def archive_settings(dataset):
    """The dataset's archive settings (ARCHIVE_KEYS): what decides the unpacked member table."""
    spec = SETTINGS[dataset]
    return {k: spec[k] for k in ARCHIVE_KEYS if k in spec}


def archive_config_hash(dataset):
    return config_hash(archive_settings(dataset))


def archive_provenance(wildcards):
    """Params function: the settings that decide what the unpacking gives (a change re-unpacks)."""
    return {
        "dataset": wildcards.dataset,
        "config_hash": archive_config_hash(wildcards.dataset),
    }


def check_unpacked(dataset):
    """The member table of the dataset's unpacked archive; a clear error when it is missing or was
    made with other settings (the listing is read before any job runs)."""
    members = archive_paths(dataset)["members"]
    command = (
        "run `snakemake fetch_archives --cores 1` first, with the same --configfile if this run has "
        "one (it downloads the archive when it is a URL, checks it and unpacks it)"
    )
    if not Path(members).is_file():
        stop(
            f"dataset {dataset!r}: the archive {SETTINGS[dataset]['archive']} is not unpacked yet; {command}"
        )
    if read_metadata(members).get("config_hash") != archive_config_hash(dataset):
        stop(
            f"dataset {dataset!r}: {members} was unpacked with other archive settings; {command}"
        )
    return members


def archive_targets():
    """The member tables of every dataset with an archive (target of `fetch_archives`)."""
    return [
        archive_paths(name)["members"]
        for name, spec in SETTINGS.items()
        if spec.get("archive")
    ]


def shards(dataset):
    spec = SETTINGS[dataset]
    if spec["kind"] == "features":  # one import job, no shards (feature_file.smk)
        return []
    if spec["kind"] == "synthetic":
        return list(range(n_synthetic_shards(spec)))
    if spec["kind"] in YOUTUBE_KINDS:
        n_clips = len(youtube_listing(dataset).clips)
        return list(range(math.ceil(n_clips / spec["features"]["shard_size"])))
    return list(range(folder_listing(dataset).attrs["n_shards"]))


def shard_paths(pattern):
    """Input function: ``pattern`` formatted for every shard of the wildcard's dataset."""

    def paths(wildcards):
        return [
            pattern.format(dataset=wildcards.dataset, shard=shard)
            for shard in shards(wildcards.dataset)
        ]

    return paths


def feature_settings(dataset):
    return SETTINGS[dataset]["features"]


def backbone_threads(dataset):
    """Threads of one VGGish / InceptionV3 job: the dataset's ``features.backbone_threads`` (default 2)."""
    return feature_settings(dataset).get("backbone_threads", 2)


def provenance(level):
    """Params function: what produced a table, at three levels of the config that can change it.

    extraction: dataset + feature settings; split: + split; evaluation: + methods. Keeping the
    levels apart means that adding a method does not re-extract features.
    """

    def params(wildcards):
        spec = SETTINGS[wildcards.dataset]
        parts = {
            k: spec[k]
            for k in spec
            if k
            not in ("split", "evaluation", "method_params", "budget", "paper_reference")
        }
        if "download" in parts:  # pacing settings (sleep, retries, ...) change no table
            parts["download"] = download_content(wildcards)
        if "features" in parts:  # threads per job are an execution setting: no rerun
            parts["features"] = {
                k: v for k, v in parts["features"].items() if k != "backbone_threads"
            }
        if level in ("split", "evaluation"):
            parts["split"] = spec["split"]
        if level == "evaluation":
            # Threads per job and how seeds map to jobs are execution settings, like download
            # pacing: no rerun.
            parts["evaluation"] = {
                k: v
                for k, v in spec["evaluation"].items()
                if k not in ("threads_per_fit", "fit_jobs")
            }
            # A training job depends on its own method's parameters only.
            methods = (
                [wildcards.method]
                if "method" in wildcards.keys()
                else spec["evaluation"]["methods"]
            )
            parts["method_params"] = {
                method: method_params(wildcards.dataset, method) for method in methods
            }
        return {
            "dataset": wildcards.dataset,
            "config_hash": config_hash(parts),
            **backbone_facts(spec),
        }

    return params


def backbone_facts(spec):
    """The backbone weights a dataset's features come from, as the tables' metadata records them
    (a features dataset has no backbones: its file's authors extracted the features)."""
    if spec["kind"] == "features":
        return {"backbone_weights": RELEASED_FEATURES_WEIGHTS, "random_weights": False}
    return {
        "backbone_weights": describe_weights(spec["backbone_weights"]),
        "random_weights": uses_random_weights(spec["backbone_weights"]),
    }


def method_params(dataset, method):
    """The method's training budget (dataset's ``budget``, else the global one) and its global
    hyper-parameters, updated by the dataset's own ``method_params`` (either may set ``budget``).
    """
    return {
        "budget": SETTINGS[dataset].get("budget", config.get("budget", "quick")),
        **config.get("method_params", {}).get(method, {}),
        **SETTINGS[dataset].get("method_params", {}).get(method, {}),
    }


def shared_fit_models(dataset, method, seeds):
    """Model files whose fit a variant row evaluates instead of training (``ugach_real`` and
    ``agah_real`` rank the fitted ``ugach`` / ``agah`` networks by cosine): the base row's, one per
    seed, when the dataset trains both rows with the same parameters; else none (it trains).
    """
    from avcmr.methods.registry import VARIANT_BASES

    base = VARIANT_BASES.get(method)
    if (
        base is None
        or base not in SETTINGS[dataset]["evaluation"]["methods"]
        or method_params(dataset, base) != method_params(dataset, method)
    ):
        return []
    return [f"results/{dataset}/models/{base}_seed{seed}.joblib" for seed in seeds]


def paper_reference_of(dataset):
    """vegas / ave when the dataset's tables get the paper's numbers beside ours, else None."""
    from avcmr.reporting.paper_numbers import paper_reference

    return paper_reference(dataset, SETTINGS[dataset].get("paper_reference"))


def gpus_of(method):
    """GPUs a training job of ``method`` asks for: 1 for the torch methods, 0 for the others."""
    from avcmr.methods.registry import uses_torch

    return 1 if uses_torch(method) else 0


def fit_threads(dataset):
    """Threads of one training job: the dataset's ``evaluation.threads_per_fit`` (default 2)."""
    return SETTINGS[dataset]["evaluation"].get("threads_per_fit", 2)


FIT_JOBS = ("per_method", "per_seed")


def fit_jobs_of(spec):
    """``evaluation.fit_jobs`` of a settings dict: per_method (the default) or per_seed."""
    return spec.get("evaluation", {}).get("fit_jobs", "per_method")


def fit_job_shape(spec):
    """What a training job covers: ``("per_seed", ())`` or ``("per_method", seeds)``."""
    mode = fit_jobs_of(spec)
    return (
        (mode, ()) if mode == "per_seed" else (mode, tuple(spec["evaluation"]["seeds"]))
    )


def training_rules():
    """The training rules to define, one per distinct job shape among the datasets, as (name, mode, seeds,
    regex of its datasets). Outputs stay per (method, seed); a per-method rule lists its seeds'
    files, so datasets with other seeds need a rule of their own. The shape of the global
    ``evaluation`` section (else the first dataset's) is named ``fit_evaluate``, the name profiles
    use (``set-threads``, ``set-resources``); any other is ``fit_evaluate_seeds_<seeds>`` or
    ``fit_evaluate_per_seed``.
    """
    shapes = {}
    for name, spec in SETTINGS.items():
        shapes.setdefault(fit_job_shape(spec), []).append(name)
    if not shapes:
        return []
    global_section = config.get("evaluation", {})
    main = (
        fit_job_shape({"evaluation": global_section})
        if "seeds" in global_section
        else next(iter(shapes))
    )
    rules = []
    for shape, names in shapes.items():
        mode, seeds = shape
        if shape == main:
            rule_name = "fit_evaluate"
        elif mode == "per_seed":
            rule_name = "fit_evaluate_per_seed"
        else:
            rule_name = "fit_evaluate_seeds_" + "_".join(
                str(s).replace("-", "m") for s in seeds
            )
        rules.append((rule_name, mode, seeds, "|".join(names)))
    return rules


def evaluation_targets(dataset, only=None, exclude=()):
    """Per-(method, seed) evaluation tables of the configured methods (optionally a subset)."""
    evaluation = SETTINGS[dataset]["evaluation"]
    methods = [
        method
        for method in evaluation["methods"]
        if (only is None or method in only) and method not in exclude
    ]
    return [
        f"results/{dataset}/eval/{method}_seed{seed}.parquet"
        for method in methods
        for seed in evaluation["seeds"]
    ]


def default_targets():
    targets = []
    for dataset in config.get("default_datasets", list(SETTINGS)):
        if dataset in ROUTES.missing:
            stop(ROUTES.missing[dataset])
        if dataset not in SETTINGS:
            stop(f"default_datasets names {dataset!r}, which is not under datasets:")
        targets += [
            f"results/{dataset}/{name}"
            for name in (
                "map.tsv",
                "failures.parquet",
                "acquisition.tsv",
                "table3.tsv",
                "job_costs.tsv",
            )
        ]
        methods = SETTINGS[dataset]["evaluation"]["methods"]
        if set(methods) - set(ABLATION_ONLY):
            targets.append(f"results/{dataset}/table2.tsv")
        if set(methods) & set(TABLE4_METHODS) - {"random"}:
            targets.append(f"results/{dataset}/table4.tsv")
        targets += report_targets(dataset)
    return targets


def keeps_decoded_frames(dataset):
    """``features.keep_decoded_frames`` of the dataset (its own section over the global one)."""
    return feature_settings(dataset).get("keep_decoded_frames", False)


def frames_kept_names(keep):
    """Regex alternation of the datasets that keep (``keep``) or drop their decoded frames.

    Output flags such as ``temp()`` cannot depend on wildcards, so decode.smk has two variants of
    the decode rule, one per answer, each constrained to its datasets' names.
    """
    names = [name for name in SETTINGS if keeps_decoded_frames(name) == keep]
    return "|".join(names) if names else "(?!)"


# --- memory declarations from the data's size (avcmr.resources) ---------------------------------


@functools.cache
def dataset_size(dataset):
    """(clips listed, classes, longest clip in s) of a dataset, known at parse time."""
    spec = SETTINGS[dataset]
    if spec["kind"] == "synthetic":
        from avcmr.data.synthetic import SyntheticSpec

        synthetic = spec.get("synthetic", {})
        return (
            synthetic.get("n_clips", SyntheticSpec.n_clips),
            synthetic.get("n_classes", SyntheticSpec.n_classes),
            synthetic.get("max_duration_s", SyntheticSpec.max_duration_s),
        )
    if spec["kind"] == "features":
        from avcmr.data.feature_file import FeatureFileError, FeatureFileSpec, file_size

        try:
            n_rows, n_classes = file_size(
                FeatureFileSpec.from_config(dataset, spec["feature_file"])
            )
        except FeatureFileError as error:
            stop(error)
        return n_rows, n_classes, 0.0  # pooled vectors: no frames
    clips = (
        youtube_listing(dataset).clips
        if spec["kind"] in YOUTUBE_KINDS
        else folder_listing(dataset)
    )
    # Clips of the YouTube datasets are ≤ 10 s; a folder's are assumed so too (decode.smk).
    return len(clips), clips["label"].nunique(), spec.get("clip_seconds", 10.0)


def feature_file_input(wildcards):
    """Input function of import_feature_file: the file, whose shapes are read here so that an
    unreadable file stops the run with its one line before any job (a memory estimate reading it
    first would be reported with a traceback)."""
    dataset_size(wildcards.dataset)
    return SETTINGS[wildcards.dataset]["feature_file"]["path"]


def test_clips(dataset):
    from avcmr.resources import expected_test_clips

    n_clips, n_classes, _ = dataset_size(dataset)
    split = SETTINGS[dataset]["split"]
    return expected_test_clips(
        n_clips, split["train_fraction"], split.get("test_size"), n_classes
    )


def mem_mb(stage):
    """Resources function: ``mem_mb`` of a dataset-wide job from the dataset's clip and test counts
    (avcmr.resources explains the terms), times the attempt (retries)."""
    from avcmr import resources

    def declared(wildcards, attempt):
        dataset = wildcards.dataset
        features = feature_settings(dataset)
        n_clips, _, longest_s = dataset_size(dataset)
        frames_per_clip = math.ceil(longest_s * features["fps"])
        if stage == "visual_pca":
            value = resources.visual_pca_mem_mb(
                n_clips, features["shard_size"], frames_per_clip
            )
        elif stage == "pool":
            value = resources.pool_mem_mb(
                n_clips, features["shard_size"], frames_per_clip, features["pca_dim"]
            )
        elif stage == "fit_evaluate":
            method = getattr(wildcards, "method", "ours")
            value = resources.fit_evaluate_mem_mb(
                n_clips,
                test_clips(dataset),
                features["pca_dim"],
                method,
                fit_threads(dataset),
            )
        elif stage == "table":
            evaluation = SETTINGS[dataset]["evaluation"]
            value = resources.table_mem_mb(
                test_clips(dataset),
                len(evaluation["methods"]) * len(evaluation["seeds"]),
            )
        else:
            raise ValueError(f"no memory estimate for {stage!r}")
        return attempt * value

    return declared


FAILURE_STAGES = {
    "synthetic": ["decode", "logmel", "vggish", "inception"],
    "folder": ["index", "decode", "logmel", "vggish", "inception"],
    "vegas": ["download", "decode", "logmel", "vggish", "inception"],
    "ave": ["download", "decode", "logmel", "vggish", "inception"],
    "audioset": ["download", "decode", "logmel", "vggish", "inception"],
    "vggsound": ["download", "decode", "logmel", "vggish", "inception"],
    "features": [],  # a bad feature file stops its import with one line: no per-clip failures
}


def failure_tables(dataset):
    stages = FAILURE_STAGES[SETTINGS[dataset]["kind"]]
    return [
        f"results/{dataset}/failures/{stage}/shard{shard}.parquet"
        for stage in stages
        for shard in shards(dataset)
    ]


def map_header(wildcards):
    spec = SETTINGS[wildcards.dataset]
    weights = backbone_facts(spec)["backbone_weights"]
    lines = [
        f"dataset: {wildcards.dataset} ({spec['kind']})",
        "backbone weights: " + "; ".join(f"{k}={v}" for k, v in weights.items()),
        f"config hash: {provenance('evaluation')(wildcards)['config_hash']}",
    ]
    if spec["kind"] == "features":
        lines.append(f"features: {released_features_line(spec)}")
    lines += route_header(wildcards.dataset)
    if backbone_facts(spec)["random_weights"]:
        lines.append(
            "WARNING: random backbone weights; these numbers are a pipeline check, not paper results"
        )
    return lines


# --- YouTube datasets (vegas, ave, audioset, vggsound; YOUTUBE_KINDS) ----------------------------
# Their lists (manifest, AudioSet segment CSVs) are read at parse time, so that the shards are
# known without checkpoints and `snakemake -n` shows the whole DAG. A list given as a URL is
# downloaded by `fetch_manifests`.

# Download settings that change which files land (a change re-runs the download shards); the
# pacing settings (sleep, back-off, attempts, rate limit, time-out, cookies) do not.
DOWNLOAD_CONTENT_KEYS = ("url_template", "format", "exact_cuts", "duration_tolerance_s")
LISTING_KEYS = (
    "kind",
    "manifest",
    "manifest_sha256",
    "classes",
    "duplicates",
    "window",
    "clip_seconds",
    "segments",
    "segments_sha256",
    "class_names",
    "max_per_class",
    "max_clips",
)
MANIFEST_HELP = {
    "vegas": "no public list of VEGAS's YouTube ids and times exists; whoever has one writes it "
    "as a CSV/TSV/Parquet table with columns youtube_id, start_s, end_s, label (clip_id "
    "optional) and sets datasets.<name>.manifest to its path or URL; otherwise see README, "
    "'Release archives', 'Released feature files' or 'AudioSet subsets'.",
    "ave": "AVE's Annotations.txt comes with the AVE release (github.com/YapengTian/AVE-ECCV18, "
    "data/Annotations.txt); set datasets.<name>.manifest to its path or URL.",
    "vggsound": "vggsound.csv (CC BY 4.0) comes from the VGGSound page of Oxford's Visual Geometry "
    "Group (www.robots.ox.ac.uk/~vgg/data/vggsound/); set datasets.<name>.manifest to its path "
    "(README, 'VGGSound').",
    "segments": "AudioSet's segment lists are published at "
    "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/ (README, 'AudioSet subsets').",
}


def youtube_names():
    """Regex alternation of the YouTube datasets' names (matches nothing when there is none)."""
    names = [n for n, spec in SETTINGS.items() if spec["kind"] in YOUTUBE_KINDS]
    return "|".join(names) if names else "(?!)"


def source_entries(dataset):
    """(role, configured path or URL, local path, expected sha256) of a dataset's list files."""
    spec = SETTINGS[dataset]
    entries = []
    if "manifest" in spec:
        entries.append(("manifest", spec["manifest"], spec.get("manifest_sha256")))
    try:
        segments = segment_sources(spec)
    except ManifestError as error:
        stop(f"dataset {dataset!r}: {error}")
    pinned = spec.get("segments_sha256", {})
    entries += [
        (f"segments{i}", s, pinned.get(Path(urlparse(s).path).name))
        for i, s in enumerate(segments)
    ]
    return [
        (role, source, local_list_path(dataset, role, source), sha256)
        for role, source, sha256 in entries
    ]


def manifest_inputs(wildcards):
    """Input function: the local list files of a YouTube dataset (none for other kinds)."""
    return list_files(wildcards.dataset)


def list_files(dataset):
    """{"manifest": local path (if the kind has one), "segments": [local paths]}; {} for other kinds."""
    if SETTINGS[dataset]["kind"] not in YOUTUBE_KINDS:
        return {}
    entries = source_entries(dataset)
    local = {role: path for role, _, path, _ in entries}
    inputs = {"manifest": local["manifest"]} if "manifest" in local else {}
    inputs["segments"] = [p for r, p in local.items() if r.startswith("segments")]
    return inputs


def remote_sources():
    """{cached path: (url, expected sha256)} of every list file configured as a URL."""
    return {
        local: (source, sha256)
        for dataset, spec in SETTINGS.items()
        if spec["kind"] in YOUTUBE_KINDS
        for _, source, local, sha256 in source_entries(dataset)
        if is_url(source)
    }


_YOUTUBE_LISTINGS = {}


def youtube_listing(dataset):
    """The parsed lists of a YouTube dataset, read once per Snakemake invocation."""
    if dataset in _YOUTUBE_LISTINGS:
        return _YOUTUBE_LISTINGS[dataset]
    spec = SETTINGS[dataset]
    entries = source_entries(dataset)
    for role, source, local, sha256 in entries:
        if not Path(local).is_file():
            if is_url(source):
                stop(
                    f"dataset {dataset!r}: the {role} list {source} is not downloaded yet; run "
                    f"`snakemake fetch_manifests --cores 1` (with the same --configfile if this run "
                    f"has one; needs internet) or download it to {local}"
                )
            stop(
                f"dataset {dataset!r}: {role} file {local} not found. "
                + MANIFEST_HELP.get(
                    spec["kind"] if role == "manifest" else "segments", ""
                )
            )
        try:
            check_sha256(local, sha256)
        except ManifestError as error:
            stop(f"dataset {dataset!r}: {error}")
    inputs = list_files(dataset)
    try:
        listing = dataset_listing(
            spec, inputs.get("manifest"), inputs["segments"], f"{MANIFEST_CACHE}/parsed"
        )
    except (ManifestError, OSError, ValueError, KeyError) as error:
        stop(f"dataset {dataset!r}: {error}")
    if listing.clips.empty:
        stop(f"dataset {dataset!r}: the manifest lists no clips")
    _YOUTUBE_LISTINGS[dataset] = listing
    return listing


def listed_split_input(wildcards):
    """Input function of `split`: the listing, whose split column is kept when split.from_manifest
    is set (vggsound)."""
    if SETTINGS[wildcards.dataset]["split"].get("from_manifest", False):
        return {"listing": f"results/{wildcards.dataset}/listing.parquet"}
    return {}


def download_content(wildcards):
    """Params function: the download settings that change which files land."""
    settings = SETTINGS[wildcards.dataset].get("download", {})
    return {k: settings[k] for k in DOWNLOAD_CONTENT_KEYS if k in settings}


def listing_spec(wildcards):
    """Params function: the part of a dataset's spec that decides its listing (and nothing else,
    so that other changes do not re-run the listing and, after it, the downloads)."""
    spec = SETTINGS[wildcards.dataset]
    keys = LISTING_KEYS + ("synthetic", "root", "extensions", "n_shards", "layout")
    subset = {k: spec[k] for k in keys if k in spec}
    if spec.get("max_clips") or spec.get("max_per_class"):  # seeded draws of the list
        subset["split"] = {"seed": spec["split"]["seed"]}
    return subset


def listing_provenance(wildcards):
    """Params function: provenance of the listing and the downloads (only what changes them)."""
    spec = SETTINGS[wildcards.dataset]
    parts = {
        **listing_spec(wildcards),
        "shard_size": spec["features"]["shard_size"],
        "download": download_content(wildcards),
    }
    return {"dataset": wildcards.dataset, "config_hash": config_hash(parts)}


def media_dir(wildcards):
    """Where a vegas/ave dataset's clips land (kept across runs: downloads resume from it)."""
    root = SETTINGS[wildcards.dataset].get("media_dir", "resources/media")
    return f"{root}/{wildcards.dataset}"


def official_weights():
    """url, path, sha256 (+ published md5) of each official backbone file (config: official_weights)."""
    from avcmr.features.weights import official_file_settings

    try:
        return official_file_settings(config.get("official_weights"))
    except ValueError as error:
        stop(error)


def backbone_weight_files(backbone):
    """Input function: the files of a backbone's weights (none when random), so that a missing
    official file is fetched by its `fetch_weights_*` rule and a replaced file re-runs the extraction.
    A TF checkpoint given as a prefix (``x.ckpt`` with ``x.ckpt.index`` + data files) is its files.
    """

    def files(wildcards):
        spec = SETTINGS[wildcards.dataset]
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

    return files


def benchmark_files(wildcards):
    """Input function: the benchmark files of the dataset's per-shard and training jobs, by rule."""
    dataset = wildcards.dataset
    stages = [
        stage
        for stage in ("decode", "logmel", "vggish", "inception")
        if stage in FAILURE_STAGES[SETTINGS[dataset]["kind"]]
    ]
    files = {
        stage: [
            f"results/{dataset}/benchmarks/{stage}/shard{shard}.tsv"
            for shard in shards(dataset)
        ]
        for stage in stages
    }
    evaluation = SETTINGS[dataset]["evaluation"]
    per_seed = fit_jobs_of(SETTINGS[dataset]) == "per_seed"
    files["fit_evaluate"] = [
        f"results/{dataset}/benchmarks/fit_evaluate/{method}"
        + (f"_seed{seed}.tsv" if per_seed else ".tsv")
        for method in evaluation["methods"]
        for seed in (evaluation["seeds"] if per_seed else [None])
    ]
    return files
