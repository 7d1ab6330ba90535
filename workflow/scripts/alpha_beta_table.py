import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import write_alpha_beta_table

write_alpha_beta_table(snakemake.input, snakemake.output[0], snakemake.params.header)
