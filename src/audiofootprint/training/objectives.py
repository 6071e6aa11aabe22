"""Each vocoder family's original training objective, selected by name.

An :class:`Objective` owns what a training step needs besides the generator: the discriminators,
the optimisers (with their learning-rate schedules) and the losses. :meth:`Objective.step` takes a
batch of waveform crops ``[B, T]``, computes the generator's input features from them
(:func:`audiofootprint.features.mel_spectrogram` with the model's mel settings and convention, no
gradient), runs one training step in the order of the official code, and returns the losses as
floats (``loss``: the generator's total loss; ``grad_norm_g``: the generator's gradient norm).
The generic losses live in :mod:`audiofootprint.training.losses`, the optimisers and schedules in
:mod:`audiofootprint.training.optimisation`; this module holds the recipes that combine them.

========================  ====================================================================
name                      recipe
========================  ====================================================================
``hifigan``               jik876/hifi-gan ``train.py``: LSGAN with MPD + MSD, mel L1 x 45 (mel up
                          to Nyquist, ``fmax_for_loss: null``), feature matching x 2; AdamW 2e-4,
                          betas (0.8, 0.99), lr x 0.999 per epoch. HiFi-GAN V1/V2/V3.
``melgan``                descriptinc/melgan-neurips ``scripts/train.py``: hinge GAN with the MelGAN
                          MSD, feature matching x 10 (each layer weighted 4 / (n_layers + 1) / num_D,
                          the output layer left out); Adam 1e-4, betas (0.5, 0.9).
``multiband_melgan``      kan-bayashi/ParallelWaveGAN ``multi_band_melgan.v2.yaml``: (full-band
                          MR-STFT + sub-band MR-STFT of the PQMF analysis of the target) / 2, then
                          + 2.5 x LSGAN with the MelGAN MSD (3 scales, 512 channels) once the
                          generator-only warm-up (200k of 1M steps: 20 % of the budget) is over;
                          Adam 1e-3, eps 1e-7, AMSGrad, lr halved at 10 %, 20 %, ... 60 %.
``parallel_wavegan``      kan-bayashi ``parallel_wavegan.v1.yaml``: MR-STFT (sc + log-mag) +
                          4.0 x LSGAN with the PWG discriminator after a warm-up (100k of 400k: 25 %
                          of the budget); RAdam 1e-4 / 5e-5 (eps 1e-6), gradient norms 10 / 1, lr
                          halved at half the budget (StepLR 200k of 400k).
``univnet``               mindslab-ai/univnet ``utils/train.py``: LSGAN with MPD (64-1024 ch.) + MRD,
                          averaged over the 8 sub-discriminators, + 2.5 x MR-STFT; AdamW 1e-4,
                          betas (0.5, 0.9); no feature matching.
``bigvgan``               NVIDIA/BigVGAN (v1, ``bigvgan_base_22khz_80band.json``): LSGAN with MPD +
                          MRD, mel L1 x 45 (up to Nyquist), feature matching x 2; AdamW 1e-4, betas
                          (0.8, 0.99), lr x 0.999 per epoch, gradients clipped at norm 1000.
``vocos``                 gemelo-ai/vocos ``experiment.py``: hinge GAN with MPD + banded MRD (MRD
                          terms x 0.1), each averaged over its sub-discriminators, feature matching,
                          mel L1 x 45 (the model's own mel); AdamW 5e-4, betas (0.8, 0.9), cosine
                          decay over the budget. The discriminator step comes first.
``waveglow``              NVIDIA/waveglow ``glow.py`` ``WaveGlowLoss``: negative log-likelihood
                          z^2/(2 sigma^2) - sum log s - sum log|det W| per sample, sigma 1.0; Adam 1e-4.
``waveflow``              PaddlePaddle/Parakeet ``WaveFlowLoss``: negative log-likelihood
                          z^2/(2 sigma^2) - sum log s per sample, sigma 1.0; Adam 2e-4 (the thesis:
                          gradient norm 5).
``wavernn``               torchaudio ``examples/pipeline_wavernn`` (the bundle's recipe): cross-entropy
                          over the 8-bit mu-law class of the next sample, 5-hop crops with 2 frames
                          of context either side; Adam 1e-4, gradient norm 4.
``diffwave``              lmnt-com/diffwave ``learner.py``: L1 between the noise and its prediction at
                          a uniformly drawn step of the 50-step training schedule; Adam 2e-4.
``wavegrad``              arXiv 2009.00713 + lmnt-com/wavegrad ``learner.py``: L1 between the noise and
                          its prediction at a continuous noise level drawn uniformly between two
                          consecutive levels of the training schedule; Adam 2e-4, gradient norm 1.
``none``                  Griffin-Lim: nothing to train.
========================  ====================================================================

The values a step uses are those of the model's ``training`` section: its YAML file is their one
home, each with its source (the table above describes the recipes).

Step counts of the recipes (warm-ups, learning-rate milestones) are given in the ``training``
sections of conf/vocoder/*.yaml as fractions of the *budget* (the recipe's count over its total),
so that a short run keeps the recipe's proportions: the fraction reached is
``progress = max(step / max_steps, seconds / max_seconds)``. Per-epoch decays count epochs of the
training corpus.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from audiofootprint.features import mel_spectrogram
from audiofootprint.training.config import ObjectiveError
from audiofootprint.training.density_objectives import (
    DiffWaveObjective,
    WaveFlowObjective,
    WaveGlowObjective,
    WaveGradObjective,
    WaveRNNObjective,
)
from audiofootprint.training.discriminators import (
    DiscriminatorOutput,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    MultiScaleDiscriminator,
    ParallelWaveGANDiscriminator,
)
from audiofootprint.training.losses import (
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching,
    generator_adversarial_loss,
)
from audiofootprint.training.objective_base import Objective, loss_value
from audiofootprint.training.optimisation import StepContext
from audiofootprint.vocoders.base import Vocoder

__all__ = ["OBJECTIVES", "Objective", "ObjectiveError", "StepContext", "build_objective"]


def _detach_all(outputs: list[DiscriminatorOutput]) -> list[DiscriminatorOutput]:
    return [(s.detach(), [f.detach() for f in fm]) for s, fm in outputs]


class _HiFiGANFamily(Objective):
    """HiFi-GAN's step (and BigVGAN's, Vocos'): G forward; D step; G step with mel + adv + FM.

    ``gan``: "lsgan" or "hinge"; ``average``: divide adversarial and FM terms by the number of
    sub-discriminators (Vocos); ``weights``: per discriminator set, the factor of its adversarial
    and FM terms (Vocos: MRD x 0.1); ``discriminator_first_with_fresh_generator``: Vocos' order
    (D step on a no-grad synthesis, then a new G forward for the G step).
    """

    gan = "lsgan"
    average = False
    vocos_order = False

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        self.mel_weight = float(self.recipe("loss", "mel"))
        self.fm_weight = float(self.recipe("loss", "feature_matching"))
        # optional: each discriminator set's weight (Vocos: mrd 0.1), 1 where not given
        self.set_weights = {k: float(v) for k, v in (self.settings["loss"].get("discriminator_weights") or {}).items()}
        full_band = bool(self.recipe("loss", "mel_full_band"))
        self.loss_mel = dataclasses.replace(model.mel, f_max=None) if full_band else model.mel
        self.discriminators.update(self.build_discriminators())
        self._add_optim("generator", model.parameters())
        self._add_optim("discriminator", self.discriminators.parameters())
        self.finish_setup()

    def build_discriminators(self) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mel_loss(self, y_hat: torch.Tensor, y_mel: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(y_mel, mel_spectrogram(y_hat, self.loss_mel, self.convention))

    def _d_loss(self, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for key, d in self.discriminators.items():
            real, fake = d(y), d(y_hat)
            total = total + self.set_weights.get(key, 1.0) * discriminator_loss(real, fake, self.gan, self.average)
        return total

    def step(self, wave: torch.Tensor, ctx: StepContext) -> dict[str, float]:
        g, d = self.optims["generator"], self.optims["discriminator"]
        mel = self.features(wave)
        with torch.no_grad():
            y_mel = mel_spectrogram(wave, self.loss_mel, self.convention)
        out: dict[str, float] = {}
        adversarial = self.adversarial(ctx)
        if self.vocos_order:
            if adversarial:
                with torch.no_grad():
                    y_hat = self.model(mel)
                d.zero_grad()
                loss_d = self._d_loss(wave, y_hat)
                loss_d.backward()
                out["grad_norm_d"] = d.step(ctx)
                out["loss_d"] = loss_value(loss_d)
            y_hat = self.model(mel)
        else:
            y_hat = self.model(mel)
            if adversarial:
                d.zero_grad()
                loss_d = self._d_loss(wave, y_hat.detach())
                loss_d.backward()
                out["grad_norm_d"] = d.step(ctx)
                out["loss_d"] = loss_value(loss_d)
        # generator
        g.zero_grad()
        loss_mel = self._mel_loss(y_hat, y_mel)
        loss_g = self.mel_weight * loss_mel
        if adversarial:
            adv, fm = 0.0, 0.0
            for key, disc in self.discriminators.items():
                real, fake = disc(wave), disc(y_hat)
                w = self.set_weights.get(key, 1.0)
                n = len(fake) if self.average else 1
                adv = adv + w * generator_adversarial_loss(fake, self.gan, self.average)
                fm = fm + w * feature_matching(real, fake) / n
            loss_g = loss_g + adv + self.fm_weight * fm
            out["loss_adv"], out["loss_fm"] = loss_value(adv), loss_value(fm)
        loss_g.backward()
        out["grad_norm_g"] = g.step(ctx)
        out["loss_mel"] = loss_value(loss_mel)
        out["loss"] = loss_value(loss_g)
        return out


class HiFiGANObjective(_HiFiGANFamily):
    name = "hifigan"

    def build_discriminators(self):
        return {"mpd": MultiPeriodDiscriminator.hifigan(self.width), "msd": MultiScaleDiscriminator.hifigan(self.width)}


class BigVGANObjective(_HiFiGANFamily):
    name = "bigvgan"

    def build_discriminators(self):
        return {"mpd": MultiPeriodDiscriminator.hifigan(self.width), "mrd": MultiResolutionDiscriminator.bigvgan(self.width)}


class VocosObjective(_HiFiGANFamily):
    name = "vocos"
    gan = "hinge"
    average = True
    vocos_order = True

    def build_discriminators(self):
        return {"mpd": MultiPeriodDiscriminator.vocos(self.width), "mrd": MultiResolutionDiscriminator.vocos(self.width)}


class MelGANObjective(Objective):
    """descriptinc/melgan-neurips: G forward; D step (hinge) on real and detached fake; G step
    with -D(G(x)) + 10 x feature matching against the real features of the D step (before its update)."""

    name = "melgan"

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        self.discriminators["msd"] = MultiScaleDiscriminator.melgan(self.width)
        self.fm_weight = float(self.recipe("loss", "feature_matching"))
        self._add_optim("generator", model.parameters())
        self._add_optim("discriminator", self.discriminators.parameters())
        self.finish_setup()

    def step(self, wave, ctx):
        g, d = self.optims["generator"], self.optims["discriminator"]
        msd = self.discriminators["msd"]
        mel = self.features(wave)
        y_hat = self.model(mel)
        d_fake = msd(y_hat.detach())
        d_real = msd(wave)
        loss_d = 0.0
        for score, _ in d_fake:
            loss_d = loss_d + F.relu(1 + score).mean()
        for score, _ in d_real:
            loss_d = loss_d + F.relu(1 - score).mean()
        d.zero_grad()
        loss_d.backward()
        out = {"grad_norm_d": d.step(ctx), "loss_d": loss_value(loss_d)}
        d_fake = msd(y_hat)
        adv = generator_adversarial_loss(d_fake, "hinge_linear")
        # 4 / (n_layers_D + 1) per layer and 1 / num_D per scale, as in scripts/train.py; the
        # feature maps are the n_layers_D + 2 activations before the output layer
        n_layers_d = len(d_fake[0][1]) - 2
        wt = (4.0 / (n_layers_d + 1)) * (1.0 / len(d_fake))
        fm = wt * feature_matching(d_real, d_fake, detach_real=True)
        loss_g = adv + self.fm_weight * fm
        g.zero_grad()
        loss_g.backward()
        out.update(grad_norm_g=g.step(ctx), loss_adv=loss_value(adv), loss_fm=loss_value(fm), loss=loss_value(loss_g))
        return out


class _STFTGANFamily(Objective):
    """kan-bayashi's step (Parallel WaveGAN, Multi-band MelGAN): G step with the MR-STFT loss (and
    the adversarial term after the warm-up); then, after the warm-up, a D step (LSGAN) on a fresh
    no-grad synthesis (``update_prediction_after_generator_update``)."""

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        self.lambda_adv = float(self.recipe("loss", "adversarial"))
        self.stft = MultiResolutionSTFTLoss(self.recipe("loss", "stft_resolutions")).to(self.device)
        self.discriminators["discriminator"] = self.build_discriminator()
        self._add_optim("generator", model.parameters())
        self._add_optim("discriminator", self.discriminators.parameters())
        self.finish_setup()

    def build_discriminator(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def synthesize(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.model(mel), None

    def aux_loss(self, y_hat, y_sub, wave, out) -> torch.Tensor:
        sc, mag = self.stft(y_hat, wave)
        out["loss_sc"], out["loss_mag"] = loss_value(sc), loss_value(mag)
        return sc + mag

    def step(self, wave, ctx):
        g, d = self.optims["generator"], self.optims["discriminator"]
        disc = self.discriminators["discriminator"]
        mel = self.features(wave)
        out: dict[str, float] = {}
        adversarial = self.adversarial(ctx)
        y_hat, y_sub = self.synthesize(mel)
        loss_g = self.aux_loss(y_hat, y_sub, wave, out)
        if adversarial:
            adv = generator_adversarial_loss(disc(y_hat), "lsgan", average=True)
            loss_g = loss_g + self.lambda_adv * adv
            out["loss_adv"] = loss_value(adv)
        g.zero_grad()
        loss_g.backward()
        out["grad_norm_g"] = g.step(ctx)
        out["loss"] = loss_value(loss_g)
        if adversarial:
            with torch.no_grad():
                y_hat, _ = self.synthesize(mel)
            d.zero_grad()
            real, fake = disc(wave), disc(y_hat.detach())
            n = len(real)
            loss_real = sum(torch.mean((1.0 - s) ** 2) for s, _ in real) / n
            loss_fake = sum(torch.mean(s ** 2) for s, _ in fake) / n
            loss_d = loss_real + loss_fake
            loss_d.backward()
            out["grad_norm_d"] = d.step(ctx)
            out["loss_d"] = loss_value(loss_d)
        return out


class ParallelWaveGANObjective(_STFTGANFamily):
    name = "parallel_wavegan"

    def build_discriminator(self):
        return ParallelWaveGANDiscriminator(conv_channels=max(1, round(64 * self.width)))


class MultiBandMelGANObjective(_STFTGANFamily):
    """Multi-band MelGAN: the generator's sub-band output (``subband_forward``) is compared with the
    PQMF analysis of the target by the sub-band MR-STFT loss, the PQMF synthesis with the target by
    the full-band one; ``(full + sub) / 2`` as in kan-bayashi's ``gen_loss *= 0.5 ... += 0.5 * sub``."""

    name = "multiband_melgan"

    def __init__(self, model, settings=None, device="cpu"):
        if not hasattr(model, "subband_forward") or not hasattr(model, "pqmf"):
            raise ObjectiveError("multiband_melgan needs a model with subband_forward() and a pqmf bank")
        super().__init__(model, settings, device)
        self.sub_stft = MultiResolutionSTFTLoss(self.recipe("loss", "subband_stft_resolutions")).to(self.device)

    def build_discriminator(self):
        return MultiScaleDiscriminator.multiband_melgan(self.width)

    def synthesize(self, mel):
        sub = self.model.subband_forward(mel)
        return self.model.pqmf.synthesis(sub).squeeze(1), sub

    def aux_loss(self, y_hat, y_sub, wave, out):
        sc, mag = self.stft(y_hat, wave)
        with torch.no_grad():
            target_sub = self.model.pqmf.analysis(wave.unsqueeze(1))
        sub_sc, sub_mag = self.sub_stft(y_sub, target_sub)
        out.update(loss_sc=loss_value(sc), loss_mag=loss_value(mag), loss_sub_sc=loss_value(sub_sc), loss_sub_mag=loss_value(sub_mag))
        return 0.5 * (sc + mag) + 0.5 * (sub_sc + sub_mag)


class UnivNetObjective(Objective):
    """mindslab-ai/univnet: G step (2.5 x MR-STFT + LSGAN averaged over MRD + MPD); then D step on
    the same (detached) synthesis."""

    name = "univnet"

    def __init__(self, model, settings=None, device="cpu"):
        super().__init__(model, settings, device)
        self.stft_weight = float(self.recipe("loss", "stft"))
        self.stft = MultiResolutionSTFTLoss(self.recipe("loss", "stft_resolutions")).to(self.device)
        self.discriminators["mrd"] = MultiResolutionDiscriminator.univnet(self.width)
        self.discriminators["mpd"] = MultiPeriodDiscriminator.univnet(self.width)
        self._add_optim("generator", model.parameters())
        self._add_optim("discriminator", self.discriminators.parameters())
        self.finish_setup()

    def _all(self, x):
        return self.discriminators["mrd"](x) + self.discriminators["mpd"](x)

    def step(self, wave, ctx):
        g, d = self.optims["generator"], self.optims["discriminator"]
        mel = self.features(wave)
        g.zero_grad()
        y_hat = self.model(mel)
        sc, mag = self.stft(y_hat, wave)
        stft = (sc + mag) * self.stft_weight
        adv = generator_adversarial_loss(self._all(y_hat), "lsgan", average=True)
        loss_g = adv + stft
        loss_g.backward()
        out = {"grad_norm_g": g.step(ctx), "loss_adv": loss_value(adv), "loss_stft": loss_value(stft), "loss": loss_value(loss_g)}
        d.zero_grad()
        loss_d = discriminator_loss(self._all(wave), self._all(y_hat.detach()), "lsgan", average=True)
        loss_d.backward()
        out.update(grad_norm_d=d.step(ctx), loss_d=loss_value(loss_d))
        return out


#: Objective classes by the name used in ``training.objective`` (``none``: not trainable).
OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (
        HiFiGANObjective, BigVGANObjective, VocosObjective, MelGANObjective, MultiBandMelGANObjective,
        ParallelWaveGANObjective, UnivNetObjective, WaveGlowObjective, WaveFlowObjective, WaveRNNObjective,
        DiffWaveObjective, WaveGradObjective,
    )
}

#: Keys of a ``training`` section that belong to the loop, not to the objective.
LOOP_KEYS = ("objective", "recipe", "recipe_steps", "batch_size", "segment_samples", "eval_max_seconds",
             "shares_training_with")


def build_objective(name: str, model: Vocoder, settings: Mapping | None = None,
                    device: str | torch.device = "cpu") -> Objective:
    """The objective ``name`` for ``model`` with a ``training`` section's settings."""
    if name not in OBJECTIVES:
        raise ObjectiveError(f"unknown training objective {name!r}; known: {', '.join(sorted(OBJECTIVES))} "
                             "(or 'none' for a model without training)")
    settings = {k: v for k, v in (settings or {}).items() if k not in LOOP_KEYS}
    return OBJECTIVES[name](model, settings, device)
