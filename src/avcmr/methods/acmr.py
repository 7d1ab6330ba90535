"""`acmr`: Adversarial Cross-Modal Retrieval (Wang, Yang, Xu, Hanjalic, Shen; ACM MM 2017).

Two tanh feature projectors map each modality into an E = 40 dimensional common space
(official demo ``sunpeng981712364/ACMR_demo``, ``adv_crossmodal_triplet_wiki.py``):

- visual 1024 → 512 → 100 → E (the demo's image branch ``vf_fc_0..2``),
- audio  128 → E → 100 → E (the demo's text branch ``le_fc_0..2``; every layer tanh).

The *embedding loss* (paper Sec. 3: "label prediction" L_imd + "structure preservation" L_imi,
weights as in the official code) is

    L_emb = 100 · L_imd + L_imi,
    L_imd = mean CE(softmax(W e_v), y) + mean CE(softmax(W e_a), y)      (linear label classifier E → C)
    L_imi = max(0, m + α·Σ½‖e_v − e_a‖² − Σ½‖e_v − e_a[n_v]‖²)
          + max(0, m + α·Σ½‖e_a − e_v‖² − Σ½‖e_a − e_v[n_a]‖²),         m = 0.1, α = 5,

sums over the minibatch as in the demo (``tf.nn.l2_loss``), positive = the item's own pair, negative
n_v (n_a) = the batch item of another class whose *input* visual (audio) feature is most
cosine-similar to the anchor's (the demo's hard-negative mining). The *adversarial loss* L_adv
is the cross-entropy of a modality classifier D (E → E/2 → E/4 → 2, linear layers as in the demo)
that sits behind a gradient-reversal layer with λ = 2/(1 + e^{−10p}) − 1, p = epoch / epochs; so
one backward pass of L_emb + L_adv trains D to tell the modalities apart while the projectors get
the reversed gradient (the paper's min-max of L_emb − L_adv). Adam, lr 1e-4, β1 = 0.5 for both
players, batch 64. Retrieval: cosine between the E-dimensional projections (METHODS.md), not the demo's
Euclidean MAP@50.

Deviations from the demo, all towards the paper: the label classifier is trained (the demo's
optimiser leaves ``lc_*`` at its initialisation) and the reversed adversarial gradient reaches the
projectors (the demo's ``emb_train_op`` minimises L_emb only); minibatches are reshuffled every
epoch; inputs are z-scored with training statistics. The number of epochs is chosen on a
validation split carved from the training pairs (best validation MAP), never on test data.

Budget: one epoch over 22,482 VEGAS pairs is ≈ 5 CPU-seconds (350 small Adam steps); the default of
10 epochs (demo: 50) measured 46–62 CPU-seconds on the VEGAS-scale synthetic benchmark
(``benchmarks/bench_adversarial.py``), where validation MAP was still rising at epoch 10.

This module also holds the ACMR pieces that ``ucal`` reuses: the tanh projectors, the
gradient-reversal layer and the modality classifier. The validation-split / model-selection
helpers shared by the neural baselines live in ``model_selection``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.model_selection import (
    BestEpoch,
    count_parameters,
    encode_labels,
    split_and_scale,
    validation_map,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    Standardizer,
    make_optimizer,
    minibatches,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Shared pieces: projectors, gradient reversal, modality classifier
# ---------------------------------------------------------------------------------------------
def tanh_projector(sizes: Sequence[int]) -> nn.Sequential:
    """Fully connected layers, every one followed by tanh (the output layer too, as in ACMR)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    return nn.Sequential(*layers)


def visual_projector(visual_dim: int, embedding_dim: int) -> nn.Sequential:
    """ACMR image branch: visual_dim → 512 → 100 → E."""
    return tanh_projector([visual_dim, 512, 100, embedding_dim])


def audio_projector(audio_dim: int, embedding_dim: int) -> nn.Sequential:
    """ACMR text branch reused for audio: audio_dim → E → 100 → E."""
    return tanh_projector([audio_dim, embedding_dim, 100, embedding_dim])


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.strength * grad_output, None


class GradientReversal(nn.Module):
    """Identity in the forward pass, gradient × (−``strength``) backwards (Ganin & Lempitsky 2015)."""

    def __init__(self, strength: float = 1.0):
        super().__init__()
        self.strength = float(strength)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGradient.apply(x, self.strength)


def grl_strength(progress: float) -> float:
    """The DANN / ACMR schedule λ(p) = 2 / (1 + e^{−10p}) − 1, p ∈ [0, 1] the training progress."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class ModalityClassifier(nn.Module):
    """ACMR's modality discriminator behind a gradient-reversal layer: E → E/2 → E/4 → 2.

    The official demo builds it from ``slim.fully_connected(..., activation_fn=None)``, i.e. linear
    layers; that is kept here.
    """

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.reversal = GradientReversal(0.0)
        half, quarter = max(embedding_dim // 2, 1), max(embedding_dim // 4, 1)
        self.layers = nn.Sequential(
            nn.Linear(embedding_dim, half), nn.Linear(half, quarter), nn.Linear(quarter, 2)
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.layers(self.reversal(embedding))


def modality_loss(
    classifier: ModalityClassifier, audio_embedding: torch.Tensor, visual_embedding: torch.Tensor
) -> torch.Tensor:
    """L_adv (ACMR's modality-classification loss): mean cross-entropy of telling visual (class 0) from audio (class 1)."""
    visual_target = torch.zeros(
        len(visual_embedding), dtype=torch.long, device=visual_embedding.device
    )
    audio_target = torch.ones(len(audio_embedding), dtype=torch.long, device=audio_embedding.device)
    return F.cross_entropy(classifier(visual_embedding), visual_target) + F.cross_entropy(
        classifier(audio_embedding), audio_target
    )


# ---------------------------------------------------------------------------------------------
# ACMR's own losses
# ---------------------------------------------------------------------------------------------
def hardest_other_class(
    features: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every row, the index of the most cosine-similar row of another class (ACMR demo's
    negative mining on the input features) and whether such a row exists."""
    normalised = F.normalize(features, dim=1)
    similarity = normalised @ normalised.T
    other_class = labels[:, None] != labels[None, :]
    similarity = similarity.masked_fill(~other_class, -math.inf)
    return similarity.argmax(dim=1), other_class.any(dim=1)


def acmr_triplet_loss(
    audio_embedding: torch.Tensor,
    visual_embedding: torch.Tensor,
    negative_for_visual: torch.Tensor,
    negative_for_audio: torch.Tensor,
    margin: float = 0.1,
    alpha: float = 5.0,
) -> torch.Tensor:
    """L_imi as the official demo computes it: hinge on minibatch sums of ½‖·‖².

    ``negative_for_visual[i]`` indexes the audio embedding used as negative of visual anchor i,
    ``negative_for_audio[i]`` the visual embedding used as negative of audio anchor i.
    """
    positive = 0.5 * ((visual_embedding - audio_embedding) ** 2).sum()
    visual_negative = 0.5 * ((visual_embedding - audio_embedding[negative_for_visual]) ** 2).sum()
    audio_negative = 0.5 * ((audio_embedding - visual_embedding[negative_for_audio]) ** 2).sum()
    return F.relu(margin + alpha * positive - visual_negative) + F.relu(
        margin + alpha * positive - audio_negative
    )


@register("acmr")
class ACMR(RetrievalMethod):
    def __init__(
        self,
        embedding_dim: int = 40,
        label_weight: float = 100.0,
        margin: float = 0.1,
        alpha: float = 5.0,
        lr_embedding: float = 1e-4,
        lr_domain: float = 1e-4,
        beta1: float = 0.5,
        batch_size: int = 64,
        epochs: int = 10,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.embedding_dim = embedding_dim
        self.label_weight = label_weight
        self.margin = margin
        self.alpha = alpha
        self.lr_embedding = lr_embedding
        self.lr_domain = lr_domain
        self.beta1 = beta1
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.device = device

    def fit(self, audio, visual, labels) -> ACMR:
        audio, visual, labels = check_training_data(audio, visual, labels)
        generator = seed_everything(self.random_state)
        self.device_ = pick_device(self.device)
        self.classes_, codes = encode_labels(labels)
        fit_index, validation_index, self.audio_scaler_, self.visual_scaler_ = split_and_scale(
            audio, visual, codes, self.validation_fraction, self.random_state, self.standardize
        )

        self.audio_net_ = audio_projector(audio.shape[1], self.embedding_dim).to(self.device_)
        self.visual_net_ = visual_projector(visual.shape[1], self.embedding_dim).to(self.device_)
        self.label_classifier_ = nn.Linear(self.embedding_dim, len(self.classes_)).to(self.device_)
        self.modality_classifier_ = ModalityClassifier(self.embedding_dim).to(self.device_)
        embedding_params = [
            *self.audio_net_.parameters(),
            *self.visual_net_.parameters(),
            *self.label_classifier_.parameters(),
        ]
        betas = (self.beta1, 0.999)
        optimizer_embedding = make_optimizer(torch.optim.Adam, embedding_params, lr=self.lr_embedding, betas=betas)
        optimizer_domain = make_optimizer(torch.optim.Adam,
            self.modality_classifier_.parameters(), lr=self.lr_domain, betas=betas
        )

        audio_t = to_tensor(self.audio_scaler_.transform(audio[fit_index]), self.device_)
        visual_t = to_tensor(self.visual_scaler_.transform(visual[fit_index]), self.device_)
        codes_t = torch.as_tensor(codes[fit_index], device=self.device_)
        nets = {"audio": self.audio_net_, "visual": self.visual_net_}
        tracker = BestEpoch(nets)
        self.history_ = []
        for epoch in range(self.epochs):
            started = time.perf_counter()
            self.modality_classifier_.reversal.strength = grl_strength(epoch / max(self.epochs, 1))
            for net in (*nets.values(), self.label_classifier_, self.modality_classifier_):
                net.train()
            sums = np.zeros(4)
            n_batches = 0
            for batch in minibatches(len(fit_index), self.batch_size, generator, drop_last=True):
                batch = batch.to(self.device_)
                a, v, y = audio_t[batch], visual_t[batch], codes_t[batch]
                e_a, e_v = self.audio_net_(a), self.visual_net_(v)
                negative_for_visual, has_v = hardest_other_class(v, y)
                negative_for_audio, has_a = hardest_other_class(a, y)
                label_loss = F.cross_entropy(self.label_classifier_(e_v), y) + F.cross_entropy(
                    self.label_classifier_(e_a), y
                )
                if bool(has_v.all()) and bool(has_a.all()):
                    triplet = acmr_triplet_loss(
                        e_a, e_v, negative_for_visual, negative_for_audio, self.margin, self.alpha
                    )
                else:  # a single-class batch has no negatives
                    triplet = torch.zeros((), device=self.device_)
                embedding_loss = self.label_weight * label_loss + triplet
                domain_loss = modality_loss(self.modality_classifier_, e_a, e_v)
                optimizer_embedding.zero_grad()
                optimizer_domain.zero_grad()
                (embedding_loss + domain_loss).backward()
                optimizer_embedding.step()
                optimizer_domain.step()
                sums += [
                    (embedding_loss + domain_loss).item(),
                    label_loss.item(),
                    triplet.item(),
                    domain_loss.item(),
                ]
                n_batches += 1
            means = [float(x) for x in sums / max(n_batches, 1)]
            record = {
                "epoch": epoch + 1,
                "loss": means[0],
                "label_loss": means[1],
                "triplet_loss": means[2],
                "domain_loss": means[3],
                "grl_strength": self.modality_classifier_.reversal.strength,
            }
            if len(validation_index):
                record["val_map"] = validation_map(
                    self._embed(self.audio_net_, self.audio_scaler_, audio[validation_index]),
                    self._embed(self.visual_net_, self.visual_scaler_, visual[validation_index]),
                    codes[validation_index],
                )
                tracker.update(epoch + 1, record["val_map"])
            record["seconds"] = time.perf_counter() - started
            self.history_.append(record)
            log.info("acmr epoch %d: %s", epoch + 1, record)
            if tracker.patience_exhausted(epoch + 1, self.patience):
                log.info("acmr: no better validation for %d epochs, stopped after epoch %d", self.patience, epoch + 1)
                break
        self.best_epoch_ = tracker.finish(self.epochs)
        return self

    def _embed(self, net: nn.Module, scaler: Standardizer, x: np.ndarray) -> np.ndarray:
        return predict_in_batches(
            net, scaler.transform(np.asarray(x, dtype=np.float64)), self.device_
        )

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("audio_net_")
        return self._embed(self.audio_net_, self.audio_scaler_, audio)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("visual_net_")
        return self._embed(self.visual_net_, self.visual_scaler_, visual)

    def n_parameters(self) -> int:
        self._check_fitted("audio_net_")
        return count_parameters(
            self.audio_net_, self.visual_net_, self.label_classifier_, self.modality_classifier_
        )
