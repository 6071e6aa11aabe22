"""Quality of a model under training, on a few held-out utterances (copy synthesis).

Each utterance is cut to whole hops (at most ``max_seconds``), its features computed in the
model's convention, synthesised by the model in eval mode, and scored against the recording
with the fast metrics of :func:`audiofootprint.quality.score` (``mrstft``, ``mcd``, ``pesq`` by
default; DNSMOS is too slow for a training loop). A metric that cannot score a pair (PESQ on
silence, a non-finite synthesis) gives ``None`` for that utterance; the value reported is the
mean over the utterances it could score (``None`` if none).

Sampling models draw noise: the synthesis runs on a forked random state seeded per evaluation,
so evaluating never changes the training's random stream (a run is the same with or without
evaluations, and wherever they fall).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audiofootprint import quality
from audiofootprint.corpus import SPLITS, iter_utterances
from audiofootprint.features import features_for
from audiofootprint.vocoders.base import Vocoder

__all__ = ["EvalSet", "evaluate", "load_eval_set"]


class EvalSet(list):
    """``[(id, waveform [T])]`` with the split they come from and their sample rate."""

    split: str | None = None
    sample_rate: int = 0


def load_eval_set(corpus_dir: str | Path, count: int, max_seconds: float, hop_length: int,
                  splits: tuple[str, ...] = ("valid", "test", "train")) -> EvalSet:
    """The first ``count`` utterances (by id) of the first of ``splits`` that has any, each cut
    to at most ``max_seconds`` and to whole hops."""
    out = EvalSet()
    if count <= 0:
        return out
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        chosen = []
        for utt_id, wave, rate in iter_utterances(corpus_dir, split):
            keep = min(wave.shape[-1], int(max_seconds * rate)) // hop_length * hop_length
            if keep > 0:
                chosen.append((utt_id, wave[:keep].clone()))
                out.sample_rate = rate
            if len(chosen) >= count:
                break
        if chosen:
            out.extend(chosen)
            out.split = split
            return out
    return out


def evaluate(model: Vocoder, eval_set: EvalSet, metrics: tuple[str, ...], device: torch.device | str,
             seed: int) -> dict:
    """``{metric: mean or None, ..., "per_utterance": {id: {metric: value or None}}}``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    per_utt: dict[str, dict] = {}
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for utt_id, wave in eval_set:
                mel = features_for(model, wave.unsqueeze(0).to(device))
                synthesis = model(mel).reshape(-1).float().cpu().numpy()
                reference = wave.numpy()
                scores = {}
                for metric in metrics:
                    try:
                        scores[metric] = float(quality.score(reference, synthesis, eval_set.sample_rate,
                                                             metrics=[metric])[metric])
                    except ValueError:
                        scores[metric] = None
                per_utt[utt_id] = scores
    finally:
        model.train(was_training)
    result: dict = {}
    for metric in metrics:
        values = [s[metric] for s in per_utt.values() if s.get(metric) is not None and np.isfinite(s[metric])]
        result[metric] = float(np.mean(values)) if values else None
    result["per_utterance"] = per_utt
    return result
