"""Recipes of the families trained without a discriminator: by likelihood (flows), by
cross-entropy over the next sample (autoregressive) or by denoising (diffusion). The table of
recipes is in :mod:`audiofootprint.training.objectives`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio

from audiofootprint.training.config import ObjectiveError
from audiofootprint.training.objective_base import Objective, loss_value

__all__ = ["DiffWaveObjective", "WaveFlowObjective", "WaveGlowObjective", "WaveGradObjective", "WaveRNNObjective"]


class _FlowLikelihood(Objective):
    """A normalising flow's negative log-likelihood per sample: ``sum(z**2) / (2 sigma**2)`` minus the sum of
    the log-determinant terms ``flow_forward(audio, mel)`` returns after ``z`` (each a list of tensors), over
    ``z.numel()``; Adam from the ``training`` section, ``sigma`` from it too."""

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        if not hasattr(model, "flow_forward"):
            raise ObjectiveError(f"{self.name} needs a model with flow_forward(audio, mel)")
        self.sigma = float(self.recipe("sigma"))
        self._add_optim("generator", model.parameters())
        self.finish_setup()

    def step(self, wave, ctx):
        g = self.optims["generator"]
        mel = self.features(wave)
        g.zero_grad()
        z, *log_determinants = self.model.flow_forward(wave, mel)
        loss = torch.sum(z * z) / (2 * self.sigma ** 2)
        for terms in log_determinants:
            loss = loss - sum(torch.sum(term) for term in terms)
        loss = loss / z.numel()
        loss.backward()
        return {"grad_norm_g": g.step(ctx), "loss": loss_value(loss)}


class WaveGlowObjective(_FlowLikelihood):
    """NVIDIA/waveglow ``WaveGlowLoss``: the log-determinants of the affine couplings (``log_s``) and of
    the invertible 1x1 convolutions."""

    name = "waveglow"


class WaveFlowObjective(_FlowLikelihood):
    """Parakeet ``WaveFlowLoss``: the log-determinants of the affine autoregressive flows (``log_s``).
    Parakeet and the thesis code add the constant ``ln(2 pi) / 2 + ln sigma``, which moves no gradient."""

    name = "waveflow"


class WaveRNNObjective(Objective):
    """torchaudio's WaveRNN recipe, consistent with :class:`~audiofootprint.vocoders.wavernn.WaveRNNVocoder`.

    A crop of ``(seq_len_factor + 2 * pad) * hop + 1`` samples gives ``seq_len_factor + 2 * pad``
    mel frames (``pad = (kernel_size - 1) // 2`` frames of context either side, which the
    MelResNet's unpadded first convolution consumes, as ``infer`` pads them), normalised to the
    [0, 1] dB scale the vocoder feeds the network (``WaveRNNVocoder.normalize``); the
    ``seq_len_factor * hop`` samples after the left context are mu-law encoded to classes
    ``c``, the network sees ``2 c / (n_classes - 1) - 1`` (what ``infer`` feeds back) and is
    trained by cross-entropy to predict the class of the next sample.
    """

    name = "wavernn"

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        self.net = getattr(model, "model", None)
        if not isinstance(self.net, torchaudio.models.WaveRNN) or not hasattr(model, "normalize"):
            raise ObjectiveError("wavernn needs a WaveRNNVocoder (torchaudio WaveRNN + normalize)")
        self.seq_len_factor = int(self.recipe("seq_len_factor"))
        self.pad = int(self.net._pad)
        self.n_classes = int(self.net.n_classes)
        self._add_optim("generator", model.parameters())
        self.finish_setup()

    def crop_samples(self, segment_samples: int) -> int:
        return (self.seq_len_factor + 2 * self.pad) * self.model.hop_length + 1

    def step(self, wave, ctx):
        g = self.optims["generator"]
        hop, pad, length = self.model.hop_length, self.pad, self.seq_len_factor
        with torch.no_grad():
            spec = self.model.normalize(self.features(wave[:, : (length + 2 * pad) * hop])).unsqueeze(1)
            classes = torchaudio.functional.mu_law_encoding(wave.clamp(-1.0, 1.0), self.n_classes)
            start = pad * hop
            x_in = 2.0 * classes[:, start : start + length * hop].to(wave.dtype) / (self.n_classes - 1) - 1.0
            target = classes[:, start + 1 : start + length * hop + 1]
        g.zero_grad()
        logits = self.net(x_in.unsqueeze(1), spec).squeeze(1)  # [B, T, n_classes]
        loss = F.cross_entropy(logits.transpose(1, 2), target)
        loss.backward()
        return {"grad_norm_g": g.step(ctx), "loss": loss_value(loss)}


class DiffWaveObjective(Objective):
    """lmnt-com/diffwave ``train_step``: ``x_t = sqrt(a_t) x + sqrt(1 - a_t) eps`` at a uniform
    step ``t`` of the training schedule (``a_t`` the cumulative product of ``1 - beta``), loss
    ``L1(eps, eps_theta(x_t, t | mel))``, through :meth:`DiffWave.denoise`."""

    name = "diffwave"

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        if not hasattr(model, "denoise") or not hasattr(model, "noise_schedule"):
            raise ObjectiveError("diffwave needs a DiffWave model (denoise, noise_schedule)")
        beta = torch.tensor(model.noise_schedule, dtype=torch.float64)
        self.noise_level = torch.cumprod(1.0 - beta, dim=0).float().to(self.device)
        self._add_optim("generator", model.parameters())
        self.finish_setup()

    def step(self, wave, ctx):
        g = self.optims["generator"]
        mel = self.features(wave)
        g.zero_grad()
        n = wave.shape[0]
        t = torch.randint(0, len(self.noise_level), (n,), device=wave.device)
        scale = self.noise_level[t].unsqueeze(1)
        noise = torch.randn_like(wave)
        noisy = scale.sqrt() * wave + (1.0 - scale).sqrt() * noise
        cond = self.model.spectrogram_upsampler(mel)
        predicted = self.model.denoise(noisy, t.to(wave.dtype), cond)
        loss = F.l1_loss(predicted, noise)
        loss.backward()
        return {"grad_norm_g": g.step(ctx), "loss": loss_value(loss)}


class WaveGradObjective(Objective):
    """WaveGrad (arXiv 2009.00713, Algorithm 1; lmnt-com/wavegrad ``learner.py``): a segment s drawn
    uniformly from the ``S`` steps of the model's training schedule, a continuous noise level
    ``l ~ U(l_{s-1}, l_s)`` between its consecutive levels (``l_0 = 1``, ``l_s = sqrt(alpha_bar_s)``),
    ``y = l x + sqrt(1 - l^2) eps``, loss ``L1(eps, eps_theta(y | mel, l))`` through :meth:`WaveGrad.denoise`."""

    name = "wavegrad"

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        if not all(hasattr(model, key) for key in ("denoise", "noise_schedule", "upsample_factors")):
            raise ObjectiveError("wavegrad needs a WaveGrad model (denoise, noise_schedule)")
        beta = torch.tensor(model.noise_schedule, dtype=torch.float64)
        levels = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1.0 - beta, dim=0).sqrt()])
        self.levels = levels.float().to(self.device)  # l_0 = 1, l_s = sqrt(alpha_bar_s)
        self._add_optim("generator", model.parameters())
        self.finish_setup()

    def sample_noise_level(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s, level)``: ``n`` segments ``s`` in ``1..S`` and a level uniform between ``levels[s - 1]``
        and ``levels[s]`` (torch's global generator unless ``generator`` is given)."""
        device = self.levels.device
        s = torch.randint(1, len(self.levels), (n,), generator=generator, device=device)
        u = torch.rand(n, generator=generator, device=device)
        hi, lo = self.levels[s - 1], self.levels[s]
        return s, hi + u * (lo - hi)

    def step(self, wave, ctx):
        g = self.optims["generator"]
        mel = self.features(wave)
        g.zero_grad()
        _, level = self.sample_noise_level(wave.shape[0])
        level = level.to(wave.dtype)
        noise = torch.randn_like(wave)
        noisy = level.unsqueeze(1) * wave + (1.0 - level.unsqueeze(1) ** 2).sqrt() * noise
        predicted = self.model.denoise(noisy, mel, level)
        loss = F.l1_loss(predicted, noise)
        loss.backward()
        return {"grad_norm_g": g.step(ctx), "loss": loss_value(loss)}
