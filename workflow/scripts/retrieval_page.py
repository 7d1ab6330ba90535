import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.retrieval_page import write_retrieval_page

write_retrieval_page(
    dataset=snakemake.wildcards.dataset,
    features_path=snakemake.input.features,
    manifest_path=snakemake.input.manifest,
    methods=snakemake.params.methods,
    eval_paths=list(snakemake.input.evaluations),
    embeddings_paths=list(snakemake.input.embeddings),
    model_paths=list(snakemake.input.models),
    seed=int(snakemake.params.seed),
    page_out=snakemake.output.page,
    report_out=snakemake.output.report,
    media_dir=snakemake.output.media,
    settings=snakemake.params.settings,
    has_media=snakemake.params.has_media,
    threads=snakemake.threads,
)
