"""What running a vocoder costs: static figures plus the harness' measured time and energy."""
from __future__ import annotations

import math

import torch

from audiofootprint.energy.harness import Measurement, MeasureSettings, measure
from audiofootprint.energy.static import count_flops, peak_memory_bytes
from audiofootprint.energy.tracker import TrackerSettings
from audiofootprint.vocoders.base import Vocoder


def synthetic_mel(model: Vocoder, seconds: float, seed: int = 0) -> torch.Tensor:
    """A fixed log-mel input ``[1, n_mels, frames]`` lasting ``seconds`` at the model's settings.

    A vocoder's compute does not depend on the mel's content, so timing and energy can be
    measured without a corpus; quality is measured on real speech by the benchmark.
    """
    frames = math.ceil(seconds * model.mel.sample_rate / model.mel.hop_length)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, model.mel.n_mels, frames, generator=generator) * 2.0 - 5.0


def measure_vocoder(model: Vocoder, mel: torch.Tensor, *, label: str, settings: MeasureSettings,
                    tracker_settings: TrackerSettings, device: str = "cpu", seed: int = 0) -> dict:
    """Static costs and a harness measurement of one synthesis of ``mel``; a JSON-ready dict."""
    model = model.for_inference().to(device)
    mel = mel.to(device)
    samples = mel.shape[-1] * model.hop_length
    audio_seconds = samples / model.mel.sample_rate

    def synthesize():
        torch.manual_seed(seed)  # diffusion and flow models draw noise: same draw every call
        with torch.inference_mode():
            return model(mel)

    out = synthesize()
    if tuple(out.shape) != (mel.shape[0], samples):
        raise RuntimeError(f"{label}: expected output shape {(mel.shape[0], samples)}, got {tuple(out.shape)}")
    engine = model.engine
    flops = count_flops(synthesize) if engine == "torch" else None  # the counter sees torch's ops only
    memory = peak_memory_bytes(synthesize, device)
    result: Measurement = measure(synthesize, label=label, audio_seconds=audio_seconds, samples=samples,
                                  settings=settings, tracker_settings=tracker_settings, device=device)
    return {
        "label": label,
        "params": model.num_params(),
        "size_bytes": model.artifact_bytes(),
        "flops_per_call": flops,
        "flops_per_audio_s": None if flops is None else flops / audio_seconds,
        "flops_method": ("torch.utils.flop_counter (matmul and convolution only: a lower bound)" if flops is not None
                         else f"not counted: {engine} runs the model outside torch's FLOP counter"),
        "peak_memory": memory,
        "mel_settings": model.mel.as_dict(),
        "torch_threads": torch.get_num_threads(),
        "engine": engine,
        "engine_threads": model.engine_threads(),
        "measurement": result.as_dict(),
    }
