import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.train import fit_and_evaluate

fit_and_evaluate(
    features_path=snakemake.input.features,
    method_name="ours",
    params=snakemake.params.method_params,
    seed=int(snakemake.wildcards.seed),
    eval_out=snakemake.output.evaluation,
    history_out=snakemake.output.history,
    provenance=snakemake.params.provenance,
)
