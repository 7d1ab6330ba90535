"""Real Snakemake runs: a release archive served on loopback flows to map.tsv, and a folder dataset
follows its folder (an added clip gets features and a removed one leaves the results, while the
other shards stay untouched). One workdir, runs in sequence, to keep CI time small."""

import hashlib
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from report_run import ONE_THREAD_BACKBONES, REPO, SNAKEMAKE
from test_io_http_fetch import ArchiveServer

from avcmr.io.parquet import read_table

CLASSES = 3

pytestmark = pytest.mark.slow


def map_counts(path: Path) -> pd.Series:
    table = pd.read_csv(path, sep="\t", comment="#")
    return table["n_train"] + table["n_test"]


def vectors(workdir: Path, dataset: str, stage: str) -> dict[str, bytes]:
    """Per clip, the raw bytes of its feature rows (all seconds) across the shards of a stage."""
    rows = {}
    for path in sorted((workdir / "results" / dataset / stage).glob("shard*.parquet")):
        table = read_table(path).to_pandas()
        column = "embedding" if "embedding" in table.columns else table.columns[-1]
        for clip_id, group in table.groupby("clip_id", sort=True):
            rows[clip_id] = np.stack(group[column].to_numpy()).astype(np.float32).tobytes()
    return rows


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four real clips per class (H.264 + AAC) from the synthetic generator."""
    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips

    spec = SyntheticSpec(n_classes=CLASSES, n_clips=4 * CLASSES, min_duration_s=2, max_duration_s=3, hard_fraction=0,
                         mislabeled_fraction=0, width=96, height=72, seed=5)
    return write_clips(plan_clips(spec), spec, tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def run(clips, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sources")
    first3 = clips.groupby("label").head(3)
    folder = workdir / "my_clips"
    for clip in first3.itertuples():
        (folder / clip.label).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip.path, folder / clip.label / f"{clip.clip_id}.mp4")
    archive = workdir / "VEGAS.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for clip in first3.itertuples():
            handle.write(clip.path, f"VEGAS/{clip.label}/videos/{clip.clip_id}.mp4")
        handle.writestr("../../escaped.mp4", b"outside")
        link = zipfile.ZipInfo(f"VEGAS/{first3.label.iloc[0]}/videos/link.mp4")
        link.create_system, link.external_attr = 3, 0o120777 << 16
        handle.writestr(link, "/etc/passwd")
    data = archive.read_bytes()
    server = ArchiveServer({"VEGAS.zip": data})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())
    common = {"allow_random_weights": True, "backbone_weights": {"vggish": "random", "inception": "random", "seed": 0},
              "features": {"pca_dim": 4}}
    config["datasets"] = {
        "mine": {"kind": "folder", "root": str(folder), "n_shards": 2, **common},
        "vegas_zip": {"kind": "folder", "archive": server.url("VEGAS.zip"), "layout": "VEGAS/{label}/videos/{clip}.mp4",
                      "archive_sha256": hashlib.sha256(data).hexdigest(), "archive_bytes": len(data), **common},
    }
    config["default_datasets"] = ["mine", "vegas_zip"]
    config["evaluation"] = {"methods": ["random", "cca"], "seeds": [0]}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # Rerun on content only (not on edits of the workflow's code made while the test runs).
    command = ONE_THREAD_BACKBONES + ["--directory", str(workdir), "--configfile", str(config_path), "--cores", "2",
                                      "--rerun-triggers", "mtime", "params", "input"]
    yield workdir, command, folder, server
    server.shutdown()
    server.server_close()


def snakemake(options, *targets, dry=False):
    return subprocess.run(SNAKEMAKE + list(targets) + options + (["--dry-run"] if dry else []),
                          capture_output=True, text=True, timeout=1500)


def test_archive_then_folder_changes(run, clips):
    workdir, command, folder, server = run
    # Before the archive is unpacked, the run says which command to run.
    early = snakemake(command, "results/vegas_zip/map.tsv", dry=True)
    assert early.returncode != 0 and "snakemake fetch_archives --cores 1" in early.stdout + early.stderr
    fetched = snakemake(command, "fetch_archives")
    assert fetched.returncode == 0, fetched.stderr[-4000:]
    assert server.bytes_served == len(server.files["VEGAS.zip"])
    assert not (workdir / "escaped.mp4").exists() and not (workdir.parent / "escaped.mp4").exists()

    result = snakemake(command, "results/mine/map.tsv", "results/vegas_zip/map.tsv", "results/vegas_zip/failures.parquet")
    assert result.returncode == 0, result.stderr[-4000:]
    # The archive's clips flow to map.tsv; its bad members are failure rows of the index stage.
    assert (map_counts(workdir / "results/vegas_zip/map.tsv") == 3 * CLASSES).all()
    failures = read_table(workdir / "results/vegas_zip/failures.parquet").to_pandas()
    reasons = dict(zip(failures["clip_id"], failures["reason"], strict=True))
    assert set(failures["stage"]) == {"index"}
    assert any("'..' in its path" in reason for reason in reasons.values())
    assert "symbolic link" in reasons[f"{clips.label.iloc[0]}__link"]
    assert (map_counts(workdir / "results/mine/map.tsv") == 3 * CLASSES).all()

    # Add a clip and remove another of the same shard, in one step: only that shard reruns; the
    # other shard's files are untouched, and the shard's other clips get byte-identical features
    # too (batches never straddle two clips); the removed clip leaves features.parquet and map.tsv.
    from avcmr.data.folder import shard_of

    shard_files = {p: p.stat().st_mtime_ns for p in (workdir / "results/mine").glob("*/shard*.parquet")}
    audio_before, visual_before = vectors(workdir, "mine", "vggish"), vectors(workdir, "mine", "inception")
    extra = clips.groupby("label").nth(3).iloc[0]
    added_id = f"{extra.label}__{extra.clip_id}"
    added_shard = shard_of(added_id, 2)
    removed_id = next(clip_id for clip_id in sorted(audio_before) if shard_of(clip_id, 2) == added_shard)
    assert any(shard_of(clip_id, 2) != added_shard for clip_id in audio_before)
    shutil.copy(extra.path, folder / extra.label / f"{extra.clip_id}.mp4")
    removed_label, removed_stem = removed_id.split("__", 1)
    (folder / removed_label / f"{removed_stem}.mp4").unlink()
    plan = snakemake(command, "results/mine/map.tsv", dry=True)
    assert "index_folder_shard" in plan.stdout and "Nothing to be done" not in plan.stdout
    result = snakemake(command, "results/mine/map.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    audio_after, visual_after = vectors(workdir, "mine", "vggish"), vectors(workdir, "mine", "inception")
    assert set(audio_after) == (set(audio_before) - {removed_id}) | {added_id} and set(visual_after) == set(audio_after)
    kept = set(audio_before) - {removed_id}
    assert any(shard_of(clip_id, 2) == added_shard for clip_id in kept)  # the rerun shard kept clips
    for clip_id in kept:
        for before, after in ((audio_before, audio_after), (visual_before, visual_after)):
            assert after[clip_id] == before[clip_id], clip_id
    features = read_table(workdir / "results/mine/features.parquet").to_pandas()
    assert added_id in set(features["clip_id"]) and removed_id not in set(features["clip_id"])
    assert len(features) == 3 * CLASSES
    assert (map_counts(workdir / "results/mine/map.tsv") == 3 * CLASSES).all()
    unchanged = {p: t for p, t in shard_files.items() if f"shard{added_shard}." not in p.name}
    assert unchanged and all(p.stat().st_mtime_ns == t for p, t in unchanged.items())
    assert "Nothing to be done" in snakemake(command, "results/mine/map.tsv", dry=True).stdout
