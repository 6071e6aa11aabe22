"""WaveRNN (Kalchbrenner et al., arXiv 1802.08435), as packaged by torchaudio.

A thin wrapper around :class:`torchaudio.models.WaveRNN` (the fatchord/WaveRNN variant:
a MelResNet + stretch/conv upsampler feeding two GRUs of 512 units and a 512-unit MLP
that outputs a categorical distribution over mu-law classes). Synthesis is strictly
sample-by-sample: :meth:`torchaudio.models.WaveRNN.infer` draws one sample per step with
multinomial sampling, so the cost grows with the number of samples, not frames.

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/wavernn.yaml``): the vocoder of torchaudio's
``TACOTRON2_WAVERNN_CHAR_LJSPEECH`` / ``TACOTRON2_WAVERNN_PHONE_LJSPEECH`` bundles
(``torchaudio.pipelines._tts.utils._get_wrnn_params``): upsample_scales [5, 5, 11],
n_classes 2**8 (8-bit mu-law), hop_length 275, n_res_block 10, n_rnn 512, n_fc 512,
kernel_size 5, n_freq 80, n_hidden 128, n_output 128. Mel analysis of that bundle:
22.05 kHz, n_fft 2048, win 1100, hop 275, 80 mels, 40-11025 Hz.

Input convention (that bundle's vocoder): natural log of the clamped mel magnitude
(Tacotron 2 output), which :meth:`WaveRNNVocoder.forward` converts the way the bundle does:
``dB = 20*log10(clamp(exp(mel), 1e-5))``, ``clamp((-100 - dB) / -100, 0, 1)``; the
sampled classes are mu-law decoded to [-1, 1].

The checkpoint layout is torchaudio's own ``WaveRNN`` state dict (the bundle's
``wavernn_10k_epochs_8bits_ljspeech.pth``, which ``torchaudio.pipelines._tts.impl`` loads with
``WaveRNN(**_get_wrnn_params()).load_state_dict``), without a prefix: ``upsample.resnet.melresnet_model.*``
(conv, batch norms and the 10 ``resblock_model``s), ``upsample.upsample_layers.{1,3,5}.weight``,
``fc``, ``rnn1``, ``rnn2`` (GRU ``weight_ih_l0``/``weight_hh_l0``/``bias_*_l0``), ``fc1``, ``fc2``,
``fc3``. :meth:`WaveRNNVocoder.load_checkpoint_state` reads it into ``self.model``. A zoo
config for the bundle's weights is ``wavernn.yaml``'s ``model`` section plus::

    weights:
      path: /path/to/wavernn_10k_epochs_8bits_ljspeech.pth   # download.pytorch.org/torchaudio/models/
      sha256: ...                       # sha256sum of the file
      format: torchaudio-wavernn
      mel: {sample_rate: 22050, n_fft: 2048, win_length: 1100, hop_length: 275, n_mels: 80,
            f_min: 40.0, f_max: 11025.0}
      # dataset, license, provenance, published_training: see audiofootprint.vocoders.weights
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torchaudio

from .base import MelSettings, Vocoder, resolve_mel

WAVERNN_LJSPEECH_MEL = MelSettings(sample_rate=22050, n_fft=2048, win_length=1100, hop_length=275,
                                   n_mels=80, f_min=40.0, f_max=11025.0)


class WaveRNNVocoder(Vocoder):
    """Autoregressive WaveRNN: one multinomial draw per output sample (sampling runs
    under ``torch.no_grad``)."""

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)) (Tacotron 2); the model maps it to [0, 1] dB

    def __init__(
        self,
        upsample_scales: list[int] | tuple[int, ...] = (5, 5, 11),
        n_classes: int = 2 ** 8,
        n_res_block: int = 10,
        n_rnn: int = 512,
        n_fc: int = 512,
        kernel_size: int = 5,
        n_hidden: int = 128,
        n_output: int = 128,
        min_level_db: float | None = -100.0,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, WAVERNN_LJSPEECH_MEL))
        self.model = torchaudio.models.WaveRNN(
            upsample_scales=list(upsample_scales),
            n_classes=n_classes,
            hop_length=self.hop_length,
            n_res_block=n_res_block,
            n_rnn=n_rnn,
            n_fc=n_fc,
            kernel_size=kernel_size,
            n_freq=self.mel.n_mels,
            n_hidden=n_hidden,
            n_output=n_output,
        )
        self.min_level_db = min_level_db

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """Natural-log mel -> the [0, 1] dB scale the network was trained on."""
        db = 20.0 * torch.log10(torch.exp(mel).clamp_min(1e-5))
        if self.min_level_db is None:
            return db
        return ((self.min_level_db - db) / self.min_level_db).clamp(0.0, 1.0)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        wave, _ = self.model.infer(self.normalize(mel))  # [B, 1, frames*hop] in [-1, 1]
        # infer() maps the sampled class c to 2c/(n_classes-1) - 1; undo that, then mu-law
        n = self.model.n_classes
        labels = ((wave.clamp(-1.0, 1.0) + 1.0) * (n - 1) / 2.0).round().clamp(0, n - 1)
        return torchaudio.functional.mu_law_decoding(labels.long(), n).squeeze(1)

    # -- checkpoint layout: torchaudio's own WaveRNN state dict ----------------------
    def state_dict_for_checkpoint(self) -> dict:
        return self.model.state_dict()

    def load_checkpoint_state(self, state: dict) -> None:
        """Load torchaudio's ``WaveRNN`` state dict (the bundle's file), this wrapper's own
        ``state_dict()`` (``model.`` prefix), or a checkpoint of torchaudio's
        ``examples/pipeline_wavernn`` recipe (``{"epoch", "state_dict", "best_loss",
        "optimizer"}``, saved from ``DataParallel``: ``module.`` prefix; its private ``_WaveRNN``,
        pytorch/audio ``torchaudio/models/_wavernn.py``, has the same module names; only its
        ``--mode waveform`` checkpoints output mu-law classes, as this wrapper samples them)."""
        inner = state.get("state_dict")
        if isinstance(inner, Mapping) and "epoch" in state:
            state = inner
        state = dict(state)
        for prefix in ("module.", "model."):
            if state and all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
        self.model.load_state_dict(state)

