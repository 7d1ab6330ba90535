"""`agah`: Adversary Guided Asymmetric Hashing (Gu, Gu, Gu, Li, Xiong, Wang; ICMR 2019).

Follows the paper and the official code (``WendellGul/AGAH``: ``main.py``, ``models/agah.py``,
``config.py``) with the image CNN replaced by an MLP, as METHODS.md prescribes:

- **Feature nets** (ReLU throughout, the output too, as the official ``img_module`` /
  ``txt_module`` end in ReLU): visual 1024 → 8192 → 4096 → 512 (CNN-F → MLP); audio
  128 → 4096 → 512 (the official text branch is y → 8192 → 4096 → 512; the narrower audio net is a
  compute saving, listed in ``AGAH.simplifications``). Every feature batch F is divided by its
  Frobenius norm ‖F‖_F (no gradient through the norm), as in the official ``forward``.
- **Label attention** (paper Sec. 3, official ``forward``): with P ∈ R^{C×512} the *feature map*
  (one unit-norm prototype per class), each normalised feature f is pulled towards the prototypes
  it resembles:

      w = σ(5 · f Pᵀ) ∈ (0, 1)^C,   f̂ = λ f + (1 − λ) · (w P) / Σ_c w_c,   λ = 0.8;

  the hash and label heads read f̂, the critics read f. P is recomputed after every epoch from the
  latest features of every training pair seen (official ``update_feature_map``, mode "average"):
  P_c = normalise(½ (mean_{y=c} f_v + mean_{y=c} f_a)). P is a buffer of the network, so the best
  epoch's P embeds the test items, which need no labels: their attention comes from P alone.
  Under the official normalisation a feature row is ≈ 1/√batch long, so 5 · f·p_c ≤ 5/√128 ≈ 0.44
  and the weights w stay in (0.5, 0.61): the attended term is close to the plain mean of the
  prototypes for every item (on the test features, permuting P changes test similarities by
  < 1e-7, replacing it by random prototypes or dropping the attention changes them clearly).
  The attended term is also about twice as long as the feature term (on the demo: 0.19 against
  0.08–0.10) and nearly the same for every item, so early in training the hash layer's input is
  mostly one constant vector and the codes of a short run do not separate; ``attention_mix=1``
  switches the attention off (the demo's setting, named in its rows).
- **Heads** per modality: hash head h = tanh(W f̂ + b) with L = 64 bits; label head σ(W f̂ + b).
- **Cross-modal WGAN-GP** (Gulrajani et al. 2017): two critics on the normalised 512-D features
  (512 → 512 → 256 → 1, ReLU; the official 1×1-convolution stack); the audio-space critic takes
  audio features as real and visual ones as fake and vice versa, gradient penalty 10, with
  per-element interpolation weights as in the code. Each minibatch: one step per critic, then one
  step of the hashing networks.
- **Hashing loss** (paper Sec. 3, official ``err``):

      L = T(h_v → h_a) + T(h_a → h_v) + α·Σ σ(−cos(|h|, 1)) + β·BCE(label heads, y)
          + γ·Σ‖h Mᵀ − L(2y − 1)‖² + η·Σ‖h − sign h‖² + μ·(−C_a(f_v) − C_v(f_a)),

  T = the batch-all triplet loss on cosine distance 1 − cos (anchor one modality, positive /
  negative the other modality with the same / another label, margin 0.3, summed); M ∈ {±1}^{C×L}
  the *code map* (class code words), refreshed after every epoch by the official discrete cyclic
  coordinate update from the sign codes seen so far; official weights α = 1, β = 0 (the README's
  default switches the label loss off), γ = 0.001, η = 1, μ = 1.
- **Optimisation**: Adamax; the visual feature net (the official ``img_module``) lr 1e-4, all other
  hashing parameters lr 1e-3 (the official lr × 10), weight decay 5e-4; the hashing rates × 0.6
  (floor 1e-6) after epochs 1, 101, 201, … (official: ``epoch % 100 == 0`` on 0-based epochs);
  critics Adamax lr 1e-3, betas (0.5, 0.9), weight decay 1e-4; batch 128.
- **Retrieval**: codes sign(h) ∈ {±1}^L ranked by Hamming distance; ``output="real"`` ranks by
  cosine on the tanh outputs h instead (the ``agah_real`` row: the same class with ``output`` fixed
  to "real", so the same seed trains the same network; ``real_similarity`` gives that score for a
  model fitted with either setting).

Model selection: the epoch with the best validation MAP (Hamming) on pairs carved from the training
set (stratified by label; the official code validates on its query/database split); its weights,
feature map P and code map M are restored.

Budget: the 8192 × 4096 layer makes one training pair cost ≈ 0.28 GFLOP (forward + backward), a
full pass over 22,482 pairs ≈ 6 TFLOP — minutes on two CPU cores. The defaults therefore train
``epochs`` = 2 "epochs" of ``batches_per_epoch`` = 12 random minibatches (3,072 pairs seen; the
official run is 300 full epochs; 37–40 CPU-seconds on the VEGAS-scale synthetic benchmark,
``benchmarks/bench_adversarial.py``). Set ``batches_per_epoch=None`` for full passes on a GPU.
The official Frobenius normalisation makes each feature row ≈ 1/√batch long, so the hash layer's
output is at first dominated by its bias and every item gets the same code; at the official rates
the codes start to separate only after on the order of a hundred optimiser steps (400 easy
test pairs, 3 steps per epoch, narrow nets: validation MAP at chance for ≈ 35 epochs, 0.98 test MAP
after 100). A budget of a few dozen steps therefore leaves this row near chance.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch.nn import functional as F

# The names marked F401 are re-exported: they lived here before the split, and model files pickle
# the network classes, so files saved before it name them under this module.
from avcmr.methods.agah_losses import (
    bit_balance_loss,
    code_map_loss,
    cosine_distance,  # noqa: F401
    gradient_penalty,
    quantization_loss,
    triplet_all_cosine,
    update_code_map,
)
from avcmr.methods.agah_network import (
    TINY,  # noqa: F401
    AGAHNetwork,
    BatchFrobeniusNormalisation,  # noqa: F401
    class_prototypes,
    label_attention,  # noqa: F401
)
from avcmr.methods.base import (
    HashingOutputMixin,
    RetrievalMethod,
    check_training_data,
    cosine_similarity,
)
from avcmr.methods.model_selection import (
    BestEpoch,
    count_parameters,
    encode_labels,
    split_and_scale,
    validation_map,
)
from avcmr.methods.registry import register, register_variant
from avcmr.methods.torch_utils import pick_device, seed_everything, to_tensor

log = logging.getLogger(__name__)

# The official learning-rate decay never goes below this rate.
LR_FLOOR = 1e-6

SIMPLIFICATIONS = (
    "AGAH as published (label attention, WGAN-GP critics, code map, official loss weights) except: "
    "the image CNN-F is an MLP 1024→8192→4096→512 and the text branch's 8192→4096 stack is "
    "4096 wide for audio (128→4096→512); test items are normalised by a running estimate of the "
    "training batches' Frobenius norm instead of their own test batch's; the first epoch's feature "
    "map is random with unit rows (official: unnormalised Gaussian); the epoch is selected by the "
    "mean Hamming MAP of both directions on a validation split of the training pairs (official: "
    "both directions must improve, on its query set); the training budget is the configured one "
    "(official: 300 full epochs)."
)


def _binarize(real_codes: np.ndarray) -> np.ndarray:
    # sign(h), with the measure-zero h = 0 sent to +1 so that codes are strictly ±1.
    return np.where(np.asarray(real_codes) >= 0.0, 1.0, -1.0)


LOSS_TERMS = (
    "loss",
    "triplet",
    "bit_balance",
    "label",
    "code_map",
    "quantization",
    "adversarial",
    "critic",
)


@register("agah")
class AGAH(HashingOutputMixin, RetrievalMethod):
    simplifications = SIMPLIFICATIONS

    def __init__(
        self,
        n_bits: int = 64,
        feature_dim: int = 512,
        visual_hidden: tuple[int, ...] = (8192, 4096),
        audio_hidden: tuple[int, ...] = (4096,),
        attention_mix: float = 0.8,
        attention_sharpness: float = 5.0,
        margin: float = 0.3,
        alpha: float = 1.0,
        beta: float = 0.0,
        gamma: float = 0.001,
        eta: float = 1.0,
        mu: float = 1.0,
        gradient_penalty_weight: float = 10.0,
        lr: float = 1e-4,
        lr_multiplier: float = 10.0,
        lr_decay_factor: float = 0.6,
        lr_decay_every: int | None = 100,
        weight_decay: float = 5e-4,
        critic_lr: float = 1e-3,
        critic_betas: tuple[float, float] = (0.5, 0.9),
        critic_weight_decay: float = 1e-4,
        batch_size: int = 128,
        epochs: int = 2,
        patience: int | None = None,
        batches_per_epoch: int | None = 12,
        output: str = "codes",
        validation_fraction: float = 0.1,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_bits = n_bits
        self.feature_dim = feature_dim
        self.visual_hidden = visual_hidden
        self.audio_hidden = audio_hidden
        self.attention_mix = attention_mix
        self.attention_sharpness = attention_sharpness
        self.margin = margin
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.eta = eta
        self.mu = mu
        self.gradient_penalty_weight = gradient_penalty_weight
        self.lr = lr
        self.lr_multiplier = lr_multiplier
        self.lr_decay_factor = lr_decay_factor
        self.lr_decay_every = lr_decay_every
        self.weight_decay = weight_decay
        self.critic_lr = critic_lr
        self.critic_betas = critic_betas
        self.critic_weight_decay = critic_weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.batches_per_epoch = batches_per_epoch
        self.output = output
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.device = device

    def fit(self, audio, visual, labels) -> AGAH:
        self._check_output()
        if not 0.0 <= self.attention_mix <= 1.0:
            raise ValueError(f"attention_mix must lie in [0, 1], got {self.attention_mix}")
        audio, visual, labels = check_training_data(audio, visual, labels)
        generator = seed_everything(self.random_state)
        self.device_ = pick_device(self.device)
        self.classes_, codes = encode_labels(labels)
        n_classes = len(self.classes_)
        fit_index, validation_index, self.audio_scaler_, self.visual_scaler_ = split_and_scale(
            audio, visual, codes, self.validation_fraction, self.random_state, self.standardize
        )
        net = AGAHNetwork(
            audio.shape[1],
            visual.shape[1],
            self.visual_hidden,
            self.audio_hidden,
            self.feature_dim,
            self.n_bits,
            n_classes,
            self.batch_size,
            self.attention_mix,
            self.attention_sharpness,
        ).to(self.device_)
        self.network_ = net
        fast = self.lr * self.lr_multiplier
        optimizer = torch.optim.Adamax(
            [
                {"params": net.visual_features.parameters(), "lr": self.lr},
                {"params": net.audio_features.parameters()},
                {"params": [*net.visual_hash.parameters(), *net.audio_hash.parameters()]},
                {"params": [*net.visual_label.parameters(), *net.audio_label.parameters()]},
            ],
            lr=fast,
            weight_decay=self.weight_decay,
        )
        critic_options = {
            "lr": self.critic_lr,
            "betas": tuple(self.critic_betas),
            "weight_decay": self.critic_weight_decay,
        }
        optimizer_audio_critic = torch.optim.Adamax(net.audio_critic.parameters(), **critic_options)
        optimizer_visual_critic = torch.optim.Adamax(
            net.visual_critic.parameters(), **critic_options
        )

        n_fit = len(fit_index)
        audio_t = to_tensor(self.audio_scaler_.transform(audio[fit_index]), self.device_)
        visual_t = to_tensor(self.visual_scaler_.transform(visual[fit_index]), self.device_)
        onehot_t = F.one_hot(torch.as_tensor(codes[fit_index]), n_classes).float().to(self.device_)
        # The latest codes and normalised features of every fit pair (official U, V, FEATURE_I/T).
        visual_codes = torch.zeros(n_fit, self.n_bits, device=self.device_)
        audio_codes = torch.zeros(n_fit, self.n_bits, device=self.device_)
        visual_store = torch.zeros(n_fit, self.feature_dim, device=self.device_)
        audio_store = torch.zeros(n_fit, self.feature_dim, device=self.device_)
        seen = torch.zeros(n_fit, dtype=torch.bool, device=self.device_)
        code_map = torch.sign(torch.randn(n_classes, self.n_bits, generator=generator)).to(
            self.device_
        )
        initial_map = torch.randn(n_classes, self.feature_dim, generator=generator)
        net.prototypes.copy_(F.normalize(initial_map, dim=1).to(self.device_))

        tracker = BestEpoch({"network": net})
        best_code_map = code_map
        self.history_ = []
        for epoch in range(self.epochs):
            started = time.perf_counter()
            net.train()
            order = torch.randperm(n_fit, generator=generator)
            batches = [order[i : i + self.batch_size] for i in range(0, n_fit, self.batch_size)]
            if len(batches) > 1 and len(batches[-1]) < 2:
                batches = batches[:-1]
            if self.batches_per_epoch is not None:
                batches = batches[: self.batches_per_epoch]
            sums = np.zeros(len(LOSS_TERMS))
            for batch in batches:
                batch = batch.to(self.device_)
                a, v, y = audio_t[batch], visual_t[batch], onehot_t[batch]
                f_v, f_a = net.features("visual", v), net.features("audio", a)
                attended_v, attended_a = net.attend(f_v), net.attend(f_a)
                h_v, h_a = net.visual_hash(attended_v), net.audio_hash(attended_a)
                visual_codes[batch], audio_codes[batch] = h_v.detach(), h_a.detach()
                visual_store[batch], audio_store[batch] = f_v.detach(), f_a.detach()
                seen[batch] = True

                critic_losses = []
                for critic, optimizer_critic, real, fake in (
                    (net.audio_critic, optimizer_audio_critic, f_a.detach(), f_v.detach()),
                    (net.visual_critic, optimizer_visual_critic, f_v.detach(), f_a.detach()),
                ):
                    wasserstein = -critic(real).mean() + critic(fake).mean()
                    penalty = gradient_penalty(critic, real, fake, generator)
                    optimizer_critic.zero_grad()
                    (wasserstein + self.gradient_penalty_weight * penalty).backward()
                    optimizer_critic.step()
                    critic_losses.append(wasserstein.item())

                adversarial = -net.audio_critic(f_v).mean() - net.visual_critic(f_a).mean()
                triplet = triplet_all_cosine(h_v, y, h_a, y, self.margin) + triplet_all_cosine(
                    h_a, y, h_v, y, self.margin
                )
                balance = bit_balance_loss(h_v) + bit_balance_loss(h_a)
                label = F.binary_cross_entropy(
                    net.visual_label(attended_v), y, reduction="sum"
                ) + F.binary_cross_entropy(net.audio_label(attended_a), y, reduction="sum")
                mapping = code_map_loss(h_v, code_map, y) + code_map_loss(h_a, code_map, y)
                quantization = quantization_loss(h_v) + quantization_loss(h_a)
                loss = (
                    triplet
                    + self.alpha * balance
                    + self.beta * label
                    + self.gamma * mapping
                    + self.eta * quantization
                    + self.mu * adversarial
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                sums += [
                    loss.item(),
                    triplet.item(),
                    balance.item(),
                    label.item(),
                    mapping.item(),
                    quantization.item(),
                    adversarial.item(),
                    float(np.mean(critic_losses)),
                ]
            with torch.no_grad():
                code_map = update_code_map(
                    audio_codes[seen], visual_codes[seen], code_map, onehot_t[seen]
                )
                net.prototypes.copy_(
                    class_prototypes(
                        audio_store[seen], visual_store[seen], onehot_t[seen], net.prototypes
                    )
                )
            if self.lr_decay_every and epoch % self.lr_decay_every == 0:
                for group in optimizer.param_groups:
                    group["lr"] = max(group["lr"] * self.lr_decay_factor, LR_FLOOR)
            means = [float(x) for x in sums / max(len(batches), 1)]
            record = {"epoch": epoch + 1, **dict(zip(LOSS_TERMS, means, strict=True))}
            record["pairs_seen"] = int(seen.sum())
            if len(validation_index):
                record["val_map"] = validation_map(
                    _binarize(self._real("audio", audio[validation_index])),
                    _binarize(self._real("visual", visual[validation_index])),
                    codes[validation_index],
                    kind="hamming",
                )
                if tracker.update(epoch + 1, record["val_map"]):
                    best_code_map = code_map.clone()
            record["seconds"] = time.perf_counter() - started
            self.history_.append(record)
            log.info("agah epoch %d: %s", epoch + 1, record)
            if tracker.patience_exhausted(epoch + 1, self.patience):
                log.info("agah: no better validation for %d epochs, stopped after epoch %d", self.patience, epoch + 1)
                break
        self.best_epoch_ = tracker.finish(self.epochs)
        net.eval()
        self.code_map_ = (
            (best_code_map if tracker.best_epoch is not None else code_map).cpu().numpy()
        )
        self.feature_map_ = net.prototypes.cpu().numpy()
        return self

    @torch.no_grad()
    def _real(self, modality: str, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The tanh outputs h of raw features (eval mode: running normalisation, stored P)."""
        scaler = self.audio_scaler_ if modality == "audio" else self.visual_scaler_
        scaled = scaler.transform(x)
        self.network_.eval()
        parts = [
            self.network_.hash_outputs(
                modality, to_tensor(scaled[i : i + batch_size], self.device_)
            )
            .double()
            .cpu()
            .numpy()
            for i in range(0, len(scaled), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_bits))

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("network_")
        real = self._real("audio", audio)
        return real if self.output == "real" else _binarize(real)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("network_")
        real = self._real("visual", visual)
        return real if self.output == "real" else _binarize(real)

    def real_similarity(self, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        """Cosine on the real-valued tanh outputs, whatever ``output`` is."""
        self._check_fitted("network_")
        return cosine_similarity(self._real("audio", audio), self._real("visual", visual))

    def n_parameters(self) -> int:
        self._check_fitted("network_")
        return count_parameters(self.network_)


AGAHReal = register_variant(
    "agah_real",
    AGAH,
    "AGAHReal",
    "`agah_real`: the `agah` model ranked by cosine on its real-valued tanh outputs (METHODS.md: "
    "hashing methods also report cosine on the pre-binarisation outputs). The constructor is "
    'AGAH\'s with ``output`` fixed to "real"; training does not depend on ``output``, so with the '
    "same parameters and seed it trains the network of the `agah` row.",
    output="real",
)
