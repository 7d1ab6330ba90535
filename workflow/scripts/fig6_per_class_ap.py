import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_per_class_ap

plot_per_class_ap(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
