import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.data.archive import unpack_dataset_archive

unpack_dataset_archive(snakemake.input.archive, snakemake.params.spec, snakemake.params.dest, snakemake.output[0],
                       snakemake.params.provenance)
