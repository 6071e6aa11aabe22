"""The front page reports/index.html: built from what exists, checked in headless chromium."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile as sf
import yaml
from PIL import Image

from audiofootprint import site
from chromium import find_chromium, load_page
from conftest import BENCHMARK_MODELS, measured_metrics, run

METHOD = {"cpu": "estimate: CPU load x TDP (8 W TDP for Test CPU)", "gpu": "no GPU seen",
          "ram": "estimate: codecarbon RAM power model (process mode)"}


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_png(path: Path, size=(60, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, "white")
    image.paste((200, 30, 30), (10, 10, 30, 30))
    image.save(path)


def write_wav(path: Path, seconds=0.5, rate=16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), rate, subtype="PCM_16")


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def site_params(models: dict, left_out: tuple = ()) -> dict:
    """The params.yaml keys the site reads: a default-profile run over ``models`` (its scope leaving out
    ``left_out``), quantizing the first with two schemes."""
    first = list(models)[:1]
    return {"benchmark": {"models": models, "quality_axis": "pesq"},
            "profile": {"name": "default", "scope": {"models": "all", "models_left_out": list(left_out),
                                                     "quantize_models": first,
                                                     "quantize_schemes": ["fp32", "ort_fp32"]}},
            "quantize": {"models": first, "schemes": ["fp32", "ort_fp32"]}}


@pytest.fixture
def tree(tmp_path) -> Path:
    """A project after a partial run: survey and benchmark done (alpha measured, beta failed,
    gamma not run), no training carbon, no quantization."""
    models = {name: {"trained_by": name} for name in ("alpha", "beta", "gamma")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(site_params(models, left_out=("delta",))))
    write_json(tmp_path / "results/survey/metrics.json", {
        "n_papers": 10, "n_reporting_energy": 1,
        "share_by_group": {"quality": 0.9, "computational_cost": 0.5, "energy": 0.1},
        "share_by_family": {"human_rating": 0.8, "energy_co2": 0.1}})
    write_png(tmp_path / "results/survey/figures/family_shares.png")
    (tmp_path / "reports/vocoders").mkdir(parents=True)
    (tmp_path / "reports/survey.html").write_text("<html><body>survey</body></html>")
    (tmp_path / "reports/vocoders/alpha.html").write_text("<html><body>alpha</body></html>")
    replace(measured_metrics("HiFi-GAN", 1.5, 2.5, q1=1.25, q3=1.75, hardware="Test CPU"), energy_method=METHOD,
            real_time_factor={"median": 0.25, "q1": 0.2, "q3": 0.3, "n": 20},
            quality={"pesq": {"mean": 2.5, "ci95": 0.25, "n": 4}, "stoi": {"mean": 0.9, "ci95": 0.01, "n": 4}},
            ).write(tmp_path / "results/benchmark/alpha/metrics.json")
    audio = tmp_path / "results/benchmark/alpha/audio"
    write_wav(audio / "a_first.synthesis.wav")  # no recording beside it: not offered
    write_wav(audio / "b_second.synthesis.wav")
    write_wav(audio / "b_second.recording.wav")
    write_json(tmp_path / "results/benchmark/beta/metrics.json", {
        "status": "failed", "family": "MelGAN", "failed_stage": "benchmark", "reason": "benchmark@beta failed",
        "error_type": "RuntimeError", "message": "out of memory", "training": {"trained_by": "beta"}})
    write_csv(tmp_path / "results/benchmark_summary/models.csv", [
        {"model": "alpha", "status": "ok", "reason": "", "pareto_inference": "True",
         "pareto_inference_survives_spread": "True", "pareto_training": "False", "rank_by_efficiency": "1"},
        {"model": "beta", "status": "failed", "reason": "benchmark@beta failed (RuntimeError: out of memory)",
         "pareto_inference": "", "pareto_inference_survives_spread": "", "pareto_training": "", "rank_by_efficiency": ""}])
    write_json(tmp_path / "results/benchmark_summary/metrics.json", {
        "headline_models": ["alpha"], "pareto_inference": ["alpha"], "most_efficient": "alpha", "best_quality": "alpha",
        "pareto_published_mos": ["alpha", "gamma"], "most_efficient_published_mos": "gamma",
        "budget_trained": {"gamma": "after 12 steps of the recipe's 1,000"}, "failed": ["beta"]})
    return tmp_path


def build(root: Path) -> str:
    path = site.write_site(root, yaml.safe_load((root / "params.yaml").read_text()))
    assert path == root / "reports/index.html"
    return path.read_text()


class Page(HTMLParser):
    """The parts of a page the tests look at: table rows (cell texts), sections' text, attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.rows, self.sections, self.attrs, self.classes = [], {}, [], {}
        self._row = self._cell = self._section = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag == "section":
            self._section = attrs["id"]
            self.sections[self._section] = ""
        elif tag == "tr":
            self._row, self._row_class = [], attrs.get("class")
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)
            self.classes.setdefault(self._row[0], self._row_class)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._section:
            self.sections[self._section] += data

    def row(self, first: str) -> list[str]:
        return next(r for r in self.rows if r and r[0] == first)


def test_models_are_read_from_metrics_and_summary(tree):
    models = {m.name: m for m in site.load_models(tree, yaml.safe_load((tree / "params.yaml").read_text()))}
    alpha = models["alpha"]
    assert alpha.status == "ok" and alpha.family == "HiFi-GAN" and alpha.hardware == "Test CPU"
    assert alpha.energy == (1.5, 1.25, 1.75) and alpha.quality == (2.5, 0.25) and alpha.rtf == 0.25
    assert alpha.fronts == ["inference (holds within the spread)"] and alpha.rank == "1"
    assert alpha.report == "vocoders/alpha.html"
    assert alpha.audio == ("b_second", "../results/benchmark/alpha/audio/b_second.recording.wav",
                           "../results/benchmark/alpha/audio/b_second.synthesis.wav")
    beta = models["beta"]
    assert beta.status == "failed" and beta.energy is None and beta.family == "MelGAN"
    assert beta.reason == "benchmark@beta failed (RuntimeError: out of memory)"
    assert models["beta"].report is None and models["beta"].audio is None
    assert models["gamma"].status == "not run"


def test_page_shows_numbers_failures_and_missing_studies(tree):
    page = Page(build(tree))
    assert page.row("alpha") == ["alpha", "HiFi-GAN", "ok: training-free", "2.500 ± 0.25", "1.5 [1.25–1.75]", "0.25",
                                 "inference (holds within the spread)", "1"]
    assert page.row("beta") == ["beta", "MelGAN", "failed", "benchmark@beta failed (RuntimeError: out of memory)"]
    assert page.classes["beta"] == "failed"
    assert page.row("gamma") == ["gamma", "", "not run", "–"] and page.classes["gamma"] == "missing"
    survey = page.sections["survey"]
    assert ("Of 10 papers, 90% report a quality metric, 50% a computational cost and 10% energy or CO2e "
            "(papers reporting energy: 1).") in survey
    assert page.row("share_by_family.human_rating") == ["share_by_family.human_rating", "0.8"]
    assert "Not run: results/carbon/metrics.json does not exist" in page.sections["carbon"]
    assert "Not run: results/quantize_summary/metrics.json does not exist" in page.sections["quantize"]
    benchmark = page.sections["benchmark"]
    assert ("Converged models (alpha; the recordings as the ceiling): Pareto front of pesq against inference "
            "energy: alpha; most efficient: alpha; best pesq: alpha. Published-MOS front: alpha, gamma; most efficient "
            "by published MOS: gamma. 1 budget-trained models costed, not ranked by quality. Failed: beta.") in benchmark
    assert f"measured on Test CPU; energy: CPU: {METHOD['cpu']}; GPU: no GPU seen; RAM: {METHOD['ram']} (alpha)" \
        in benchmark
    assert ("This run (profile default) benchmarks every model of conf/vocoder/ outside a grid but those its scope "
            "leaves out (delta): 3 models (alpha, beta, gamma). The whole zoo and every scheme: make repro "
            "PROFILE=full.") in benchmark
    reports = page.sections["reports"]
    for missing in ("reports/carbon.html: not run", "reports/benchmark.html: not run",
                    "reports/vocoders/beta.html: not run", "reports/quantize.html: not run"):
        assert missing in reports


def test_page_is_self_contained_and_links_relative_files(tree):
    text = build(tree)
    page = Page(text)
    assert "<script" not in text and "<link rel=\"stylesheet\"" not in text and "@import" not in text
    urls = [(tag, a.get("href") or a.get("src")) for tag, a in page.attrs if a.get("href") or a.get("src")]
    assert ("a", "survey.html") in urls and ("a", "vocoders/alpha.html") in urls
    assert ("img", "../results/survey/figures/family_shares.png") in urls
    assert [u for t, u in urls if t == "audio"] == ["../results/benchmark/alpha/audio/b_second.recording.wav",
                                                   "../results/benchmark/alpha/audio/b_second.synthesis.wav"]
    for tag, url in urls:
        if url.startswith("#"):
            assert url[1:] in page.sections
        elif not url.startswith("data:"):
            assert "//" not in url and (tree / "reports" / unquote(url)).resolve().is_file(), url


def test_quantization_is_included_when_present(tree):
    write_json(tree / "results/quantize_summary/metrics.json", {
        "baseline": "fp32", "variants_measured": 2, "missing": [],
        "by_scheme": {"static_int8": {"size_ratio_median": 3.9, "speedup_median": 1.25, "energy_ratio_median": 0.8}}})
    write_csv(tree / "results/quantize_summary/variants.csv", [
        {"model": "alpha", "scheme": "fp32", "status": "ok", "hardware": "Test CPU", "energy_method_cpu": METHOD["cpu"]},
        {"model": "alpha", "scheme": "static_int8", "status": "ok", "hardware": "Test CPU",
         "energy_method_cpu": METHOD["cpu"]}])
    write_png(tree / "results/quantize_summary/figures/size_energy.png")
    (tree / "reports/quantize.html").write_text("<html></html>")
    page = Page(build(tree))
    quantize = page.sections["quantize"]
    assert "2 variants measured; medians against fp32: static_int8 3.9x smaller, 1.25x faster, 0.8x the energy." \
        in quantize
    assert f"measured on Test CPU; energy: CPU: {METHOD['cpu']} (alpha/fp32, alpha/static_int8)" in quantize
    assert ("This run (profile default) quantizes alpha with 2 schemes (fp32, ort_fp32). The whole zoo and every "
            "scheme: make repro PROFILE=full.") in quantize
    assert page.row("by_scheme.static_int8.size_ratio_median")[1] == "3.9" and page.row("missing")[1] == "none"
    urls = [a.get("href") or a.get("src") for _, a in page.attrs]
    assert "quantize.html" in urls and "../results/quantize_summary/figures/size_energy.png" in urls
    assert "Not run" not in quantize


def test_writing_is_atomic_and_stable(tree):
    first = build(tree)
    assert build(tree) == first  # no timestamp: an unchanged tree gives the same bytes
    assert sorted(p.name for p in (tree / "reports").iterdir()) == ["index.html", "survey.html", "vocoders"]
    write_json(tree / "results/benchmark/alpha/metrics.json", {"family": "HiFi-GAN"})  # a truncated run
    with pytest.raises(ValueError, match=r"results/benchmark/alpha/metrics.json has no field 'status'"):
        build(tree)
    assert (tree / "reports/index.html").read_text() == first


def test_malformed_metrics_name_the_file(tree):
    (tree / "results/survey/metrics.json").write_text('{"n_papers": 10,')
    with pytest.raises(ValueError, match=r"results/survey/metrics.json is not valid JSON"):
        build(tree)
    write_json(tree / "results/survey/metrics.json", {"n_papers": 10})
    with pytest.raises(KeyError, match=r"results/survey/metrics.json has no key 'share_by_group.quality'"):
        build(tree)


def test_failure_is_read_from_the_model_before_the_summary_runs(tree):
    (tree / "results/benchmark_summary/models.csv").unlink()
    (tree / "results/benchmark_summary/metrics.json").unlink()
    page = Page(build(tree))
    assert page.row("beta") == ["beta", "MelGAN", "failed", "benchmark@beta failed"]
    assert page.row("alpha")[:3] == ["alpha", "HiFi-GAN", "ok: training-free"] and page.row("alpha")[6:] == ["–", "–"]
    assert "Not run: results/benchmark_summary/metrics.json does not exist" in page.sections["benchmark"]


def test_nothing_run_yet_lists_every_study_as_not_run(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(site_params({"alpha": {"trained_by": "alpha"}})))
    page = Page(build(tmp_path))
    for study in site.STUDIES:
        assert f"Not run: {study.metrics} does not exist" in page.sections[study.key]
    assert page.row("alpha")[2] == "not run" and "No model has been measured yet." in page.sections["benchmark"]


# ---- in the browser ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; missing, the test fails with the command that installs it (make test does)."""
    try:
        return find_chromium()
    except FileNotFoundError as error:
        pytest.fail(str(error))


def test_missing_chromium_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"chromium not found on PATH: make browser .*apt-get install"):
        find_chromium()


def check_in_browser(page: Path, screenshot: Path, chromium: str) -> dict:
    """Load the page in headless chromium and assert it works: no console error, no failed or network
    load, every image decoded, every audio element playable, every link to an existing file."""
    state = load_page(page, screenshot, chromium)
    assert state["errors"] == [] and state["failed"] == []
    assert [u for u in state["requests"] if not u.startswith(("file:", "data:"))] == []
    assert state["scripts"] == 0 and state["stylesheets"] == 0
    assert state["images"] and [i["src"] for i in state["images"] if not (i["complete"] and i["width"] > 0)] == []
    assert state["audio"] and [a for a in state["audio"] if a["ready"] < 1 or a["error"] is not None] == []
    assert all(a["duration"] > 0 for a in state["audio"])
    for link in state["links"]:
        url = urlparse(link["href"])
        assert url.scheme == "file", link
        if link["raw"].startswith("#"):
            assert link["target"], f"in-page link {link['raw']} has no target"
        else:
            assert Path(unquote(url.path)).is_file(), f"link {link['raw']} resolves to no file"
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    with Image.open(screenshot) as image:
        small = image.convert("RGB").resize((128, 128))
        assert image.width >= 800 and len(small.getcolors(128 * 128)) > 50  # a rendered page, not one colour
    return state


def test_partial_tree_works_in_the_browser(chromium, tree, tmp_path):
    build(tree)
    state = check_in_browser(tree / "reports/index.html", tmp_path / "partial.png", chromium)
    assert len(state["images"]) == 1 and len(state["audio"]) == 2
    assert "Not run: results/carbon/metrics.json does not exist" in state["text"]


def test_browser_check_catches_missing_files(chromium, tree, tmp_path):
    build(tree)
    (tree / "results/survey/figures/family_shares.png").unlink()
    (tree / "results/benchmark/alpha/audio/b_second.recording.wav").unlink()
    state = load_page(tree / "reports/index.html", tmp_path / "broken.png", chromium)
    assert [i["width"] for i in state["images"]] == [0]
    assert [a["error"] is not None or a["ready"] == 0 for a in state["audio"]] == [True, False]
    assert any("family_shares.png" in f for f in state["failed"]) and any("b_second.recording" in f
                                                                          for f in state["failed"])
    with pytest.raises(AssertionError):
        check_in_browser(tree / "reports/index.html", tmp_path / "broken2.png", chromium)


def test_site_over_the_benchmark_of_a_real_pipeline_run(chromium, benchmarked, tmp_path):
    """The stage's command over real outputs (the shared four-model ci run), checked in the browser."""
    project, _ = benchmarked
    assert "wrote reports/index.html" in run(["audiofootprint", "site"], project).stdout
    page = project / "reports/index.html"
    state = check_in_browser(page, tmp_path / "site.png", chromium)
    hrefs = {a["raw"] for a in state["links"]}
    assert "benchmark.html" in hrefs
    assert len(state["images"]) == len(list(project.glob("results/*/figures/*.png"))) >= 4
    assert len(state["audio"]) == 2 * len(BENCHMARK_MODELS)
    html = Page(page.read_text())
    for name in BENCHMARK_MODELS:  # `dvc repro benchmark_report` leaves the per-model reports to model_report
        rendered = (project / f"reports/vocoders/{name}.html").is_file()
        assert (f"vocoders/{name}.html" in hrefs) if rendered else \
            (f"reports/vocoders/{name}.html: not run" in html.sections["reports"])
    summary = json.loads((project / "results/benchmark_summary/metrics.json").read_text())
    assert f"most efficient: {summary['most_efficient']}" in html.sections["benchmark"]
    for name in BENCHMARK_MODELS:
        metrics = json.loads((project / f"results/benchmark/{name}/metrics.json").read_text())
        row = html.row(name)
        assert row[2].startswith("ok") and row[4].startswith(f"{metrics['energy_j_per_audio_s']['median']:.4g} [")
        assert row[3].startswith(f"{metrics['quality']['pesq']['mean']:.3f}")
        assert row[5] == f"{metrics['real_time_factor']['median']:.4g}"
        assert metrics["energy_method"]["cpu"] in html.sections["benchmark"]


@pytest.mark.slow
def test_site_stage_ends_the_whole_pipeline(chromium, benchmarked, tmp_path):
    """`dvc repro site` runs every study it reads (quantization included) and then the site."""
    project, _ = benchmarked
    first = run(["dvc", "repro", "site"], project)
    assert "Running stage 'site'" in first.stdout
    page = project / "reports/index.html"
    state = check_in_browser(page, tmp_path / "site.png", chromium)
    reports = {"survey.html", "carbon.html", "benchmark.html", "quantize.html"}
    assert reports | {f"vocoders/{m}.html" for m in BENCHMARK_MODELS} <= {a["raw"] for a in state["links"]}
    figures = list(project.glob("results/*/figures/*.png"))
    assert len(state["images"]) == len(figures) and {f.parent.parent.name for f in figures} == {
        "survey", "carbon", "benchmark_summary", "quantize_summary"}
    html = Page(page.read_text())
    for study in site.STUDIES:
        assert "Not run" not in html.sections[study.key]
    second = run(["dvc", "repro", "site"], project)
    assert "Running stage" not in second.stdout


def test_grids_and_training_to_the_recipe_are_told_on_the_page(tree):
    metrics_path = tree / "results/benchmark_summary/metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["grids"] = {"thesis": {
        "sizes": ["small", "medium", "large"], "members": ["a", "b", "c", "d"],
        "quality_note": "0 of 4 measured members converged",
        "families": {"MelGAN": {"energy_largest_over_smallest": 4.25}, "HiFi-GAN": {"energy_largest_over_smallest": 9.0}}}}
    write_json(metrics_path, metrics)
    blank = dict.fromkeys(("recipe_steps", "recipe_days", "recipe_kwh", "cap_steps", "cap_kwh", "seconds_per_step",
                           "joules_per_step"), "")
    write_csv(tree / "results/recipe_cost/costs.csv", [
        {"model": "alpha", "status": "ok", **blank, "recipe_steps": "2500000", "recipe_days": "1559.9",
         "recipe_kwh": "662.79", "label": "extrapolated from 3 measured steps (estimate)"},
        {"model": "beta", "status": "ok", **blank, "cap_steps": "12000", "cap_kwh": "8.04",
         "label": "extrapolated from 3 measured steps (estimate)"},
        {"model": "gamma", "status": "ok", **blank, "seconds_per_step": "1.5", "joules_per_step": "30",
         "label": "per-step cost from 3 measured steps (estimate)"},
        {"model": "delta", "status": "failed", **blank, "label": "recipe_cost failed (OutOfMemoryError: CUDA)"}])
    benchmark = Page(build(tree)).sections["benchmark"]
    assert ("Grid thesis (4 members; sizes small, medium, large): inference energy from the smallest size to the "
            "largest: HiFi-GAN x9, MelGAN x4.25; 0 of 4 measured members converged.") in benchmark
    assert ("Training to the recipe on this machine (stage recipe_cost, an extrapolation): alpha: 2,500,000 steps "
            "would take 1,560 days and 663 kWh (extrapolated from 3 measured steps (estimate)); beta: the thesis' "
            "5-day cap reaches 12,000 steps for 8.0 kWh (extrapolated from 3 measured steps (estimate)); gamma: "
            "1.5 s and 30 J per step, its recipe states no step count (per-step cost from 3 measured steps "
            "(estimate)); delta: not measured (recipe_cost failed (OutOfMemoryError: CUDA)).") in benchmark
