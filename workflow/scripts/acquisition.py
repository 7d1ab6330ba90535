import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages.report import acquisition_summary

acquisition_summary(
    listing_path=snakemake.input.listing,
    clip_paths=snakemake.input.clips,
    audio_paths=snakemake.input.audio,
    vggish_paths=snakemake.input.vggish,
    inception_paths=snakemake.input.inception,
    out=snakemake.output[0],
    header=snakemake.params.header,
)
