"""The generic losses of the vocoder recipes: GAN losses (LSGAN, hinge), feature matching, and Parallel
WaveGAN's multi-resolution STFT loss. The recipes that combine them are in
:mod:`audiofootprint.training.objectives`."""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from audiofootprint.training.config import ObjectiveError
from audiofootprint.training.discriminators import STFT_RESOLUTIONS, DiscriminatorOutput


def _scores(outputs: Iterable[DiscriminatorOutput]) -> list[torch.Tensor]:
    return [score for score, _ in outputs]


def discriminator_loss(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput], kind: str,
                       average: bool = False) -> torch.Tensor:
    """Sum (or mean) over sub-discriminators of the real and fake terms.

    ``lsgan``: mean((1 - D(y))^2) + mean(D(G(x))^2); ``hinge``: mean(relu(1 - D(y))) + mean(relu(1 + D(G(x)))).
    """
    total = 0.0
    for r, f in zip(_scores(real), _scores(fake)):
        if kind == "lsgan":
            total = total + torch.mean((1.0 - r) ** 2) + torch.mean(f ** 2)
        elif kind == "hinge":
            total = total + torch.mean(F.relu(1.0 - r)) + torch.mean(F.relu(1.0 + f))
        else:
            raise ObjectiveError(f"unknown GAN loss {kind!r}")
    return total / len(real) if average else total


def generator_adversarial_loss(fake: list[DiscriminatorOutput], kind: str, average: bool = False) -> torch.Tensor:
    """``lsgan``: mean((1 - D(G(x)))^2); ``hinge``: mean(relu(1 - D(G(x)))) (Vocos);
    ``hinge_linear``: -mean(D(G(x))) (MelGAN). Summed (or averaged) over sub-discriminators."""
    total = 0.0
    for f in _scores(fake):
        if kind == "lsgan":
            total = total + torch.mean((1.0 - f) ** 2)
        elif kind == "hinge":
            total = total + torch.mean(F.relu(1.0 - f))
        elif kind == "hinge_linear":
            total = total - torch.mean(f)
        else:
            raise ObjectiveError(f"unknown GAN loss {kind!r}")
    return total / len(fake) if average else total


def feature_matching(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput],
                     detach_real: bool = False) -> torch.Tensor:
    """Sum over sub-discriminators and their feature maps of mean |D_l(y) - D_l(G(x))|."""
    total = 0.0
    for (_, fr), (_, fg) in zip(real, fake):
        for r, g in zip(fr, fg):
            total = total + torch.mean(torch.abs((r.detach() if detach_real else r) - g))
    return total


class MultiResolutionSTFTLoss(nn.Module):
    """Parallel WaveGAN's multi-resolution STFT loss (kan-bayashi ``losses/stft_loss.py``).

    Per resolution ``(n_fft, hop, win)``: magnitudes ``sqrt(clamp(re^2 + im^2, 1e-7))`` of a centred,
    reflect-padded STFT with a Hann window of ``win``; spectral convergence
    ``||S_y - S_x||_F / ||S_y||_F`` and ``mean |log S_y - log S_x|``; each averaged over the
    resolutions. ``[B, C, T]`` inputs (sub-bands) are treated as ``B * C`` signals.
    Returns ``(spectral_convergence, log_magnitude)``.
    """

    def __init__(self, resolutions: Iterable[Iterable[int]] = STFT_RESOLUTIONS):
        super().__init__()
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def _magnitude(self, x: torch.Tensor, i: int) -> torch.Tensor:
        n_fft, hop, win = self.resolutions[i]
        spec = torch.stft(x, n_fft, hop, win, getattr(self, f"window{i}").to(x.dtype), center=True,
                          pad_mode="reflect", return_complex=True)
        return torch.sqrt(torch.clamp(spec.real ** 2 + spec.imag ** 2, min=1e-7))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 3:
            x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        sc, mag = 0.0, 0.0
        for i in range(len(self.resolutions)):
            xm, ym = self._magnitude(x, i), self._magnitude(y, i)
            sc = sc + torch.linalg.norm(ym - xm) / torch.linalg.norm(ym)
            mag = mag + F.l1_loss(torch.log(ym), torch.log(xm))
        n = len(self.resolutions)
        return sc / n, mag / n
