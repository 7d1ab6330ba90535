import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.job_costs import write_job_costs

files_by_rule = {rule: list(snakemake.input[rule]) for rule in snakemake.input.keys()}
write_job_costs(files_by_rule, snakemake.output[0], snakemake.params.header)
