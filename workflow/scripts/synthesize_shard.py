import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

import sys

from avcmr.media.ffmpeg_io import require_ffmpeg

try:  # this job runs ffmpeg/ffprobe: without them, one line in its log rather than a traceback
    require_ffmpeg()
except RuntimeError as error:
    sys.exit(f"rule {snakemake.rule}: {error}")

from avcmr.stages.acquire import synthesize_shard

synthesize_shard(
    spec_values=snakemake.params.spec,
    shard=int(snakemake.wildcards.shard),
    shard_size=snakemake.params.shard_size,
    media_dir=snakemake.output.media,
    clips_out=snakemake.output.clips,
    provenance=snakemake.params.provenance,
)
