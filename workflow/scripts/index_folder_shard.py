import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

import sys

from avcmr.media.ffmpeg_io import require_ffmpeg

try:  # this job runs ffmpeg/ffprobe: without them, one line in its log rather than a traceback
    require_ffmpeg()
except RuntimeError as error:
    sys.exit(f"rule {snakemake.rule}: {error}")

import pandas as pd

from avcmr.data.folder import MEMBER_COLUMNS
from avcmr.stages.acquire import index_folder_shard

# The shard's members come from the listing made when the workflow started (common.smk).
listing = pd.DataFrame(snakemake.params.members, columns=MEMBER_COLUMNS)
index_folder_shard(listing, snakemake.output.clips, snakemake.output.failures, snakemake.params.provenance)
