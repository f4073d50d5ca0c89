"""Hand-crafted mixing policies (the baselines), each returning the mixed batch and the label weight λ.

Every policy pairs sample i with sample ``index[i]`` (a random permutation) and the loss is the mixup
cross-entropy ``λ·CE(ŷ, y) + (1 − λ)·CE(ŷ, y[index])`` (:func:`projects.automix.losses.mixup_cross_entropy`),
where λ is the share of sample i in the mixed input:

* mixup (Zhang et al. 2018): x̃ = λx + (1 − λ)x[index], λ ~ Beta(α, α);
* CutMix (Yun et al. 2019): a box of area (1 − λ)·H·W at a uniform centre, clipped to the image, is
  pasted from x[index]; λ is recomputed as the exact pixel share of x;
* SaliencyMix (Uddin et al. 2021): CutMix whose box is centred on the most salient pixel of the
  partner image (one saliency map per batch, as openmixup does), saliency by the spectral residual;
* Manifold Mixup (Verma et al. 2019): mixup of the hidden state after a random stage (handled by the
  backbone's ``mix_at``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def sample_lam(alpha: float, rng: np.random.Generator) -> float:
    return float(rng.beta(alpha, alpha)) if alpha > 0 else 1.0


def mixup(x: torch.Tensor, index: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    return lam * x + (1 - lam) * x[index], lam


def box(height: int, width: int, lam: float, rng: np.random.Generator,
        center: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """A box (y0, y1, x0, x1) of area about (1 − λ)·H·W, centred at ``center`` (uniform if None), clipped."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = center if center is not None else (int(rng.integers(height)), int(rng.integers(width)))
    y0, y1 = np.clip(cy - ch // 2, 0, height), np.clip(cy + ch // 2, 0, height)
    x0, x1 = np.clip(cx - cw // 2, 0, width), np.clip(cx + cw // 2, 0, width)
    return int(y0), int(y1), int(x0), int(x1)


def paste(x: torch.Tensor, index: torch.Tensor, region: tuple[int, int, int, int]) -> tuple[torch.Tensor, float]:
    """x with ``region`` taken from x[index]; λ = share of pixels still from x."""
    y0, y1, x0, x1 = region
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[index][:, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (x.shape[-1] * x.shape[-2])
    return out, lam


def cutmix(x: torch.Tensor, index: torch.Tensor, lam: float, rng: np.random.Generator):
    return paste(x, index, box(x.shape[-2], x.shape[-1], lam, rng))


def spectral_residual_saliency(image: torch.Tensor) -> torch.Tensor:
    """Saliency map (H, W) of one image (C, H, W) by the spectral residual (Hou & Zhang 2007).

    S = G * |F⁻¹[exp(R + iφ)]|², with R = log|F(I)| − h₃ * log|F(I)| (3×3 mean filter), φ the phase of
    F(I), I the grey image, G a Gaussian blur. (openmixup calls OpenCV's fine-grained static saliency
    instead, which needs opencv-contrib; this is the other saliency model OpenCV ships.)
    """
    grey = image.float().mean(0)
    spectrum = torch.fft.fft2(grey)
    log_amp = torch.log(spectrum.abs() + 1e-8)
    residual = log_amp - F.avg_pool2d(log_amp[None, None], 3, 1, 1, count_include_pad=False)[0, 0]
    saliency = torch.fft.ifft2(torch.exp(residual + 1j * torch.angle(spectrum))).abs() ** 2
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :]) / 256.0
    return F.conv2d(saliency[None, None], k[None, None].to(saliency), padding=2)[0, 0]


def saliencymix(x: torch.Tensor, index: torch.Tensor, lam: float, rng: np.random.Generator):
    saliency = spectral_residual_saliency(x[index[0]])
    cy, cx = divmod(int(saliency.argmax()), x.shape[-1])
    return paste(x, index, box(x.shape[-2], x.shape[-1], lam, rng, center=(cy, cx)))
