# The two commands of the README. Each sets itself up first (venv, pinned deps, ffmpeg).
VENV ?= .venv
CORES ?= 2
PYTEST_ARGS ?=

.PHONY: setup update-yt-dlp demo test test-fast lint clean

setup:
	bash tools/setup.sh

# YouTube changes what it serves every few weeks and only a recent yt-dlp keeps up (pyproject.toml
# requires a minimum version, not a pin): run this when clip downloads start failing.
update-yt-dlp: setup
	$(VENV)/bin/python -m pip install -q --upgrade yt-dlp

# The main job: the embedded synthetic dataset from raw video to results/synthetic/map.tsv.
demo: setup
	$(VENV)/bin/snakemake --cores $(CORES) results/synthetic/map.tsv

# The whole test suite, slow end-to-end runs included (what CI runs).
test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Unit tests only (seconds to a few minutes).
test-fast: setup
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/ruff check src tests benchmarks workflow/scripts

clean:
	rm -rf results logs .snakemake
