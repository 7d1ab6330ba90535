"""Datasets: manifests, the synthetic generators, splits."""
