"""Imported first by every workflow script: puts this checkout's src/ at the front of sys.path.

So a rule's script imports avcmr from the checkout the workflow runs from, also in a conda
environment of envs/ (which holds avcmr's dependencies, not avcmr). Snakemake runs a copy of the
script from .snakemake/scripts/ but adds the script's own folder to sys.path, where this file is.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if sys.path[:1] != [SRC]:
    sys.path.insert(0, SRC)
