import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.train import fit_and_evaluate_seeds

fit_and_evaluate_seeds(
    features_path=snakemake.input.features,
    method_name=snakemake.wildcards.method,
    params=snakemake.params.method_params,
    seeds=snakemake.params.seeds,
    outputs={key: getattr(snakemake.output, key) for key in ("evaluation", "history", "precision", "embeddings", "model")},
    provenance=snakemake.params.provenance,
    model_context={**snakemake.params.model_context, "pca_path": snakemake.input.pca},
    shared_fits=list(snakemake.input.shared_fits),
    seeds_together=snakemake.params.seeds_together,
)
