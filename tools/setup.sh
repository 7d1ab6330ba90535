#!/usr/bin/env bash
# Set up avcmr on a fresh Debian/Ubuntu (or any) machine with Python 3.11+:
#  - ffmpeg + ffprobe on PATH (the decode stage and yt-dlp call both): Debian's package when
#    missing and we may install it, else a clear message;
#  - a virtual environment in .venv with the pinned dependencies and avcmr itself (editable),
#    torch as its CPU build, librosa's numba cache compiled.
# Idempotent: a second run only checks.
#
# torch: PyPI's Linux wheel of torch, pinned or not, depends on the CUDA libraries (nvidia-* wheels,
# several GB). The CPU build of the same version comes from PyTorch's CPU wheel index, installed
# before the rest so that pip keeps it: TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 (or
# another CUDA index) for a GPU build instead, TORCH_INDEX_URL= (empty) for PyPI's wheel. A torch
# wheel of the pinned version that pip finds without any index (its find-links, e.g. a local wheel
# folder) is used first and no index is asked.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ffmpeg (Debian package, provides ffmpeg and ffprobe)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "setup: ffmpeg and ffprobe are required on PATH; install them (apt-get install ffmpeg," >&2
    echo "       brew install ffmpeg, or conda install -c conda-forge ffmpeg) and run again" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.avcmr-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pinned dependencies into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The torch pin of pyproject.toml (its dependencies come with the install below).
  torch_pin=$(sed -n 's/^ *"\(torch==[^"]*\)",$/\1/p' pyproject.toml)
  [ -n "$torch_pin" ] || { echo "setup: pyproject.toml has no \"torch==...\" line" >&2; exit 1; }
  if ! "$VENV/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('torch').split('+')[0] != sys.argv[1])" "${torch_pin#torch==}" 2>/dev/null; then
    if "$VENV/bin/python" -m pip install -q --no-deps --no-index "$torch_pin" 2>/dev/null; then
      echo "setup: $torch_pin from a local wheel"
    elif [ -n "$TORCH_INDEX_URL" ]; then
      echo "setup: $torch_pin from $TORCH_INDEX_URL"
      "$VENV/bin/python" -m pip install -q --no-deps --index-url "$TORCH_INDEX_URL" "$torch_pin"
    fi
  fi
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  # librosa.util compiles its numba kernels on first use (≈ 14 s, cached in the venv): done once
  # here rather than by each log-mel job that happens to be first.
  "$VENV/bin/python" -c "import numpy, librosa; librosa.util.frame(numpy.zeros(400), frame_length=400, hop_length=160)"
  touch "$stamp"
fi
"$VENV/bin/python" -c "import avcmr, torch, tensorflow, snakemake; print('setup: ok (avcmr', avcmr.__version__, '| torch', torch.__version__, '| tensorflow', tensorflow.__version__, ')')" 2>/dev/null
