"""Media handling: ffmpeg probing, decoding and encoding (and, later, downloads)."""
