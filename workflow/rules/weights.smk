# The official backbone weights (VGGish checkpoint + PCA parameters, Keras InceptionV3 ImageNet
# no-top), downloaded into resources/weights/ when online: `snakemake --cores 1 fetch_weights`.


rule fetch_weights:
    output:
        files=[entry["path"] for entry in official_weights().values()],
        record="resources/weights/weights.json",
    log:
        "logs/fetch_weights.log",
    localrule: True
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=60,
    params:
        files=official_weights(),
    script:
        "../scripts/fetch_weights.py"
