"""What the retrieval page shows, as data: its settings, the ranked queries of each method, and
the errors of making it.

Shared by ``avcmr.reporting.retrieval_page`` (which fills a :class:`PageData` from the run's
tables and writes the page), ``retrieval_page_media`` (the clips' thumbnails and audio extracts)
and ``retrieval_page_html`` (the markup), so that those two need not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

DIRECTIONS = ("a2v", "v2a")
DIRECTION_TITLES = {"a2v": "Audio → visual", "v2a": "Visual → audio"}
# What the page shows of a clip in each role: the query both, a result its retrieved modality.
QUERY_MEDIA = ("thumbnail", "audio")
RESULT_MEDIA = {"a2v": "thumbnail", "v2a": "audio"}
# An AP of the page farther than this from the evaluation's stored AP is stated on the page.
AP_TOLERANCE = 1e-6


class RetrievalPageError(ValueError):
    """The run's tables cannot make the page (stale or missing outputs); one-line message."""


class PreviewError(Exception):
    """A clip whose thumbnail or audio extract cannot be cut; ``reason`` is shown on the page."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# The `figures` config keys of the page, and the PageSettings field each one sets.
CONFIG_KEYS = {"retrieval_queries": "queries_per_direction", "retrieval_top_k": "top_k",
               "retrieval_seed": "query_seed", "retrieval_thumbnail_px": "thumbnail_width",
               "retrieval_audio_s": "audio_seconds"}


@dataclass(frozen=True)
class PageSettings:
    """What the page shows (config: the ``figures`` section's ``retrieval_*`` keys)."""

    queries_per_direction: int = 20
    top_k: int = 10
    query_seed: int = 0
    thumbnail_width: int = 160
    audio_seconds: float = 3.0

    def __post_init__(self):
        for name in ("queries_per_direction", "top_k", "thumbnail_width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"retrieval page: {name} must be at least 1, got {getattr(self, name)}")
        if not self.audio_seconds > 0:
            raise ValueError(f"retrieval page: audio_seconds must be positive, got {self.audio_seconds}")

    @classmethod
    def from_config(cls, figures: Mapping | None) -> PageSettings:
        """The settings the config's ``figures`` section gives (``CONFIG_KEYS``); the rest default."""
        figures = figures or {}
        return cls(**{name: figures[key] for key, name in CONFIG_KEYS.items() if key in figures})

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> PageSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(values or {}) - known
        if unknown:
            raise ValueError(f"retrieval page: unknown settings {sorted(unknown)} (known: {sorted(known)})")
        return cls(**dict(values or {}))

@dataclass
class Result:
    rank: int
    clip_id: str
    label: str
    score: float
    relevant: bool


@dataclass
class RankedQuery:
    clip_id: str
    label: str
    ap: float  # of the ranking shown
    evaluation_ap: float  # as the evaluation stored it
    results: list[Result]


@dataclass
class MethodSection:
    method: str
    similarity: str  # what the scores are, in words
    score_format: str
    mean_ap: dict[str, float]  # MAP per direction over all test queries (the evaluation's)
    queries: dict[str, list[RankedQuery]] = field(default_factory=dict)

    @property
    def largest_ap_difference(self) -> float:
        gaps = [abs(q.ap - q.evaluation_ap) for direction in self.queries.values() for q in direction]
        return max(gaps, default=0.0)


@dataclass
class PageData:
    dataset: str
    seed: int
    n_test: int
    settings: PageSettings
    random_weights: bool
    sections: list[MethodSection]

    @property
    def largest_ap_difference(self) -> float:
        return max((section.largest_ap_difference for section in self.sections), default=0.0)
