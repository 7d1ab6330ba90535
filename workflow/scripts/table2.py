import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.paper_numbers import TABLE2
from avcmr.reporting.tables import SANITY_METHODS, TABLE2_METHODS, write_accuracy_tables

write_accuracy_tables(
    snakemake.input,
    snakemake.output.tsv,
    snakemake.output.md,
    methods=TABLE2_METHODS + SANITY_METHODS,  # the sanity rows print after the paper's
    title="Table 2: MAP of every method",
    with_test=True,
    header_lines=snakemake.params.header,
    reference=snakemake.params.paper_reference,
    paper_table=TABLE2,
)
