import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

import sys

from avcmr.media.ffmpeg_io import require_ffmpeg

try:  # this job runs ffmpeg/ffprobe: without them, one line in its log rather than a traceback
    require_ffmpeg()
except RuntimeError as error:
    sys.exit(f"rule {snakemake.rule}: {error}")

from avcmr.stages.extract import decode_shard

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
