import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.report import write_run_summary

write_run_summary(
    snakemake.output[0],
    dataset=snakemake.wildcards.dataset,
    spec=snakemake.params.spec,
    eval_paths=snakemake.input.evaluations,
    split_path=snakemake.input.split,
    features_path=snakemake.input.features,
    acquisition_path=snakemake.input.acquisition,
)
