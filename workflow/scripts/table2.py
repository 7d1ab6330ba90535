from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.tables import TABLE2_METHODS, write_accuracy_tables

write_accuracy_tables(
    snakemake.input,
    snakemake.output.tsv,
    snakemake.output.md,
    methods=TABLE2_METHODS,
    title="Table 2: MAP of every method",
    with_test=True,
    header_lines=snakemake.params.header,
)
