import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.report import table_html

table_html(snakemake.input[0], snakemake.output[0], snakemake.params.title, snakemake.wildcards.table)
