"""Retrieval metrics as the original authors compute them (METHODS.md, "Metrics")."""

from avcmr.evaluation.metrics import (
    average_precision_per_query,
    evaluate_scores,
    mean_average_precision,
    precision_at_k,
    rank_candidates,
    ranking_metrics,
)

__all__ = [
    "average_precision_per_query",
    "evaluate_scores",
    "mean_average_precision",
    "precision_at_k",
    "rank_candidates",
    "ranking_metrics",
]
