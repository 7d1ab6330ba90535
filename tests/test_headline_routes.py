"""`snakemake --cores 8 results/vegas/map.tsv` (and results/ave/...) with the default config: the
dataset takes the first route whose file is present (released feature file > release archive >
manifest, config/config.yaml's `kind: auto` entries, avcmr.routes), with files written here in the
published layouts; with none present the run stops before any job with one line. Every config or
data error of the real `snakemake` command is one line on stderr, without a traceback."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from snakemake.utils import update_config

from avcmr.config import ConfigError, check_config_schema
from avcmr.routes import resolve_auto_datasets, route_line

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"

# The documented places of each route's files (config/*_features.yaml, *_archive.yaml, vegas.yaml, ave.yaml).
PLACES = {
    "vegas": {
        "features": ["resources/features/vegas_feature.h5"],
        "archive": ["resources/archives/VEGAS.zip"],
        "manifest": ["resources/manifests/vegas.tsv"],
    },
    "ave": {
        "features": ["resources/features/AVE_feature_updated_squence.h5"],
        "archive": ["resources/archives/AVE_Dataset.zip", "resources/manifests/ave/Annotations.txt"],
        # the copy `fetch_manifests` makes of the configured URL
        "manifest": ["resources/manifests/ave/manifest_Annotations.txt"],
    },
}
ROUTE_FILES = {"features": "{name}_features.yaml", "archive": "{name}_archive.yaml", "manifest": "{name}.yaml"}
AVE_CLASSES = ("Bark", "Cat", "Helicopter")


# --- files in the published layouts ----------------------------------------------------------------


def write_feature_file(path: Path, n_classes: int, n_train: int = 40, n_test: int = 20) -> None:
    """vegas_feature.h5's layout: {audio,visual,lab}_{train,test}, 128-D audio, 1024-D visual."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        for part, n_rows in (("train", n_train), ("test", n_test)):
            handle.create_dataset(f"audio_{part}", data=rng.normal(size=(n_rows, 128)).astype(np.float32))
            handle.create_dataset(f"visual_{part}", data=rng.normal(size=(n_rows, 1024)).astype(np.float32))
            handle.create_dataset(f"lab_{part}", data=np.arange(n_rows) % n_classes)


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def clip_bytes(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest() * 100


def place(workdir: Path, dataset: str, route: str) -> None:
    """Write the route's files where the route looks for them."""
    paths = [workdir / p for p in PLACES[dataset][route]]
    ave_ids = [f"{letter * 11}" for letter in "abc"]
    if route == "features":
        write_feature_file(paths[0], n_classes=10 if dataset == "vegas" else 15)
    elif route == "archive" and dataset == "vegas":
        write_zip(paths[0], {f"VEGAS/{label}/videos/{label}_{i}.mp4": clip_bytes(f"{label}{i}")
                             for label in ("dog", "drum") for i in range(2)})
    elif route == "archive":
        write_zip(paths[0], {f"AVE/{youtube_id}.mp4": clip_bytes(youtube_id) for youtube_id in ave_ids})
        paths[1].parent.mkdir(parents=True, exist_ok=True)
        paths[1].write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "".join(
            f"{label}&{youtube_id}&good&0&10\n" for label, youtube_id in zip(AVE_CLASSES, ave_ids, strict=True)))
    elif dataset == "vegas":
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        paths[0].write_text("youtube_id\tstart_s\tend_s\tlabel\nabcdefghijk\t30\t40\tdog\nbcdefghijkl\t0\t10\tdrum\n")
    else:  # a local Annotations.txt that is not the published one (its sha256 is pinned in ave.yaml)
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        paths[0].write_text("Category&VideoID&Quality&StartTime&EndTime\nBark&aaaaaaaaaaa&good&0&10\n")


def default_config() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def route_entry(dataset: str, route: str) -> dict:
    config = yaml.safe_load((REPO / "config" / ROUTE_FILES[route].format(name=dataset)).read_text())
    return config["datasets"][dataset if route != "archive" else f"{dataset}_archive"]


# --- the route choice (avcmr.routes) ----------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["vegas", "ave"])
def test_the_first_route_present_is_chosen_in_order(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for route in ("features", "archive", "manifest"):
        place(tmp_path, dataset, route)
    expected = [("features", f"config/{dataset}_features.yaml"), ("archive", f"config/{dataset}_archive.yaml"),
                ("manifest", f"config/{dataset}.yaml")]
    for route, config_file in expected:
        config = default_config()
        resolution = resolve_auto_datasets(config, REPO)
        assert config["datasets"][dataset] == route_entry(dataset, route)  # the route file's entry, as it is
        chosen = resolution.chosen[dataset]
        assert chosen.route.config_file == config_file and dataset not in resolution.missing
        assert route_line(dataset, config["datasets"][dataset]) == f"route: {chosen.route.describe()}"
        assert chosen.route.inputs == tuple(PLACES[dataset][route])
        header = chosen.header_line()
        assert header.startswith(f"route chosen: {chosen.route.label} (settings: {config_file}), the first present of ")
        assert all(path in header for paths in PLACES[dataset].values() for path in paths)
        check_config_schema(config, SCHEMA)  # the resolved config is a valid one
        # Take this route's (first) file away: the next route is chosen.
        (tmp_path / PLACES[dataset][route][0]).unlink()
    config = default_config()
    resolution = resolve_auto_datasets(config, REPO)
    assert dataset not in config["datasets"] and dataset in resolution.missing


def test_an_archive_without_its_annotations_is_not_a_route_present(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    place(tmp_path, "ave", "archive")
    place(tmp_path, "ave", "manifest")
    (tmp_path / "resources/manifests/ave/Annotations.txt").unlink()
    resolution = resolve_auto_datasets(default_config(), REPO)
    assert resolution.chosen["ave"].route.config_file == "config/ave.yaml"
    (tmp_path / "resources/manifests/ave/manifest_Annotations.txt").unlink()
    message = resolve_auto_datasets(default_config(), REPO).missing["ave"]
    assert "(config/ave_archive.yaml, missing resources/manifests/ave/Annotations.txt;" in message


def test_with_no_route_present_the_reason_is_one_line_naming_every_route_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_config()
    resolution = resolve_auto_datasets(config, REPO)
    assert list(config["datasets"]) == ["synthetic"] and not resolution.chosen  # the demo alone is left
    for dataset in ("vegas", "ave"):
        message = resolution.missing[dataset]
        assert "\n" not in message
        assert message.startswith(f"dataset {dataset!r}: none of its routes is present; put one of these in place: ")
        positions = [message.index(path) for route in ("features", "archive", "manifest")
                     for path in PLACES[dataset][route]]
        assert positions == sorted(positions)  # in the order they are tried
        for route in ("features", "archive", "manifest"):
            assert f"config/{ROUTE_FILES[route].format(name=dataset)}" in message
        assert "then `snakemake fetch_archives --cores 1` unpacks it" in message
        assert "missing" not in message  # no route is partly there
    assert ("`snakemake fetch_manifests --cores 1 --configfile config/ave.yaml` downloads it from "
            "https://raw.githubusercontent.com/YapengTian/AVE-ECCV18/master/data/Annotations.txt") in resolution.missing["ave"]


@pytest.mark.parametrize("name", ["vegas_features", "vegas_archive", "vegas", "ave_features", "ave_archive", "ave"])
def test_an_explicit_configfile_merged_as_snakemake_merges_it_keeps_its_entry(name, tmp_path, monkeypatch):
    """Snakemake updates the default config with a --configfile key by key: the default's `routes`
    stay under an explicit `vegas` entry, and are dropped; an entry of another name leaves the
    auto dataset as it is."""
    monkeypatch.chdir(tmp_path)
    place(tmp_path, "vegas", "features")  # present, yet an explicit vegas entry wins
    explicit = yaml.safe_load((REPO / f"config/{name}.yaml").read_text())
    config = default_config()
    update_config(config, explicit)
    dataset = explicit["default_datasets"][0]
    if dataset in ("vegas", "ave"):
        assert "routes" in config["datasets"][dataset]  # what the merge leaves
    resolution = resolve_auto_datasets(config, REPO)
    assert config["datasets"][dataset] == explicit["datasets"][dataset]
    assert dataset not in resolution.chosen and dataset not in resolution.missing
    assert "vegas" in config["datasets"]  # the auto vegas (feature file present) or the explicit one
    assert ("vegas" in resolution.chosen) == (dataset != "vegas")
    check_config_schema(config, SCHEMA)


def test_keys_beside_the_routes_apply_to_the_chosen_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    place(tmp_path, "vegas", "features")
    config = default_config()
    update_config(config, {"datasets": {"vegas": {"budget": "quick", "evaluation": {"seeds": [0]}}}})
    resolve_auto_datasets(config, REPO)
    entry = route_entry("vegas", "features")
    assert config["datasets"]["vegas"] == {**entry, "budget": "quick", "evaluation": {"seeds": [0]}}
    assert entry["budget"] == "paper"


@pytest.mark.parametrize(("routes", "expected"), [
    (None, "config key datasets.vegas.routes: kind auto needs a list of routes"),
    ("config/vegas.yaml", "config key datasets.vegas.routes: kind auto needs a list of routes"),
    ([{"entry": "vegas"}], "config key datasets.vegas.routes.0: a route is {config: <file>, entry: <name>}"),
    ([{"config": "config/nope.yaml"}], "config key datasets.vegas.routes.0.config: {repo}/config/nope.yaml not found"),
    ([{"config": "config/vegas.yaml", "entry": "vegaz"}],
     "config key datasets.vegas.routes.0: config/vegas.yaml has no complete dataset entry datasets.vegaz"),
], ids=["missing", "not-a-list", "no-config", "no-file", "no-entry"])
def test_malformed_routes_are_one_line_config_errors(routes, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_config()
    config["datasets"]["vegas"] = {"kind": "auto", **({"routes": routes} if routes is not None else {})}
    with pytest.raises(ConfigError) as raised:
        resolve_auto_datasets(config, REPO)
    assert str(raised.value).startswith(expected.replace("{repo}", str(REPO))) and "\n" not in str(raised.value)


def test_route_lines_name_the_source_and_where_the_workflow_reads_it():
    assert route_line("v", {"kind": "features", "feature_file": {"path": "f.h5"}}) == "route: released feature file f.h5"
    archive = {"kind": "folder", "archive": "https://example.org/dl/VEGAS.zip?x=1", "layout": "x"}
    assert route_line("v", archive) == "route: release archive resources/archives/v/download/VEGAS.zip"
    ave = {"kind": "ave", "manifest": "https://example.org/a/Annotations.txt"}
    assert route_line("a", ave) == "route: manifest resources/manifests/a/manifest_Annotations.txt"
    assert route_line("s", {"kind": "synthetic"}) is None


def test_the_acquisition_summary_ends_its_header_with_the_route(tmp_path):
    from avcmr.stages.acquire import write_listing
    from avcmr.stages.report import acquisition_summary

    place(tmp_path, "vegas", "manifest")
    manifest = tmp_path / PLACES["vegas"]["manifest"][0]
    spec = {"kind": "vegas", "manifest": str(manifest), "split": {"seed": 0}}
    write_listing(spec, 10, tmp_path / "listing.parquet", {"dataset": "vegas"}, manifest, [])
    acquisition_summary(tmp_path / "listing.parquet", [], [], [], [], tmp_path / "acquisition.tsv",
                        header=[route_line("vegas", spec)])
    header = [line for line in (tmp_path / "acquisition.tsv").read_text().splitlines() if line.startswith("#")]
    assert header[0].startswith("# source manifest: ") and header[-1] == f"# route: manifest {manifest}"


# --- the real `snakemake` command in a working folder like a checkout ----------------------------------


@pytest.fixture
def workdir(tmp_path):
    for name in ("Snakefile", "workflow", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a user types it in the checkout (the Snakefile's own config/config.yaml)."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=600)


def planned(result: subprocess.CompletedProcess) -> Counter:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Counter(re.findall(r"^(?:local)?rule (\w+):$", result.stdout, re.MULTILINE))


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The run failed with one error line, the last of stderr, and no traceback. A dry run prints
    Snakemake's banner and progress on stdout, so there the line is the whole of stderr; a real run
    logs them to stderr, before it."""
    assert result.returncode != 0, result.stdout[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    if "-n" in result.args:
        assert lines == errors, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr and 'File "' not in result.stdout + result.stderr
    assert errors[0].startswith("Error: ")
    return errors[0]


def test_without_any_route_the_demo_plans_and_the_paper_datasets_stop_with_one_line(workdir):
    assert planned(snakemake(workdir, "-n", "--cores", "2"))["map_table"] == 1  # the default target: the demo
    assert planned(snakemake(workdir, "-n", "results/synthetic/map.tsv"))["map_table"] == 1
    for dataset in ("vegas", "ave"):
        line = one_line_error(snakemake(workdir, "--cores", "8", f"results/{dataset}/map.tsv"))
        assert f"dataset {dataset!r}: none of its routes is present" in line
        assert all(path in line for paths in PLACES[dataset].values() for path in paths)
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()
    assert not any((workdir / ".snakemake/locks").glob("*"))  # stopped before the lock: nothing to unlock


def test_each_route_present_is_the_one_planned(workdir):
    place(workdir, "vegas", "manifest")
    assert planned(snakemake(workdir, "-n", "results/vegas/clips/shard0.parquet"))["download_shard"] == 1
    place(workdir, "vegas", "archive")
    line = one_line_error(snakemake(workdir, "-n", "results/vegas/clips/shard0.parquet"))
    assert "the archive resources/archives/VEGAS.zip is not unpacked yet; run `snakemake fetch_archives --cores 1` " in line
    unpack = snakemake(workdir, "fetch_archives", "--cores", "1")  # the command the line gives, as it is
    assert unpack.returncode == 0, unpack.stderr[-3000:]
    assert (workdir / "resources/archives/vegas/members.parquet").is_file()
    assert planned(snakemake(workdir, "-n", "results/vegas/clips/shard0.parquet")) == Counter({"index_folder_shard": 1})
    place(workdir, "vegas", "features")
    assert planned(snakemake(workdir, "-n", "results/vegas/features.parquet")) == Counter({"import_feature_file": 1})
    # An explicit --configfile still picks its own route, whatever is present.
    explicit = snakemake(workdir, "-n", "results/vegas/clips/shard0.parquet", "--configfile", "config/vegas.yaml")
    assert planned(explicit)["download_shard"] == 1


@pytest.mark.parametrize(("setup", "args", "expected"), [
    (None, ["results/vegas/map.tsv"], "dataset 'vegas': none of its routes is present"),
    ({"config": {"default_datasets": ["ave"]}}, [], "dataset 'ave': none of its routes is present"),
    ({"config": {"featurez": {}}}, ["results/synthetic/map.tsv"], "unknown config key featurez; allowed here: "),
    ({"config": {"method_params": {"cca": {"n_componentz": 3}}}}, ["results/synthetic/map.tsv"],
     "config key method_params.cca.n_componentz: cca has no parameter 'n_componentz'"),
    ({"config": {"datasets": {"vegas": {"routes": [{"config": "config/nope.yaml"}]}}}}, ["results/synthetic/map.tsv"],
     "config key datasets.vegas.routes.0.config: "),
    ({"config": {"datasets": {"mine": {"kind": "folder", "root": "no/such/folder", "allow_random_weights": True}}}},
     ["results/synthetic/map.tsv"], "dataset 'mine': folder root 'no/such/folder' does not exist"),
    ({"file": ("resources/features/vegas_feature.h5", b"not an HDF5 file")}, ["results/vegas/map.tsv"],
     "dataset 'vegas': cannot read the row counts of resources/features/vegas_feature.h5"),
    ({"route": ("vegas", "archive")}, ["results/vegas/map.tsv"],
     "dataset 'vegas': the archive resources/archives/VEGAS.zip is not unpacked yet"),
    ({"route": ("ave", "manifest")}, ["results/ave/map.tsv"],
     "dataset 'ave': resources/manifests/ave/manifest_Annotations.txt has sha256 "),
    ({"file": ("resources/manifests/vegas.tsv", b"youtube_id\tlabel\nabc\tdog\n")}, ["results/vegas/map.tsv"],
     "dataset 'vegas': resources/manifests/vegas.tsv: manifest lacks the columns"),
], ids=["no-route", "no-route-default-target", "unknown-key", "method-parameter", "route-file", "folder-root",
        "feature-file", "archive-not-unpacked", "manifest-sha256", "manifest-columns"])
def test_config_and_data_errors_are_one_line_without_traceback(setup, args, expected, workdir):
    extra = []
    setup = setup or {}
    if "config" in setup:
        (workdir / "extra.yaml").write_text(yaml.safe_dump(setup["config"]))
        extra = ["--configfile", "extra.yaml"]
    if "file" in setup:
        path, content = setup["file"]
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_bytes(content)
    if "route" in setup:
        place(workdir, *setup["route"])
    line = one_line_error(snakemake(workdir, "-n", "--cores", "1", *args, *extra))
    assert expected in line
    assert not (workdir / "results").exists()


@pytest.mark.slow
def test_the_headline_command_records_its_route_and_the_explicit_configfile_reuses_its_results(workdir):
    """The features route for real (a small file in the published layout; one fast method via keys
    beside the routes), then the same dataset through --configfile config/vegas_features.yaml: the
    same settings, so only map.tsv, whose header names how the route was chosen, is rebuilt."""
    place(workdir, "vegas", "features")
    fast = {"datasets": {"vegas": {"budget": "quick", "evaluation": {"methods": ["random"], "seeds": [0],
                                                                      "threads_per_fit": 1}}}}
    (workdir / "fast.yaml").write_text(yaml.safe_dump(fast))
    run = snakemake(workdir, "--cores", "2", "results/vegas/map.tsv", "--configfile", "fast.yaml")
    assert run.returncode == 0, run.stderr[-4000:]
    route = "route: released feature file resources/features/vegas_feature.h5"
    acquisition = (workdir / "results/vegas/acquisition.tsv").read_text().splitlines()
    assert f"# {route}" in acquisition
    header = [line[2:] for line in (workdir / "results/vegas/map.tsv").read_text().splitlines() if line.startswith("# ")]
    assert route in header
    assert ("route chosen: released feature file (settings: config/vegas_features.yaml), the first present of "
            "released feature file resources/features/vegas_feature.h5 > release archive resources/archives/VEGAS.zip "
            "> manifest resources/manifests/vegas.tsv") in header
    explicit = snakemake(workdir, "-n", "results/vegas/map.tsv", "--configfile", "config/vegas_features.yaml",
                         "fast.yaml")
    assert planned(explicit) == Counter({"map_table": 1})
