import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.report import write_map_table

write_map_table(snakemake.input, snakemake.output[0], snakemake.params.header)
