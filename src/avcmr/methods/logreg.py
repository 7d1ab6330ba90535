"""`logreg`: a sanity row, one multinomial logistic regression per modality.

Not a method of the paper and never one of its baselines: a supervised floor. Each modality gets
its own classifier (scikit-learn's ``LogisticRegression``, lbfgs, on z-scored features) trained on
the training pairs' labels, and a query is compared with a candidate of the other modality by the
cosine between their predicted class-probability vectors. With the labels used this directly, a
supervised row below this one is starved (too few steps, a bad setting), while a dataset on which
this row is near chance is simply hard.

lbfgs draws no random numbers, so every seed fits the same two models: the row's standard deviation
over seeds is 0 (``random_state`` is passed on to scikit-learn for the estimator convention only).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from avcmr.methods.base import RetrievalMethod, Standardizer, check_training_data
from avcmr.methods.registry import register

CONVERGED = "converged"
CAP_REACHED = "cap reached"


@register("logreg")
class LogisticRegressionProbabilities(RetrievalMethod):
    """Per-modality logistic regressions; items compared by cosine of their class probabilities.

    Parameters: ``C`` the inverse L2 strength, ``max_iter`` the lbfgs iteration cap of each model,
    ``standardize`` whether features are z-scored with training statistics first.

    Fitted: ``audio_model_``, ``visual_model_`` (and their scalers), ``classes_``, ``n_steps_`` (the
    larger of the two models' lbfgs iterations) and ``training_end_`` ("converged", or "cap
    reached" when either model stopped at ``max_iter``).
    """

    simplifications = ""

    def __init__(self, C: float = 1.0, max_iter: int = 1000, standardize: bool = True, random_state: int | None = 0):
        super().__init__(random_state=random_state)
        self.C = C
        self.max_iter = max_iter
        self.standardize = standardize

    def fit(self, audio, visual, labels) -> LogisticRegressionProbabilities:
        audio, visual, labels = check_training_data(audio, visual, labels)
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")
        self.audio_scaler_ = Standardizer().fit(audio) if self.standardize else None
        self.visual_scaler_ = Standardizer().fit(visual) if self.standardize else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.audio_model_ = self._classifier().fit(_scaled(self.audio_scaler_, audio), labels)
            self.visual_model_ = self._classifier().fit(_scaled(self.visual_scaler_, visual), labels)
        unconverged = False
        for warning in caught:
            if issubclass(warning.category, ConvergenceWarning):
                unconverged = True  # said by training_end_ and the tables, not as log noise
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        iterations = [int(np.max(model.n_iter_)) for model in (self.audio_model_, self.visual_model_)]
        self.classes_ = self.audio_model_.classes_
        self.n_steps_ = max(iterations)
        capped = unconverged or self.n_steps_ >= self.max_iter
        self.training_end_ = CAP_REACHED if capped else CONVERGED
        return self

    def _classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, random_state=self.random_state)

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        """The audio model's class probabilities (columns in the order of ``classes_``)."""
        self._check_fitted("audio_model_")
        return self.audio_model_.predict_proba(_scaled(self.audio_scaler_, audio))

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        """The visual model's class probabilities (columns in the order of ``classes_``)."""
        self._check_fitted("visual_model_")
        return self.visual_model_.predict_proba(_scaled(self.visual_scaler_, visual))

    def n_parameters(self) -> int:
        self._check_fitted("audio_model_")
        return sum(model.coef_.size + model.intercept_.size for model in (self.audio_model_, self.visual_model_))


def _scaled(scaler: Standardizer | None, x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) if scaler is None else scaler.transform(x)
