"""audiofootprint: energy and carbon cost of deep generative audio models beside their quality."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the compendium (the folder that holds conf/, data/ and dvc.yaml) when the
#: package is installed from a checkout; commands take ``--root`` to point elsewhere.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
