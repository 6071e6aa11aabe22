"""Shared fixtures: the project root and small hand-made survey tables."""
from __future__ import annotations

import csv
import socket
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SURVEY_HEADER = [
    "id", "title", "first_author", "year", "venue", "arxiv_id", "doi", "task_family",
    "human_rating", "distribution_metric", "signal_metric", "likelihood", "param_count", "flops",
    "inference_speed", "training_time", "training_hardware", "energy_co2", "evidence", "checked", "notes",
]


def survey_row(id, year=2020, task="neural_vocoder", metrics="1000000000", **overrides) -> dict:
    """A valid survey row; ``metrics`` gives the ten metric cells in order ('1', '0' or ' ' for empty)."""
    row = {
        "id": id, "title": f"Paper {id}", "first_author": "Doe", "year": str(year), "venue": "ICASSP",
        "arxiv_id": "2001.00001", "doi": "", "task_family": task, "evidence": "Tab. 1",
        "checked": "full_text", "notes": "",
    }
    for name, cell in zip(SURVEY_HEADER[8:18], metrics):
        row[name] = "" if cell == " " else cell
    row.update(overrides)
    return row


def write_survey(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SURVEY_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def speechlike(seconds: float, sr: int, seed: int, level: float = 0.1) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a gliding f0, syllable-rate envelope, some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 20))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)
    x = voice * envelope + 0.05 * rng.standard_normal(len(t))
    return (level * x / np.max(np.abs(x))).astype(np.float32)
