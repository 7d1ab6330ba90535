import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.split import make_split

split = snakemake.params.split
make_split(
    manifest_path=snakemake.input.manifest,
    audio_paths=snakemake.input.audio,
    visual_paths=snakemake.input.visual,
    out=snakemake.output[0],
    train_fraction=split["train_fraction"],
    seed=split["seed"],
    test_size=split.get("test_size"),
    provenance=snakemake.params.provenance,
    listing_path=snakemake.input.get("listing"),
)
