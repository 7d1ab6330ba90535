from avcmr.logs import start_job

start_job(snakemake)

from avcmr.data.folder import list_folder
from avcmr.stages import index_folder_shard

shard, size = int(snakemake.wildcards.shard), snakemake.params.shard_size
listing = list_folder(snakemake.params.root, snakemake.params.extensions).iloc[shard * size : (shard + 1) * size]
index_folder_shard(listing, snakemake.output.clips, snakemake.output.failures, snakemake.params.provenance)
