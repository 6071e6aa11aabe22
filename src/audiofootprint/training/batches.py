"""Training batches as a pure function of the step: resuming needs no loader state.

The training split is read through :class:`audiofootprint.corpus.SegmentDataset` (random crops,
reproducible per seed, epoch and utterance). Epoch ``e`` visits the utterances in a permutation
drawn from a generator seeded by ``(seed, e)``; the permutations are concatenated into one
stream, and batch ``s`` is items ``s * B ... s * B + B - 1`` of it (a batch may straddle two
epochs, so a corpus smaller than a batch still works). Batch ``s`` is therefore the same
whether the run got there in one go or after a resume.
"""
from __future__ import annotations

from pathlib import Path

import torch

from audiofootprint.corpus import SegmentDataset, seed_for

__all__ = ["BatchStream"]


#: Keeps the permutation stream apart from the crop offsets (which use (seed, epoch, index)).
_ORDER_STREAM = 0x7261696E  # "rain"


class BatchStream:
    """Batches of ``crop_samples``-sample crops of the ``split`` utterances of a corpus."""

    def __init__(self, corpus_dir: str | Path, crop_samples: int, batch_size: int, seed: int,
                 split: str = "train"):
        self.dataset = SegmentDataset(corpus_dir, split, int(crop_samples), seed=int(seed))
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self._orders: dict[int, list[int]] = {}

    @property
    def sample_rate(self) -> int:
        return self.dataset.sample_rate

    def __len__(self) -> int:
        """Utterances per epoch."""
        return len(self.dataset)

    def epoch_of(self, step: int) -> int:
        """Completed epochs before batch ``step``."""
        return step * self.batch_size // len(self.dataset)

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(seed_for(self.seed, _ORDER_STREAM, epoch))
            self._orders = {epoch: torch.randperm(len(self.dataset), generator=generator).tolist()}
        return self._orders[epoch]

    def batch(self, step: int) -> torch.Tensor:
        """Batch ``step`` (0-based): ``[batch_size, crop_samples]`` float32."""
        n = len(self.dataset)
        items = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, k = divmod(position, n)
            index = self._order(epoch)[k]
            self.dataset.set_epoch(epoch)
            items.append(self.dataset[index])
        return torch.stack(items)
