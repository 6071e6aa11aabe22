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
#: What quantize@MODEL-SCHEME writes beside its metrics.json: how the variant was made, its measurement, a synthesis.
VARIANT_FOLDER = "variant"
VARIANT_RECORD = "record.json"
QUANTIZE_SUMMARY_DIR = Path("results/quantize_summary")
VARIANTS_CSV = QUANTIZE_SUMMARY_DIR / "variants.csv"
#: The mixed-precision searches: ops quantized against size, speed and quality; the damage of each op.
MIXED_PRECISION_CURVE_CSV = QUANTIZE_SUMMARY_DIR / "mixed_precision_curve.csv"
MIXED_PRECISION_DAMAGE_CSV = QUANTIZE_SUMMARY_DIR / "mixed_precision_damage.csv"
#: The cost of training to the recipe: one record per model (NAME.json) and the table of them.
RECIPE_COST_DIR = Path("results/recipe_cost")
RECIPE_COST_CSV = RECIPE_COST_DIR / "costs.csv"
SURVEY_DIR = Path("results/survey")
CARBON_DIR = Path("results/carbon")
#: The training-carbon study's estimates of published runs (pretrained models' training energy).
CARBON_ESTIMATES = CARBON_DIR / "tables/estimates.csv"
#: codecarbon's own logs (the default of conf/energy's output_dir).
CODECARBON_DIR = Path("results/codecarbon")
NOTEBOOKS_DIR = Path("notebooks")
#: The project folder (and import name) of researchers' own vocoder modules.
USER_PACKAGE = "vocoders"
REPORTS_DIR = Path("reports")
SITE = REPORTS_DIR / "index.html"
#: One rendered notebook per benchmarked model (stage model_report@NAME).
MODEL_REPORTS_DIR = REPORTS_DIR / "vocoders"
#: The studies' notebooks: stage NAME_report renders notebooks/NAME.py into reports/NAME.{ipynb,html}.
STUDY_NOTEBOOKS = ("survey", "carbon", "benchmark", "quantize")
#: DVC's folder in the project.
DVC_DIR = Path(".dvc")
#: The fingerprint of the project's last passed params check (params.check_params), in DVC's scratch folder.
PARAMS_CHECKED = DVC_DIR / "tmp/audiofootprint/params-checked"


def variant_record(name: str, scheme: str) -> Path:
    """How quantize@NAME-SCHEME made its variant (backend, notes, per-utterance scores, any search)."""
    return QUANTIZE_DIR / name / scheme / VARIANT_FOLDER / VARIANT_RECORD
