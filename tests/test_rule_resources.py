"""Every rule's threads and resources hold on a laptop and scale on a cluster.

Read from Snakemake's own dry-run (the resources each job would get) for a synthetic dataset at
VEGAS scale (28,103 clips): a shard job's memory grows with the shard size, never with the number
of clips, and equals the bound its rule's comment states (``# Memory: A MB + B MB per clip of the
shard`` or ``# Memory: A MB, fixed``); the dataset-wide jobs (PCA, pooling, training, tables) declare what
avcmr.resources computes from the dataset's size, which grows with it; through ``--profile profiles/slurm`` the
cluster sees a few hundred jobs, not thousands.
"""

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((REPO / "workflow/rules").glob("*.smk"))
VEGAS_CLIPS = 28_103
SHARD_SIZE = yaml.safe_load((REPO / "config/config.yaml").read_text())["features"]["shard_size"]
LAPTOP_MB = 8_000  # a job must leave a quarter of an 8 GB laptop to the system
MEMORY_COMMENT = re.compile(r"# Memory: (\d+) MB(?: \+ (\d+) MB per clip of the shard|, fixed)")
# Dataset-wide jobs declare memory from the dataset's clip and test counts (avcmr.resources, checked
# against measured peaks in test_memory_declarations.py): `mem_mb=mem_mb("<stage>")`.
DATA_SIZED = re.compile(r'^        mem_mb=mem_mb\("\w+"\),$', re.MULTILINE)
DATA_SIZED_COMMENT = re.compile(r"# Memory: [^\n]*(?:\n\s*#[^\n]*)*avcmr\.resources")


def rule_blocks() -> dict[str, str]:
    """Rule name → its source text (from `rule NAME:` to the next top-level statement). A rule made
    in a loop (`rule:` indented, with `name:`: weights.smk's one per official file, train.smk's
    training rules) is keyed by its `name:` text (``fetch_weights_{_name}``, ``_rule_name``) and its
    body un-indented by the loop's indentation, like a top-level rule's."""
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.MULTILINE):
            blocks[match.group(1)] = match.group(2)
        for match in re.finditer(r"^( +)rule:\n((?:\1[ \t]+.*\n|\n)*)", text, re.MULTILINE):
            body = re.sub(rf"^{match.group(1)}", "", match.group(2), flags=re.MULTILINE)
            name = re.search(r'^    name:\n\s+f?"?([^"\n]+)"?$', body, re.MULTILINE)
            assert name, f"{path.name}: a rule made in a loop has no name:"
            blocks[name.group(1)] = body
    return blocks


def test_rules_made_in_a_loop_are_read_too():
    blocks = rule_blocks()
    assert {"fetch_weights_{_name}", "fetch_weights", "_rule_name"} <= set(blocks)
    assert re.search(r"^    resources:\n        mem_mb=", blocks["fetch_weights_{_name}"], re.MULTILINE)


def dry_run(tmp_path: Path, n_clips: int, shard_size: int, *args: str, dataset_features=None) -> list[dict]:
    """The jobs of a dry-run of `all` for a synthetic dataset: rule, wildcards, threads, resources."""
    config = {
        "default_datasets": ["big"],
        "datasets": {"big": {"kind": "synthetic", "synthetic": {"n_classes": 10, "n_clips": n_clips},
                             "backbone_weights": {"vggish": "random", "inception": "random", "seed": 0},
                             **({"features": dataset_features} if dataset_features else {})}},
        "features": {"shard_size": shard_size},
    }
    suffix = "_".join(args).replace("/", "_") + ("_".join(map(str, dataset_features.values())) if dataset_features else "")
    workdir = tmp_path / f"n{n_clips}_s{shard_size}{suffix}"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(REPO / "config/config.yaml"), str(workdir / "config.yaml"), "--dry-run", *args],
        capture_output=True, text=True, timeout=600, cwd=workdir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return parse_jobs(result.stdout)


def parse_jobs(dry_run_output: str) -> list[dict]:
    """Jobs of a dry-run: rule, group ((name, n) when printed under the n-th 'Group job NAME' header),
    wildcards, threads, resources."""
    jobs, group, n_groups = [], None, 0
    for line in dry_run_output.splitlines():
        if header := re.search(r"\] Group job (\w+) ", line):
            n_groups += 1
            group = (header.group(1), n_groups)
        elif rule := re.fullmatch(r"( *)(?:local)?rule (\w+):", line):
            jobs.append({"rule": rule.group(2), "group": group if rule.group(1) else None, "wildcards": {},
                         "threads": 1, "resources": {}})
        elif jobs and (field := re.fullmatch(r" +(wildcards|threads|resources): (.*)", line)):
            key, value = field.groups()
            jobs[-1][key] = int(value) if key == "threads" else dict(
                item.split("=", 1) for item in value.split(", ") if "=" in item)
    assert jobs, dry_run_output[-3000:]
    return jobs


def memory_per_rule(jobs: list[dict]) -> dict[str, set]:
    values: dict[str, set] = {}
    for job in jobs:
        values.setdefault(job["rule"], set()).add(job["resources"].get("mem_mb"))
    return values


@pytest.fixture(scope="module")
def cluster_jobs(tmp_path_factory):
    """VEGAS scale, through the SLURM profile (a dry-run never submits)."""
    return dry_run(tmp_path_factory.mktemp("dry"), VEGAS_CLIPS, SHARD_SIZE, "--profile", str(REPO / "profiles/slurm"))


@pytest.fixture(scope="module")
def laptop_jobs(tmp_path_factory):
    """A small dataset on a 2-core laptop, at the default and at 2.5× the default shard size."""
    tmp = tmp_path_factory.mktemp("dry")
    return {size: dry_run(tmp, 1_000, size, "--cores", "2") for size in (SHARD_SIZE, SHARD_SIZE * 5 // 2)}


def test_every_rule_declares_threads_memory_and_runtime():
    for rule, block in rule_blocks().items():
        if re.search(r"^    localrule: True", block, re.MULTILINE) and "script:" not in block:
            continue  # a target that only gathers files
        # Training jobs take their count from the dataset's `evaluation.threads_per_fit`.
        threads = r"^    threads: ([12]|lambda wc: (fit|backbone)_threads\(wc\.dataset\))$"
        assert re.search(threads, block, re.MULTILINE), f"{rule}: threads 1 or 2 on a laptop"
        assert re.search(r"^        mem_mb=", block, re.MULTILINE), f"{rule}: no mem_mb"
        assert re.search(r"^        runtime=", block, re.MULTILINE), f"{rule}: no runtime"


def test_laptop_jobs_use_one_or_two_threads(laptop_jobs):
    for jobs in laptop_jobs.values():
        threads = {job["rule"]: job["threads"] for job in jobs}
        assert set(threads.values()) <= {1, 2}, threads
        assert threads["fit_evaluate"] == 2  # the default `evaluation.threads_per_fit`
        assert threads["vggish"] == threads["inception"] == 2  # the default `features.backbone_threads`


def test_a_datasets_backbone_threads_set_its_vggish_and_inception_jobs(tmp_path):
    jobs = dry_run(tmp_path, 300, SHARD_SIZE, "--cores", "2", dataset_features={"backbone_threads": 1})
    threads = {(job["rule"], job["threads"]) for job in jobs if job["rule"] in ("vggish", "inception")}
    assert threads == {("vggish", 1), ("inception", 1)}


def test_memory_bound_is_stated_in_every_rules_comment():
    for rule, block in rule_blocks().items():
        if DATA_SIZED.search(block):
            assert DATA_SIZED_COMMENT.search(block), f"rule {rule}: no '# Memory: ...' comment naming avcmr.resources"
        elif "mem_mb=" in block:
            assert MEMORY_COMMENT.search(block), f"rule {rule}: no '# Memory: ...' comment stating the bound"


def test_memory_follows_the_shard_size_never_the_dataset_size(cluster_jobs, laptop_jobs):
    blocks = rule_blocks()
    vegas = memory_per_rule(cluster_jobs)
    for shard_size, jobs in laptop_jobs.items():
        small = memory_per_rule(jobs)
        for rule, values in small.items():
            if "mem_mb" not in blocks.get(rule, ""):
                continue  # `all`
            if DATA_SIZED.search(blocks[rule]):  # grows with the clips (per method for fit_evaluate)
                assert min(int(v) for v in vegas[rule]) > max(int(v) for v in values), (rule, vegas[rule], values)
                assert max(int(v) for v in values) <= 0.75 * LAPTOP_MB, f"{rule}: {values} MB does not fit a laptop"
                continue
            assert len(values) == 1, f"{rule}: memory differs between jobs: {values}"
            mem_mb = int(next(iter(values)))
            if shard_size == SHARD_SIZE:  # same shard size, 28× the clips, SLURM profile: same memory
                assert vegas[rule] == values, f"{rule}: {vegas[rule]} MB at VEGAS scale, {values} MB at 1,000 clips"
            stated = MEMORY_COMMENT.search(blocks[rule])
            if stated:
                base, per_clip = int(stated.group(1)), int(stated.group(2) or 0)
                assert mem_mb == base + per_clip * shard_size, f"{rule}: comment says {stated.group(0)!r}"
            assert mem_mb <= 0.75 * LAPTOP_MB, f"{rule}: {mem_mb} MB does not fit a laptop"


def test_retries_ask_for_more_memory():
    for rule, block in rule_blocks().items():
        if MEMORY_COMMENT.search(block):
            assert re.search(r"mem_mb=lambda wc, attempt: attempt\s*\*", block), f"{rule}: mem_mb not × attempt"


def test_the_cluster_sees_a_few_hundred_jobs_at_vegas_scale(cluster_jobs):
    shards = -(-VEGAS_CLIPS // SHARD_SIZE)
    per_shard_jobs = [job for job in cluster_jobs if "shard" in job["wildcards"]]
    # Every job of a shard runs inside that shard's group job: one SLURM job per shard.
    assert all(job["group"] and job["group"][0] == "shard" for job in per_shard_jobs)
    shards_of_group = {}
    for job in per_shard_jobs:
        shards_of_group.setdefault(job["group"], set()).add(job["wildcards"]["shard"])
    assert len(shards_of_group) == shards and all(len(s) == 1 for s in shards_of_group.values())
    singles = [job for job in cluster_jobs if job["group"] is None and job["rule"] != "all"]
    submitted = shards + len(singles)
    assert len(per_shard_jobs) + len(singles) > 1_000 and submitted < 400, (submitted, Counter(
        job["rule"] for job in singles))


def test_only_torch_training_asks_for_a_gpu(cluster_jobs):
    """One GPU for the torch methods' training jobs, none for the closed-form ones or any other job;
    the plugin picks each job's partition from profiles/slurm/partitions.yaml by that request."""
    from avcmr.methods.registry import uses_torch

    training_rules = {"fit_evaluate", "alpha_beta_point"}
    training = [job for job in cluster_jobs if job["rule"] in training_rules]
    assert training
    methods = {job["wildcards"].get("method", "ours"): job["resources"]["gpu"] for job in training}
    assert methods == {method: str(int(uses_torch(method))) for method in methods}
    assert {"cca", "random", "ours"} <= set(methods) and methods["cca"] == "0" and methods["ours"] == "1"
    assert all(job["threads"] == 4 for job in training)
    assert not any("gpu" in job["resources"] for job in cluster_jobs if job["rule"] not in training_rules)
    assert not any("slurm_partition" in job["resources"] for job in cluster_jobs)
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    partitions = yaml.safe_load((REPO / "profiles/slurm" / profile["slurm-partition-config"]).read_text())
    assert {name: limits["max_gpu"] for name, limits in partitions["partitions"].items()} == {"main": 0, "gpu": 1}
