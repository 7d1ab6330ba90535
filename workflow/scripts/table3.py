import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.tables import SANITY_METHODS, TABLE2_METHODS, TABLE4_METHODS, write_cost_tables

methods = list(TABLE2_METHODS) + [m for m in TABLE4_METHODS if m not in TABLE2_METHODS] + list(SANITY_METHODS)
write_cost_tables(
    snakemake.input,
    snakemake.output.tsv,
    snakemake.output.md,
    methods,
    snakemake.params.header,
    reference=snakemake.params.paper_reference,
)
