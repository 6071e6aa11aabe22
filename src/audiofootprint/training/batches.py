"""Training batches as a pure function of the step: resuming needs no loader state.

The training split is read through :class:`SegmentDataset` (random crops,
reproducible per seed, epoch and utterance). Epoch ``e`` visits the utterances in a permutation
drawn from a generator seeded by ``(seed, e)``; the permutations are concatenated into one
stream, and batch ``s`` is items ``s * B ... s * B + B - 1`` of it (a batch may straddle two
epochs, so a corpus smaller than a batch still works). Batch ``s`` is therefore the same
whether the run got there in one go or after a resume.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiofootprint.corpus import CorpusError, split_rows

__all__ = ["BatchStream", "SegmentDataset", "random_segments", "seed_for"]


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


def seed_for(*values: int) -> int:
    """A non-negative 63-bit seed derived from integers, the same on every run and platform."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, dtype=np.uint64)[0] >> 1)


class SegmentDataset(torch.utils.data.Dataset):
    """Fixed-length random crops, one per utterance of ``split`` and epoch.

    Item ``i`` is a crop of ``segment_samples`` samples (float32 ``[segment_samples]``) at an
    offset drawn from a generator seeded by ``(seed, epoch, i)``: the same for a given seed,
    epoch and index whatever the DataLoader order or number of workers; :meth:`set_epoch`
    draws new crops. Utterances shorter than a segment are zero-padded at the end.
    Crops are read from disk on demand (``preload=True`` keeps the split in memory).
    """

    def __init__(self, out_dir: str | Path, split: str = "train", segment_samples: int = 8192,
                 seed: int = 0, preload: bool = False):
        if segment_samples < 1:
            raise CorpusError(f"segment_samples must be positive, got {segment_samples}")
        self.out_dir = Path(out_dir)
        rows = split_rows(self.out_dir, split)
        if rows.empty:
            raise CorpusError(f"{self.out_dir}: split {split!r} has no utterances")
        self.split = split
        self.ids = list(rows["id"])
        self.paths = [self.out_dir / p for p in rows["path"]]
        infos = [sf.info(str(p)) for p in self.paths]
        rates = {int(i.samplerate) for i in infos}
        if len(rates) != 1:
            raise CorpusError(f"{self.out_dir}: utterances have several sample rates {sorted(rates)}")
        self.sample_rate = rates.pop()
        self.lengths = [int(i.frames) for i in infos]
        self.segment_samples = int(segment_samples)
        self.seed = int(seed)
        self.epoch = 0
        self._audio = ([sf.read(str(p), dtype="float32")[0] for p in self.paths] if preload else None)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def offset(self, index: int) -> int:
        """Start sample of item ``index`` in the current epoch."""
        room = self.lengths[index] - self.segment_samples
        if room <= 0:
            return 0
        generator = torch.Generator().manual_seed(seed_for(self.seed, self.epoch, index))
        return int(torch.randint(0, room + 1, (1,), generator=generator))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self.offset(index)
        stop = min(start + self.segment_samples, self.lengths[index])
        if self._audio is not None:
            data = self._audio[index][start:stop]
        else:
            data, _ = sf.read(str(self.paths[index]), start=start, stop=stop, dtype="float32")
        out = torch.zeros(self.segment_samples, dtype=torch.float32)
        out[: len(data)] = torch.from_numpy(np.ascontiguousarray(data))
        return out


#: Seeds the choice of utterances in :func:`random_segments` apart from the crop offsets.
_PICK_STREAM = 2 ** 32 - 1


def random_segments(out_dir: str | Path, split: str, segment_samples: int, count: int,
                    seed: int = 0) -> torch.Tensor:
    """``[count, segment_samples]`` crops of utterances of ``split`` drawn with replacement
    (utterance and offset from a generator seeded by ``seed``)."""
    dataset = SegmentDataset(out_dir, split, segment_samples, seed=seed)
    generator = torch.Generator().manual_seed(seed_for(seed, _PICK_STREAM))
    picks = torch.randint(0, len(dataset), (int(count),), generator=generator).tolist()
    out = torch.zeros(int(count), dataset.segment_samples)
    for row, index in enumerate(picks):
        dataset.set_epoch(row)  # a fresh offset for each draw, even of the same utterance
        out[row] = dataset[index]
    return out
