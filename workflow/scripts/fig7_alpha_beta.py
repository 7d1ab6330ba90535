import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_alpha_beta

plot_alpha_beta(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
