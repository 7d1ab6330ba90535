from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import decode_shard

decode_shard(
    clips_path=snakemake.input.clips,
    frames_out=snakemake.output.frames,
    audio_out=snakemake.output.audio,
    failures_out=snakemake.output.failures,
    fps=snakemake.params.fps,
    frame_size=snakemake.params.frame_size,
    sample_rate=snakemake.params.sample_rate,
    provenance=snakemake.params.provenance,
)
