# avcmr: audio-visual cross-modal retrieval, from raw video to the paper's tables.
# Run: snakemake --cores 2 results/synthetic/map.tsv   (see README.md)
from snakemake.utils import min_version, validate

from avcmr.config import ConfigError, check_config_schema, stop
from avcmr.routes import resolve_auto_datasets

min_version("9.0")


configfile: "config/config.yaml"


# A mistake in the config (unknown key, method or dataset name) stops the run here with one line
# naming the key and what is allowed (avcmr.config.stop: no traceback). Datasets of kind auto
# (vegas, ave) become the entry of their first route whose file is present (avcmr.routes); a
# dataset with none is left out, and a request for its results stops with its one line
# (ROUTES.missing, rule dataset_without_route). A chosen route's entry is checked in its turn,
# then Snakemake's validate() fills in the schema's defaults.
SCHEMA = f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
try:
    check_config_schema(config, SCHEMA)
    ROUTES = resolve_auto_datasets(config, workflow.basedir)
    if ROUTES.chosen:
        check_config_schema(config, SCHEMA)
except ConfigError as error:
    stop(error)
validate(config, SCHEMA)


include: "workflow/rules/common.smk"
include: "workflow/rules/report_common.smk"


wildcard_constraints:
    dataset="|".join(SETTINGS),
    shard=r"\d+",
    seed=r"\d+",
    method=r"[a-z0-9_]+",


include: "workflow/rules/acquire.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/audio.smk"
include: "workflow/rules/visual.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/feature_file.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# Bookkeeping rules (a few columns read, one small table written; each rule's comment bounds its
# memory) run where Snakemake runs, not as cluster jobs: on SLURM each would wait for the queue and
# the executor's status checks (2 s, then 10 s more per empty check) for a second of work. No
# effect on one machine.
localrules:
    manifest,
    split,
    failures,
    acquisition,
    map_table,
    table3,
    table4,


rule all:
    input:
        default_targets(),
