"""Hydra imports every module of the `hydra_plugins` namespace when it starts, in any program
(DVC's `dvc exp run` included): this one registers audiofootprint's OmegaConf resolvers, which
conf/ uses (see audiofootprint.resolvers)."""
from audiofootprint.resolvers import register

register()
