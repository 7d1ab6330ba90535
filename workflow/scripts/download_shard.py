import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

import sys

from avcmr.media.ffmpeg_io import require_ffmpeg

try:  # this job runs ffmpeg/ffprobe: without them, one line in its log rather than a traceback
    require_ffmpeg()
except RuntimeError as error:
    sys.exit(f"rule {snakemake.rule}: {error}")

from avcmr.stages.acquire import download_shard

# Pacing settings (sleep, back-off, attempts, ...) come from the config without being params, so
# that tuning them does not re-run finished shards; the params hold what changes the files.
dataset = snakemake.wildcards.dataset
download_shard(
    listing_path=snakemake.input.listing,
    shard=int(snakemake.wildcards.shard),
    media_dir=snakemake.params.media_dir,
    clips_out=snakemake.output.clips,
    failures_out=snakemake.output.failures,
    download={**snakemake.config["datasets"][dataset].get("download", {}), **snakemake.params.download},
    provenance=snakemake.params.provenance,
)
