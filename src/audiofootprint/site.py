"""The front page of the compendium: reports/index.html, one self-contained static file.

It links every rendered notebook, shows each study's headline numbers (its metrics JSON) with
the hardware and energy method they came from, the figures, one synthesis and its recording
per vocoder, and one table of the benchmarked models. It is built from what exists: a study
whose outputs are missing is listed as "not run". Links are relative to reports/, so the page
works from a clone, a copy or a file:// URL, with no network.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import quote

from audiofootprint import atomic
from audiofootprint.energy.tracker import method_kind
from audiofootprint.paths import (BENCHMARK_DIR, BENCHMARK_SUMMARY_DIR, CARBON_DIR, MODEL_REPORTS_DIR, MODELS_CSV,
                                  QUANTIZE_SUMMARY_DIR, RECIPE_COST_CSV, REPORTS_DIR, SITE, SURVEY_DIR, VARIANTS_CSV)
from audiofootprint.records import ModelMetrics
CARBON_METHOD = ("estimate from the hardware and training time each paper reports, under low, central and high "
                 "scenarios of utilisation, data-centre PUE and grid carbon intensity (conf/carbon/default.yaml); "
                 "not a measurement")


@dataclass(frozen=True)
class Study:
    """Where one study's outputs live, relative to the project root: ``results_dir`` holds its
    metrics.json and figures/; ``report`` is its rendered notebook."""
    key: str
    title: str
    about: str
    results_dir: Path
    report: str

    @property
    def metrics(self) -> str:
        """Its metrics.json."""
        return str(self.results_dir / "metrics.json")

    @property
    def figures(self) -> str:
        """Its folder of figures."""
        return str(self.results_dir / "figures")


STUDIES = (
    Study("survey", "1. What papers measure",
          "Which metric families papers on deep generative audio report, from the curated table "
          "data/survey/papers.csv (one row per paper, each cell with its evidence).",
          SURVEY_DIR, str(REPORTS_DIR / "survey.html")),
    Study("carbon", "2. The carbon cost of training",
          "Energy and CO2e of published training runs, estimated from the hardware and training time "
          "their papers state (data/carbon/training_runs.csv).",
          CARBON_DIR, str(REPORTS_DIR / "carbon.html")),
    Study("benchmark", "3. The vocoder benchmark",
          "Neural vocoders trained and measured on this machine: quality against the test recordings, "
          "inference energy with the measurement harness, Pareto fronts and an efficiency ranking.",
          BENCHMARK_SUMMARY_DIR, str(REPORTS_DIR / "benchmark.html")),
    Study("quantize", "4. Quantization",
          "Lighter variants of the vocoders: size, speed, energy and the quality they lose.",
          QUANTIZE_SUMMARY_DIR, str(REPORTS_DIR / "quantize.html")),
)


@dataclass
class Model:
    """One row of the models table, from results/benchmark/NAME/metrics.json and models.csv."""
    name: str
    status: str
    family: str = ""
    quality: tuple[float, float | None] | None = None  # mean, 95% half-width
    energy: tuple[float, float, float] | None = None  # median, q1, q3 (J per second of audio)
    rtf: float | None = None
    fronts: list[str] = field(default_factory=list)
    rank: str = ""
    converged: bool = True  # False: budget-trained, its quality is not a finding
    kind: str = ""  # pretrained, training-free, recipe, or "after N steps of the recipe's R"
    reason: str = ""  # why a failed model failed
    hardware: str = ""
    method: dict = field(default_factory=dict)
    report: str | None = None  # link from reports/
    audio: tuple[str, str, str] | None = None  # utterance id, recording link, synthesis link


def read_json(path: Path) -> dict:
    """Read a metrics JSON file; a malformed one is an error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): run the stage that writes it again (dvc repro)") \
            from error


def need(data: dict, path: Path, *keys: str):
    """``data[k1][k2]...``, or a KeyError naming the file and the missing key."""
    value = data
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"{path} has no key {'.'.join(keys)!r}: run the stage that writes it again (dvc repro)")
        value = value[key]
    return value


def link(root: Path, path: str | Path) -> str:
    """The URL of ``root/path`` relative to reports/ (where index.html lives)."""
    return quote(Path(os.path.relpath(root / path, root / SITE.parent)).as_posix())


def number(value, fmt: str = ".4g") -> str:
    """A number for the page; missing values (None, NaN) read as n/a."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:{fmt}}"


def flatten(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Every value of a metrics JSON as (dotted key, text), keys sorted."""
    rows = []
    for key in sorted(metrics):
        value, name = metrics[key], f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        elif isinstance(value, list):
            rows.append((name, ", ".join(number(v) for v in value) or "none"))
        else:
            rows.append((name, number(value)))
    return rows


def headline(study: Study, metrics: dict, path: Path, axis: str) -> str:
    """One sentence with a study's main numbers (the full table follows it on the page)."""
    if study.key == "survey":
        share = lambda group: need(metrics, path, "share_by_group", group)  # noqa: E731
        return (f"Of {need(metrics, path, 'n_papers')} papers, {share('quality'):.0%} report a quality metric, "
                f"{share('computational_cost'):.0%} a computational cost and {share('energy'):.0%} energy or CO2e "
                f"(papers reporting energy: {need(metrics, path, 'n_reporting_energy')}).")
    if study.key == "carbon":
        total = lambda s: need(metrics, path, "total_co2e_kg", s)  # noqa: E731
        return (f"{need(metrics, path, 'n_runs_estimated')} of {need(metrics, path, 'n_runs_curated')} published "
                f"training runs could be estimated: {total('central'):,.0f} kg CO2e in total (low "
                f"{total('low'):,.0f}, high {total('high'):,.0f}); the largest, "
                f"{need(metrics, path, 'largest_run', 'model_id')}, "
                f"{need(metrics, path, 'largest_run', 'co2e_kg_central'):,.0f} kg (central).")
    if study.key == "benchmark":
        failed = need(metrics, path, "failed")
        budget = need(metrics, path, "budget_trained")
        mos_front = metrics.get("pareto_published_mos")
        return (f"Converged models ({', '.join(need(metrics, path, 'headline_models'))}; the recordings as the "
                f"ceiling): Pareto front of {axis} against inference energy: "
                f"{', '.join(need(metrics, path, 'pareto_inference'))}; most efficient: "
                f"{need(metrics, path, 'most_efficient')}; best {axis}: {need(metrics, path, 'best_quality')}. "
                + (f"Published-MOS front: {', '.join(mos_front)}; most efficient by published MOS: "
                   f"{metrics.get('most_efficient_published_mos', 'none')}. " if mos_front else "")
                + (f"{len(budget)} budget-trained models costed, not ranked by quality. " if budget else "")
                + f"Failed: {', '.join(failed) if failed else 'none'}."
                + "".join(f" {grid_sentence(name, grid)}" for name, grid in (metrics.get("grids") or {}).items()))
    # quantization is newer: its summary is read defensively, key by key
    labels = (("size_ratio_median", "x smaller"), ("speedup_median", "x faster"), ("energy_ratio_median", "x the energy"))
    schemes = [f"{scheme} " + ", ".join(f"{number(s[key], '.3g')}{label}" for key, label in labels if key in s)
               for scheme, s in sorted((metrics.get("by_scheme") or {}).items()) if isinstance(s, dict)]
    if not schemes:
        return ""
    axis = metrics.get("quality_axis", "quality")
    mixed = [f"{name}: {c.get('ops_quantized')} of {c.get('ops')} weighted ops in int8, {number(c.get('size_ratio'), '.3g')}x "
             f"smaller, {number(c.get('speedup'), '.3g')}x faster, {axis} {number(c.get(f'delta_{axis}'), '+.3f')}"
             for name, c in sorted((metrics.get("mixed_precision") or {}).items()) if isinstance(c, dict)]
    return (f"{number(metrics.get('variants_measured'))} variants measured; medians against "
            f"{metrics.get('baseline', 'the baseline')}: {'; '.join(schemes)}."
            + (f" Mixed precision chosen by measurement: {'; '.join(mixed)}." if mixed else ""))


def grid_sentence(name: str, grid: dict) -> str:
    """How a design grid's families grow in inference energy from their smallest size to their largest."""
    growth = ", ".join(f"{family} x{number(f.get('energy_largest_over_smallest'), '.3g')}"
                       for family, f in sorted((grid.get("families") or {}).items()))
    return (f"Grid {name} ({len(grid.get('members', []))} members; sizes {', '.join(grid.get('sizes', []))}): inference "
            f"energy from the smallest size to the largest: {growth or 'no family measured'}; "
            f"{grid.get('quality_note', '')}.")


def scope_sentence(study: Study, params: dict) -> str:
    """What this run covered of a study (``profile.scope``) and the command that covers the rest, so that
    a model or scheme the run left out is not missing without a word; "" for the other studies."""
    profile = params["profile"]
    scope, name = profile["scope"], profile["name"]
    rest = " The whole zoo and every scheme: make repro PROFILE=full."
    if study.key == "benchmark":
        models, left_out = params["benchmark"]["models"], scope["models_left_out"]
        chosen = "every model of conf/vocoder/ outside a grid" if scope["models"] == "all" else "the models it names"
        told = f"This run (profile {name}) benchmarks {chosen}"
        if left_out:
            told += f" but those its scope leaves out ({', '.join(left_out)})"
        whole = scope["models"] == "all" and not left_out
        return f"{told}: {len(models)} models ({', '.join(models)}).{'' if whole else rest}"
    if study.key == "quantize":
        quantize = params["quantize"]
        whole = scope["quantize_schemes"] == "all" and scope["quantize_models"] in ("all", "pretrained")
        return (f"This run (profile {name}) quantizes {', '.join(quantize['models']) or 'no model'} with "
                f"{len(quantize['schemes'])} schemes ({', '.join(quantize['schemes'])}).{'' if whole else rest}")
    return ""


def recipe_cost_sentence(root: Path) -> str:
    """What training each measured model to its recipe would cost on this machine
    (results/recipe_cost/costs.csv), or "" when that stage measured nothing."""
    path = root / RECIPE_COST_CSV
    if not path.is_file():
        return ""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts = []
    for row in rows:
        if row["status"] != "ok":
            parts.append(f"{row['model']}: not measured ({row['label']})")
        elif row["recipe_kwh"]:
            parts.append(f"{row['model']}: {float(row['recipe_steps']):,.0f} steps would take "
                         f"{float(row['recipe_days']):,.0f} days and {float(row['recipe_kwh']):,.0f} kWh "
                         f"({row['label']})")
        elif row["cap_kwh"]:
            parts.append(f"{row['model']}: the thesis' 5-day cap reaches {float(row['cap_steps']):,.0f} steps for "
                         f"{float(row['cap_kwh']):,.1f} kWh ({row['label']})")
        else:
            parts.append(f"{row['model']}: {float(row['seconds_per_step']):.3g} s and {float(row['joules_per_step']):.3g} J "
                         f"per step, its recipe states no step count ({row['label']})")
    return ("Training to the recipe on this machine (stage recipe_cost, an extrapolation): " + "; ".join(parts) + "."
            if parts else "")


def summary_rows(root: Path) -> dict[str, dict]:
    """results/benchmark_summary/models.csv by model name ({} when the summary has not run)."""
    path = root / MODELS_CSV
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"model", "status"} <= set(rows[0]):
        raise KeyError(f"{path} lacks the columns model and status: run `dvc repro benchmark_summary` again")
    return {row["model"]: row for row in rows}


def first_clip(root: Path, name: str) -> tuple[str, str, str] | None:
    """The first synthesis (by name) of a model that has its recording beside it."""
    audio = root / BENCHMARK_DIR / name / "audio"
    for synthesis in sorted(audio.glob("*.synthesis.wav")):
        utterance = synthesis.name[: -len(".synthesis.wav")]
        recording = audio / f"{utterance}.recording.wav"
        if recording.is_file():
            return utterance, link(root, recording.relative_to(root)), link(root, synthesis.relative_to(root))
    return None


def load_models(root: Path, params: dict) -> list[Model]:
    """One Model per entry of benchmark.models: measured, failed (per its metrics or the summary) or not run."""
    axis = need(params, root / "params.yaml", "benchmark", "quality_axis")
    summary = summary_rows(root)
    models = []
    for name in need(params, root / "params.yaml", "benchmark", "models"):
        path = root / BENCHMARK_DIR / name / "metrics.json"
        m = ModelMetrics.read(path) if path.is_file() else None
        row = summary.get(name, {})
        status = row.get("status") or (m.status if m else "not run")
        report = root / MODEL_REPORTS_DIR / f"{name}.html"
        own_reason = (m.reason or "") if m else ""
        model = Model(name, status, family=m.family if m else "", reason=row.get("reason") or own_reason,
                      report=link(root, report.relative_to(root)) if report.is_file() else None,
                      audio=first_clip(root, name))
        if m and m.ok and status == "ok":
            if axis not in m.quality:
                raise KeyError(f"{path} has no quality metric {axis!r} (benchmark.quality_axis): "
                               f"run `dvc repro benchmark@{name}` with benchmark.metrics including it")
            model.hardware, model.method = m.hardware, m.energy_method
            model.quality = (m.quality[axis]["mean"], m.quality[axis].get("ci95"))
            energy = m.energy_j_per_audio_s
            model.energy = (energy["median"], energy["q1"], energy["q3"])
            model.rtf = m.real_time_factor["median"]
            robust = " (holds within the spread)" if row.get("pareto_inference_survives_spread") == "True" else ""
            model.fronts = [label for column, label in (("pareto_inference", f"inference{robust}"),
                                                        ("pareto_training", "training"),
                                                        ("pareto_published_mos", "published MOS"))
                            if row.get(column) == "True"]
            model.rank = row.get("rank_by_efficiency", "")
            model.converged = m.converged
            model.kind = m.quality_status.get("label") or m.quality_status["kind"]
        models.append(model)
    return models


def method_text(method: dict) -> str:
    """How the energy of a measurement was obtained, part by part."""
    return "; ".join(f"{part.upper()}: {how}" for part, how in sorted(method.items()))


def model_methods(models: list[Model]) -> dict[tuple[str, str], list[str]]:
    """Measured models grouped by (hardware, energy method)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in models:
        if m.hardware:
            groups.setdefault((m.hardware, method_text(m.method)), []).append(m.name)
    return groups


def variant_methods(path: Path) -> dict[tuple[str, str], list[str]]:
    """Measured quantized variants grouped by (hardware, CPU energy method), from variants.csv if any."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("hardware") and row.get("energy_method_cpu"):
            groups.setdefault((row["hardware"], f"CPU: {row['energy_method_cpu']}"), []).append(
                f"{row.get('model', '?')}/{row.get('scheme', '?')}")
    return groups


def render_methods(groups: dict[tuple[str, str], list[str]]) -> str:
    """Which hardware and energy method each group of measurements came from."""
    if not groups:
        return ""
    items = "".join(f"<li>measured on <b>{escape(hw)}</b>; energy: {escape(how)} "
                    f"<span class=\"who\">({escape(', '.join(names))})</span></li>"
                    for (hw, how), names in sorted(groups.items()))
    return f'<ul class="methods">{items}</ul>'


def render_models(models: list[Model], axis: str) -> str:
    """The table of models: quality, energy per audio second, RTF, fronts, status."""
    estimated = any(method_kind(how) == "estimate" for m in models for how in m.method.values())
    rows = []
    for m in models:
        name = f'<a href="{m.report}">{escape(m.name)}</a>' if m.report else escape(m.name)
        if m.energy is None:
            failed = m.status.startswith("failed")
            detail = m.reason or m.status.partition(": ")[2] or ("no metrics" if m.status == "ok" else "")
            rows.append(f'<tr class="{"failed" if failed else "missing"}"><td>{name}</td><td>{escape(m.family)}</td>'
                        f'<td>{"failed" if failed else escape(m.status)}</td>'
                        f'<td colspan="5">{escape(detail) or "&ndash;"}</td></tr>')
            continue
        mean, ci = m.quality
        quality = number(mean, ".3f") + (f" &plusmn; {number(ci, '.2g')}" if ci is not None else "")
        if not m.converged:
            quality = f'<span class="unconverged">{quality} <small>(unconverged: not a finding)</small></span>'
        median, q1, q3 = m.energy
        status = m.status if not m.kind else f"{m.status}: {m.kind}"
        rows.append(f"<tr><td>{name}</td><td>{escape(m.family)}</td><td>{escape(status)}</td>"
                    f"<td>{quality}</td><td>{number(median)} <small>[{number(q1)}&ndash;{number(q3)}]</small></td>"
                    f"<td>{number(m.rtf)}</td><td>{escape(', '.join(m.fronts)) or '&ndash;'}</td>"
                    f"<td>{escape(m.rank) or '&ndash;'}</td></tr>")
    return (f'<table class="models"><thead><tr><th>model</th><th>family</th><th>status</th>'
            f"<th>{escape(axis)} (mean &plusmn; 95% CI)</th><th>{'estimated ' if estimated else ''}energy per audio "
            f"second, J (median [IQR])</th>"
            f"<th>real-time factor</th><th>Pareto fronts</th><th>efficiency rank</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>\n"
            f'<p class="note">Energy is gross of idle, per second of generated audio, obtained as stated above '
            f"(an estimate where the method says so). A real-time factor below 1 is faster than real time. "
            f"Quality is a finding only for converged weights (pretrained, trained to the recipe, or nothing to "
            f"train); budget-trained models are costed, never ranked by quality.</p>")


def render_listen(models: list[Model]) -> str:
    """An audio player for one recording and its synthesis, per model."""
    rows = []
    for m in models:
        if m.audio is None:
            rows.append(f"<tr><td>{escape(m.name)}</td><td colspan=\"3\">no audio ({escape(m.status)})</td></tr>")
            continue
        utterance, recording, synthesis = m.audio
        rows.append(f"<tr><td>{escape(m.name)}</td><td>{escape(utterance)}</td>"
                    f'<td><audio controls preload="metadata" src="{recording}"></audio></td>'
                    f'<td><audio controls preload="metadata" src="{synthesis}"></audio></td></tr>')
    return ('<table class="listen"><thead><tr><th>model</th><th>test utterance</th><th>recording</th>'
            f"<th>synthesis (copy-synthesis from its mel-spectrogram)</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")


def render_figures(root: Path, study: Study) -> str:
    """Every PNG figure of a study, by file name."""
    figures = sorted((root / study.figures).glob("*.png"))
    return "".join(f'<figure><img src="{link(root, f.relative_to(root))}" alt="{escape(f.stem)}">'
                   f"<figcaption>{escape(f.stem.replace('_', ' '))}</figcaption></figure>" for f in figures)


def energy_source(root: Path, study: Study) -> str:
    """Where a study's numbers come from: hardware and energy method, or why there are none."""
    if study.key == "survey":
        return "<p>Counts of papers: no energy is measured in this study.</p>"
    if study.key == "carbon":
        return f"<p><b>Method:</b> {escape(CARBON_METHOD)}.</p>"
    if study.key == "benchmark":
        return ""  # per model, beside the models table
    groups = variant_methods(root / VARIANTS_CSV)
    if groups:
        return render_methods(groups)
    return (f"<p>Hardware and energy method: not recorded in {escape(str(VARIANTS_CSV))}; "
            "see the study's report.</p>")


def render_study(root: Path, study: Study, params: dict, models: list[Model]) -> str:
    """One study's section: headline, where its numbers come from, metrics table, figures."""
    path, report = root / study.metrics, root / study.report
    report_link = (f'<a href="{link(root, study.report)}">{escape(study.report)}</a>' if report.is_file()
                   else f"{escape(study.report)} (not run)")
    parts = [f'<section id="{study.key}"><h2>{escape(study.title)}</h2><p>{escape(study.about)}</p>',
             f"<p><b>Report:</b> {report_link}</p>"]
    axis = params["benchmark"]["quality_axis"]
    if path.is_file():
        metrics = read_json(path)
        sentence = headline(study, metrics, path, axis)
        if sentence:
            parts.append(f'<p class="headline">{escape(sentence)}</p>')
        scope = scope_sentence(study, params)
        if scope:
            parts.append(f"<p>{escape(scope)}</p>")
        recipe = recipe_cost_sentence(root) if study.key == "benchmark" else ""
        if recipe:
            parts.append(f"<p>{escape(recipe)}</p>")
        source = energy_source(root, study)
        parts += [source] if source else []
        table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in flatten(metrics))
        parts.append(f'<details><summary>All numbers of {escape(study.metrics)}</summary>'
                     f'<table class="metrics"><tbody>{table}</tbody></table></details>')
    else:
        parts.append(f'<p class="notrun">Not run: {escape(study.metrics)} does not exist '
                     f"(run <code>make repro</code>).</p>")
    if study.key == "benchmark":
        parts += ["<h3>Models</h3>", render_methods(model_methods(models)) or "<p>No model has been measured yet.</p>",
                  render_models(models, axis), "<h3>Listen</h3>", render_listen(models)]
    figures = render_figures(root, study)
    if figures:
        parts.append(f'<h3>Figures</h3><div class="figures">{figures}</div>')
    return "\n".join(parts) + "\n</section>"


def render_reports(root: Path, models: list[Model]) -> str:
    """The list of rendered notebooks: a link for each that exists, "not run" for the others."""
    reports = [(s.title, s.report) for s in STUDIES[:3]]
    reports += [(f"vocoder {m.name}", str(MODEL_REPORTS_DIR / f"{m.name}.html")) for m in models]
    reports.append((STUDIES[3].title, STUDIES[3].report))
    items = "".join(f'<li><a href="{link(root, path)}">{escape(title)}</a> <small>{escape(path)}</small></li>'
                    if (root / path).is_file() else
                    f'<li class="notrun">{escape(title)} <small>{escape(path)}: not run</small></li>'
                    for title, path in reports)
    return f"<ul class=\"reports\">{items}</ul>"


PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>audiofootprint: results</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 0 auto; padding: 1rem 2rem; color: #222;
       line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-top: 1rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; }
tr.failed td { background: #fde8e8; color: #8a1c1c; } tr.missing td { color: #777; }
.unconverged { color: #888; }
.notrun { color: #8a5a00; } .headline { font-size: 1.1rem; } .note, .who, small { color: #555; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 34rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; }
audio { width: 16rem; }
</style>
</head>
<body>
<header>
<h1>audiofootprint</h1>
<p>The energy and carbon cost of deep generative audio models, beside their quality: the results of this
compendium, built by <code>make repro</code> from what the pipeline produced (a study not yet run is
marked <span class="notrun">not run</span>). Every energy figure says how it was obtained.</p>
<nav>$nav</nav>
</header>
<section id="reports"><h2>Reports</h2>
<p>The executed notebooks, with their code, figures and findings.</p>
$reports
</section>
$studies
</body>
</html>
""")


def render_site(root: str | Path, params: dict) -> str:
    """The HTML of reports/index.html for the project at ``root`` and its params."""
    root = Path(root)
    models = load_models(root, params)
    nav = " ".join(f'<a href="#{s.key}">{escape(s.title)}</a>' for s in STUDIES)
    return PAGE.substitute(nav=f'<a href="#reports">Reports</a> {nav}', reports=render_reports(root, models),
                           studies="\n".join(render_study(root, s, params, models) for s in STUDIES))


def write_site(root: str | Path, params: dict) -> Path:
    """Write reports/index.html atomically; return its path."""
    path = Path(root) / SITE
    atomic.write_text(path, render_site(root, params))
    return path
