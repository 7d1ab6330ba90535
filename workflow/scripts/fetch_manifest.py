import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.data.manifests import fetch_source

fetch_source(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
