#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda env (--software-deployment-method conda):
# installs this checkout's avcmr. Its dependencies are already pinned by the env's YAML (equal to
# pyproject.toml's); the YAML cannot point at the checkout itself, because Snakemake creates the env
# from a copy of it under .snakemake/conda/.
set -euo pipefail
python -m pip install --no-deps --editable "$(dirname "$0")/.."
