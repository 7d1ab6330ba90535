"""The dual-subspace model's per-modality networks, kept apart from the estimators that train them.

:class:`SeparateNets` (disjoint explicit and implicit nets: `ours`, `explicit`, `implicit`) and
:class:`SharedTrunk` (one trunk, two heads: `ex_im_share`); :func:`output_blocks` runs a
``ModuleDict`` of them (``audio``, ``visual``) into the named output blocks the losses take, and
:class:`BothModalities` wraps that call as one module for ``torch.func.functional_call``.
Fitted estimators hold these modules, so saved models refer to them; ``avcmr.methods.dual_subspace``
re-exports both classes under the path older model files name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avcmr.methods.torch_utils import activation_layer, mlp


class SeparateNets(nn.Module):
    """One modality's explicit and implicit nets, disjoint (`ours`, `explicit`, `implicit`);
    ``blocks`` names the nets built (an ablation trained with ``ablation_nets="own"`` has one)."""

    def __init__(self, input_size: int, hidden: Sequence[int], explicit_dim: int, implicit_dim: int, activation: str,
                 blocks: Sequence[str] = ("explicit", "implicit")):  # fmt: skip
        super().__init__()
        self.explicit = mlp([input_size, *hidden, explicit_dim], activation=activation) if "explicit" in blocks else None
        self.implicit = mlp([input_size, *hidden, implicit_dim], activation=activation) if "implicit" in blocks else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return (None if self.explicit is None else self.explicit(x),
                None if self.implicit is None else self.implicit(x))  # fmt: skip


class SharedTrunk(nn.Module):
    """One modality's trunk shared by a 10-D explicit head and a C-D implicit head (`ex_im_share`)."""

    def __init__(self, input_size: int, hidden: Sequence[int], explicit_dim: int, implicit_dim: int, activation: str,
                 blocks: Sequence[str] = ("explicit", "implicit")):  # fmt: skip
        super().__init__()
        # mlp() leaves its last layer linear; the trunk's last hidden layer needs its activation too.
        self.trunk = nn.Sequential(*mlp([input_size, *hidden], activation=activation), activation_layer(activation))
        self.explicit = nn.Linear(hidden[-1], explicit_dim)
        self.implicit = nn.Linear(hidden[-1], implicit_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = self.trunk(x)
        return self.explicit(shared), self.implicit(shared)


def output_blocks(networks: nn.ModuleDict, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ``OUTPUT_BLOCKS`` the nets of both modalities produce (a net not built gives none)."""
    explicit_audio, implicit_audio = networks["audio"](audio)
    explicit_visual, implicit_visual = networks["visual"](visual)
    outputs = {"explicit_audio": explicit_audio, "implicit_audio": implicit_audio,
               "explicit_visual": explicit_visual, "implicit_visual": implicit_visual}  # fmt: skip
    return {name: value for name, value in outputs.items() if value is not None}


class BothModalities(nn.Module):
    """The four output blocks of a ModuleDict of nets as one module call, for ``functional_call``."""

    def __init__(self, networks: nn.ModuleDict):
        super().__init__()
        self.networks = networks

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
        return output_blocks(self.networks, audio, visual)
