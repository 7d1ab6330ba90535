import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.split import pool_features

pool_features(
    audio_paths=snakemake.input.audio,
    visual_paths=snakemake.input.visual,
    pca_path=snakemake.input.pca,
    split_path=snakemake.input.split,
    out=snakemake.output[0],
    provenance=snakemake.params.provenance,
)
