import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.io.http_fetch import fetch_file

fetch_file(snakemake.params.url, snakemake.output[0], snakemake.params.size, {"sha256": snakemake.params.sha256})
