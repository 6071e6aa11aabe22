"""Training the zoo's vocoders with their original objectives, energy measured.

* :mod:`.discriminators` - the recipes' discriminators (MPD, MSD, MRD, Parallel WaveGAN's).
* :mod:`.objectives` - each family's training step and losses, by name (``OBJECTIVES``); the base class in
  :mod:`.objective_base`, the recipes without a discriminator in :mod:`.density_objectives`.
* :mod:`.config` - the ``training`` section of conf/vocoder/*.yaml, shared training runs, the
  :class:`Budget` of a run.
* :mod:`.batches` - training batches as a function of the step (resumable, reproducible).
* :mod:`.evaluation` - quality of the model under training on a few held-out utterances.
* :mod:`.loop` - :func:`train`: the budgeted, checkpointed, energy-measured run.

Importing this package does not import the loop's dependencies (codecarbon, tqdm) until
:func:`train` is used.
"""
from audiofootprint.training.config import Budget, SharedTrainingError, training_section

__all__ = ["Budget", "SharedTrainingError", "train", "training_section"]


def train(*args, **kwargs):
    """:func:`audiofootprint.training.loop.train` (imported on first use)."""
    from audiofootprint.training.loop import train as _train

    return _train(*args, **kwargs)
