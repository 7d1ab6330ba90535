import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures_tsne import plot_tsne

plot_tsne(
    features_path=snakemake.input.features,
    eval_paths=snakemake.input.evaluations,
    embeddings_paths=snakemake.input.embeddings,
    png_out=snakemake.output.png,
    pdf_out=snakemake.output.pdf,
    max_points=int(snakemake.params.max_points),
    perplexity=float(snakemake.params.perplexity),
    seed=int(snakemake.params.seed),
)
