import logging
import sys

import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.data.feature_file import FeatureFileError, FeatureFileSpec, import_feature_file

split = snakemake.params.split
try:
    import_feature_file(
        FeatureFileSpec.from_config(snakemake.wildcards.dataset, snakemake.params.feature_file),
        features_out=snakemake.output.features,
        split_out=snakemake.output.split,
        manifest_out=snakemake.output.manifest,
        pca_out=snakemake.output.pca,
        acquisition_out=snakemake.output.acquisition,
        train_fraction=split["train_fraction"],
        seed=split["seed"],
        test_size=split.get("test_size"),
        provenance=snakemake.params.provenance,
    )
except FeatureFileError as error:  # the one-line reason ends the log, without a traceback
    logging.getLogger("avcmr.import_feature_file").error("%s", error)
    sys.exit(1)
