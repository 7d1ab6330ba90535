import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.report import concat_failures

concat_failures(snakemake.input, snakemake.output[0], snakemake.params.provenance)
