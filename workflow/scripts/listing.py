import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

import pandas as pd

from avcmr.stages.acquire import write_listing

folder_clips = snakemake.params.folder_clips
write_listing(
    spec=snakemake.params.spec,
    shard_size=snakemake.params.shard_size,
    out=snakemake.output[0],
    provenance=snakemake.params.provenance,
    manifest_path=snakemake.input.get("manifest"),
    segment_paths=snakemake.input.get("segments", []),
    folder_clips=None if folder_clips is None else pd.DataFrame(folder_clips),
)
