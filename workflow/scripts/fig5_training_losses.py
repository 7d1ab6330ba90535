import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_training_losses

plot_training_losses(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
