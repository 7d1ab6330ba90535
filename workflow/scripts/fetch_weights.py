import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.acquire import fetch_weights

fetch_weights(snakemake.params.files, snakemake.output.record)
