"""avcmr: audio-visual cross-modal retrieval, from raw video to the dual-subspace paper's tables."""

__version__ = "0.1.0"
