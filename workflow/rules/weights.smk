# The official backbone weights (VGGish checkpoint + PCA parameters, Keras InceptionV3 ImageNet
# no-top), downloaded into resources/weights/ when online: `snakemake --cores 1 fetch_weights`.
# They are inputs of the vggish/inception rules (common.smk, backbone_weight_files): a missing
# official file is fetched before the extraction, a replaced one re-runs it. One rule per file, so
# that fetching one never touches the others (Snakemake removes a job's old outputs before it runs),
# and only for a file that is not there: a file in place (fetched or put by hand, maybe older than
# the script) is a source, never fetched again and deleted first.


for _name, _entry in official_weights().items():
    if Path(_entry["path"]).exists():
        continue

    rule:
        name:
            f"fetch_weights_{_name}"
        output:
            _entry["path"],
        log:
            f"logs/fetch_weights/{_name}.log",
        localrule: True
        # Memory: 500 MB, fixed: a local job (no Snakemake of its own): the script's Python with
        # numpy and pyarrow (no TensorFlow; ≈ 130 MB measured) and one 1 MB chunk of the file in
        # flight (avcmr.io.http_fetch), which is also hashed in chunks.
        conda:
            "../../envs/extract.yaml"
        threads: 1
        resources:
            mem_mb=lambda wc, attempt: attempt * 500,
            runtime=60,
        params:
            files={_name: _entry},
        script:
            "../scripts/fetch_weight_file.py"


rule fetch_weights:
    input:
        [entry["path"] for entry in official_weights().values()],
    output:
        record="resources/weights/weights.json",
    log:
        "logs/fetch_weights.log",
    localrule: True
    # Memory: 500 MB, fixed: a local job (no Snakemake of its own): the script's Python with numpy,
    # pandas and pyarrow (≈ 130 MB measured); the files in place are hashed in chunks.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 500,
        runtime=60,
    params:
        files=official_weights(),
    script:
        "../scripts/fetch_weights.py"
