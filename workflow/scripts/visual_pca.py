import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.split import fit_visual_pca

fit_visual_pca(
    visual_paths=snakemake.input.visual,
    split_path=snakemake.input.split,
    out=snakemake.output[0],
    n_components=snakemake.params.n_components,
    whiten=snakemake.params.whiten,
    provenance=snakemake.params.provenance,
)
