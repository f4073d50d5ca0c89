"""HP-GAN's networks as plain ``nn.Module``: the sequence-to-sequence generator, the critic (also the shape of the
motion-quality network) and the action classifier built on the critic's features.

Sizes and initialisations follow the official TensorFlow code (ebarsoum/hpgan, ``braniac/models/body.py``):
GRU 2 × 1024, a 128-d pose embedding, z of 128 uniform numbers in [-0.1, 0.1], a critic of a per-frame
128-d embedding and three 512-unit layers (Glorot-uniform, as TensorFlow's dense layers). The GRUs keep
PyTorch's initialisation (TensorFlow's GRU cell uses Glorot weights and gate biases of 1).
"""

from __future__ import annotations

import torch
from torch import nn


def _truncated_normal_(weight: torch.Tensor, std: float) -> torch.Tensor:
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


class Seq2SeqGenerator(nn.Module):
    """Observed poses (B, T_obs, J, 3) and noise z (B, z_dim) → future poses (B, T_pred, J, 3).

    Encoder: e_t = W_in · x_t, (o_t, h_t) = GRU_enc(e_t, h_{t-1}). The noise enters through the encoder's
    final state, one bias-free map per layer: h⁰_l = h_l + W_z,l · z. Decoder: its first input is
    W_si · o_{T_obs} and every later input W_si · d_{t-1}, its own previous output; x̂_t = W_out · d_t + b.
    The outputs are poses (normalised coordinates), as in the official code; ``residual=True`` (not in the
    paper) makes them offsets from the last observed pose, x̂_t = x_obs,last + W_out · d_t + b, so that an
    untrained generator starts at the zero-velocity prediction instead of the mean pose.
    ``use_z=False`` is the deterministic variant (z is ignored)."""

    def __init__(self, num_joints: int = 15, hidden: int = 1024, layers: int = 2, embed: int = 128,
                 z_dim: int = 128, use_z: bool = True, residual: bool = False):
        super().__init__()
        self.num_joints, self.z_dim, self.use_z, self.residual = num_joints, z_dim, use_z, residual
        self.embed = nn.Linear(num_joints * 3, embed)
        self.encoder = nn.GRU(embed, hidden, layers, batch_first=True)
        self.decoder = nn.GRU(embed, hidden, layers, batch_first=True)
        self.noise_to_state = nn.ModuleList(nn.Linear(z_dim, hidden, bias=False) for _ in range(layers))
        self.state_to_input = nn.Linear(hidden, embed, bias=False)
        self.out = nn.Linear(hidden, num_joints * 3)
        for linear in (self.embed, self.state_to_input, self.out, *self.noise_to_state):
            _truncated_normal_(linear.weight, 0.001)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self, observed: torch.Tensor, z: torch.Tensor | None, n_pred: int) -> torch.Tensor:
        batch = observed.shape[0]
        outputs, state = self.encoder(self.embed(observed.flatten(2)))
        if self.use_z:
            if z is None:
                raise ValueError("this generator takes noise: pass z (B, z_dim), e.g. from sample_z")
            state = state + torch.stack([layer(z) for layer in self.noise_to_state])
        step_input = self.state_to_input(outputs[:, -1:])
        poses = []
        for _ in range(n_pred):
            out, state = self.decoder(step_input, state)
            poses.append(self.out(out[:, 0]))
            step_input = self.state_to_input(out)
        future = torch.stack(poses, dim=1).view(batch, n_pred, self.num_joints, 3)
        return future + observed[:, -1:] if self.residual else future


def sample_z(batch: int, z_dim: int, scale: float = 0.1, generator: torch.Generator | None = None,
             device: torch.device | str | None = None) -> torch.Tensor:
    """Noise z ~ U(-scale, scale)^z_dim, as the official code draws it (scale 0.1)."""
    return (torch.rand(batch, z_dim, generator=generator) * 2 - 1).mul_(scale).to(device)


class SequenceCritic(nn.Module):
    """A whole sequence (B, T, J, 3) → one score (B,): a bias-free per-frame embedding W_i · x_t (128-d),
    flattened over the T frames, then ``layers`` ReLU layers of ``hidden`` units and a linear output.

    As the critic it gives the Wasserstein score; as the motion-quality network its output is a logit
    (sigmoid → probability that the sequence is real motion)."""

    def __init__(self, num_joints: int = 15, frames: int = 30, embed: int = 128, hidden: int = 512, layers: int = 3):
        super().__init__()
        self.embed = nn.Linear(num_joints * 3, embed, bias=False)
        _truncated_normal_(self.embed.weight, 1.0)
        blocks, width = [], frames * embed
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, 1)
        for layer in (*self.body[::2], self.head):  # TensorFlow's dense default: Glorot uniform, zero bias
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.frames, self.feature_dim = frames, hidden

    def features(self, poses: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (B, hidden): what the action classifier builds on."""
        if poses.shape[1] != self.frames:
            raise ValueError(f"the critic takes {self.frames}-frame sequences, got {poses.shape[1]} frames")
        return self.body(self.embed(poses.flatten(2)).flatten(1))

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(poses)).squeeze(-1)


class ActionClassifier(nn.Module):
    """The critic's layers (embedding + hidden layers) with a new linear head over ``num_classes`` actions.

    ``critic`` given: start from its weights (the transfer the paper reports); ``freeze``: train only the head.
    Without it the same network starts from random weights (the from-scratch baseline)."""

    def __init__(self, num_classes: int, num_joints: int = 15, frames: int = 30, embed: int = 128, hidden: int = 512,
                 layers: int = 3, critic: SequenceCritic | None = None, freeze: bool = False):
        super().__init__()
        self.trunk = SequenceCritic(num_joints, frames, embed, hidden, layers)
        if critic is not None:
            self.trunk.load_state_dict(critic.state_dict())
        self.trunk.head = nn.Identity()
        self.trunk.requires_grad_(not freeze)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.features(poses))
