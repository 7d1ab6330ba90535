# Released feature files (kind: features): the paper group's pooled VGGish + InceptionV3/PCA features
# of VEGAS or AVE become the tables the extraction route writes (features, split, manifest, visual
# PCA, acquisition summary), so every method, table and figure runs on them unchanged.


# For a features dataset this rule, not the extraction route (split, visual_pca, pool, manifest,
# acquisition), makes these files; for every other kind its wildcard constraint excludes it.
ruleorder: import_feature_file > pool
ruleorder: import_feature_file > split
ruleorder: import_feature_file > visual_pca
ruleorder: import_feature_file > manifest
ruleorder: import_feature_file > acquisition


rule import_feature_file:
    input:
        feature_file_input,
    output:
        features="results/{dataset}/features.parquet",
        split="results/{dataset}/split.parquet",
        manifest="results/{dataset}/manifest.parquet",
        pca="results/{dataset}/visual_pca.parquet",
        acquisition="results/{dataset}/acquisition.tsv",
    log:
        "logs/{dataset}/import_feature_file.log",
    wildcard_constraints:
        dataset=names_of_kind("features"),
    # Memory: 2000 MB, fixed: the job's Snakemake (~0.6 GB) and the file's features read at once,
    # with a float32 copy and the Parquet write (28k × 1,152 float32 ≈ 130 MB at VEGAS scale).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 2000,
        runtime=lambda wc, attempt: attempt * 10,
    params:
        feature_file=lambda wc: SETTINGS[wc.dataset]["feature_file"],
        split=lambda wc: SETTINGS[wc.dataset]["split"],
        provenance=provenance("split"),
    script:
        "../scripts/import_feature_file.py"
