"""`cca`: regularised closed-form CCA between the 128-D audio and the 1024-D visual features.

Hotelling (1936); the paper's Table 2 baseline. r = 1e-4 on the covariance diagonals, 10 components,
centred with training means; retrieval by cosine in the 10-D canonical space.
"""

from __future__ import annotations

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.linear_cca import LinearCCA, LinearCCAEmbedding
from avcmr.methods.registry import register


@register("cca")
class CCA(LinearCCAEmbedding, RetrievalMethod):
    def __init__(self, n_components: int = 10, reg: float = 1e-4, random_state: int | None = 0):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.reg = reg

    def fit(self, audio, visual, labels) -> CCA:
        audio, visual, _ = check_training_data(audio, visual, labels)
        self.cca_ = LinearCCA(self.n_components, self.reg).fit(audio, visual)
        self.correlations_ = self.cca_.correlations_
        return self
