from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import write_listing

write_listing(
    spec=snakemake.params.spec,
    shard_size=snakemake.params.shard_size,
    out=snakemake.output[0],
    provenance=snakemake.params.provenance,
    manifest_path=snakemake.input.get("manifest"),
    segment_paths=snakemake.input.get("segments", []),
)
