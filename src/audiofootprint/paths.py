"""Where every stage of the pipeline reads and writes, relative to the project root: the one home
of these paths (stage names, code dependencies and params are :mod:`audiofootprint.pipeline`'s)."""
from __future__ import annotations

from pathlib import Path

CORPUS_DIR = Path("results/corpus")
CORPUS_MANIFEST = CORPUS_DIR / "corpus.json"
MODELS_DIR = Path("results/models")
RECORDINGS_DIR = Path("results/recordings")
BENCHMARK_DIR = Path("results/benchmark")
BENCHMARK_SUMMARY_DIR = Path("results/benchmark_summary")
MODELS_CSV = BENCHMARK_SUMMARY_DIR / "models.csv"
QUANTIZE_DIR = Path("results/quantize")
QUANTIZE_SUMMARY_DIR = Path("results/quantize_summary")
VARIANTS_CSV = QUANTIZE_SUMMARY_DIR / "variants.csv"
SURVEY_DIR = Path("results/survey")
CARBON_DIR = Path("results/carbon")
#: The training-carbon study's estimates of published runs (pretrained models' training energy).
CARBON_ESTIMATES = CARBON_DIR / "tables/estimates.csv"
#: codecarbon's own logs (the default of conf/energy's output_dir).
CODECARBON_DIR = Path("results/codecarbon")
NOTEBOOKS_DIR = Path("notebooks")
REPORTS_DIR = Path("reports")
SITE = REPORTS_DIR / "index.html"
#: One rendered notebook per benchmarked model (stage model_report@NAME).
MODEL_REPORTS_DIR = REPORTS_DIR / "vocoders"
#: The studies' notebooks: stage NAME_report renders notebooks/NAME.py into reports/NAME.{ipynb,html}.
STUDY_NOTEBOOKS = ("survey", "carbon", "benchmark", "quantize")
