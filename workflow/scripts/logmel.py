import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.extract import logmel_shard

logmel_shard(snakemake.input.audio, snakemake.output.patches, snakemake.output.failures, snakemake.params.provenance)
