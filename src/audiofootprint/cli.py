"""The `audiofootprint` command line: one sub-command per stage or tool."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from audiofootprint.paths import STUDY_NOTEBOOKS



def _cmd_params(args: argparse.Namespace) -> int:
    from audiofootprint import params

    if args.check:
        params.check_params(args.root)
        print(f"{Path(args.root) / 'params.yaml'} matches conf/")
    else:
        path = params.write_params(args.root, args.overrides)
        print(f"wrote {path}" + (f" (overrides: {' '.join(args.overrides)})" if args.overrides else ""))
    return 0


def _cmd_survey(args: argparse.Namespace) -> int:
    from audiofootprint import params, survey

    params.check_params(args.root)
    metrics = survey.write_results(args.root, params.load_params(args.root))
    groups = ", ".join(f"{k} {v:.0%}" for k, v in metrics["share_by_group"].items())
    print(f"survey: {metrics['n_papers']} papers; share reporting {groups}")
    return 0


def _cmd_training_carbon(args: argparse.Namespace) -> int:
    from audiofootprint import carbon, params

    params.check_params(args.root)
    metrics = carbon.write_results(args.root, params.load_params(args.root))
    totals = metrics["total_co2e_kg"]
    print(f"training carbon: {metrics['n_runs_estimated']} of {metrics['n_runs_curated']} runs estimated; "
          f"total {totals['low']:.0f} / {totals['central']:.0f} / {totals['high']:.0f} kg CO2e (low/central/high)")
    return 0


def _hardware_table(root: str) -> Path:
    from audiofootprint import PROJECT_ROOT

    for base in (Path(root), PROJECT_ROOT):
        if (base / "data/carbon/hardware.csv").is_file():
            return base / "data/carbon/hardware.csv"
    raise FileNotFoundError("data/carbon/hardware.csv not found: run from the project root or pass --root")


def _cmd_carbon(args: argparse.Namespace) -> int:
    import json

    from audiofootprint import carbon

    sources = {}
    if args.accelerator:
        power, sources["power"] = carbon.accelerator_power(carbon.load_hardware(_hardware_table(args.root)),
                                                           args.accelerator)
    else:
        power, sources["power"] = args.power_w, "given (--power-w, watts per device)"
    if args.country:
        intensity, sources["intensity"] = carbon.intensity_for(args.country)
    else:
        intensity, sources["intensity"] = args.intensity, "given (--intensity, g CO2e per kWh)"
    sources["pue"] = "given (--pue)" if args.pue is not None else "not given: 1.0, IT equipment only"
    sources["utilization"] = ("given (--utilization)" if args.utilization is not None
                              else "not given: 1.0, devices at full power")
    result = carbon.estimate(hours=args.hours, power_w=power, count=args.count,
                             utilization=args.utilization if args.utilization is not None else 1.0,
                             pue=args.pue if args.pue is not None else 1.0, intensity_g_per_kwh=intensity,
                             sources=sources)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        print(f"energy: {result.energy_kwh:.6g} kWh    emissions: {result.co2e_kg:.6g} kg CO2e")
        print(f"  = {result.count:g} device(s) x {result.power_w:g} W x {result.hours:g} h"
              f" x utilisation {result.utilization:g} x PUE {result.pue:g} / 1000"
              f" x {result.intensity_g_per_kwh:g} g/kWh / 1000")
        for key, value in sources.items():
            print(f"  {key}: {value}")
    return 0


def _zoo_rows(root: str) -> list[dict]:
    from audiofootprint.vocoders import zoo

    rows = []
    for name, entry in zoo.load_zoo(root).items():
        model = zoo.build(entry)
        params = model.num_params()
        rows.append({"name": name, "family": entry.family, "params": params,
                     "official_params": entry.official_params,
                     "params_vs_official": (params / entry.official_params - 1) if entry.official_params else 0.0,
                     "official_params_source": entry.official_params_source,
                     "size_bytes": model.artifact_bytes(), "mel": model.mel.as_dict(),
                     "target": entry.model._target_})
    return rows


def _cmd_zoo(args: argparse.Namespace) -> int:
    import json

    rows = _zoo_rows(args.root)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<18} {'family':<18} {'params':>12} {'official':>12} {'diff':>7} {'size MB':>8}  "
          f"{'sr':>6} {'n_fft':>5} {'hop':>4} {'mels':>4} {'fmin':>5} {'fmax':>6}")
    for r in rows:
        m = r["mel"]
        fmax = "nyq" if m["f_max"] is None else f"{m['f_max']:g}"
        print(f"{r['name']:<18} {r['family']:<18} {r['params']:>12,} {r['official_params']:>12,.0f} "
              f"{r['params_vs_official']:>+7.2%} {r['size_bytes'] / 1e6:>8.1f}  {m['sample_rate']:>6} "
              f"{m['n_fft']:>5} {m['hop_length']:>4} {m['n_mels']:>4} {m['f_min']:>5g} {fmax:>6}")
    print(f"{len(rows)} configurations in conf/vocoder/ (official counts and sources: --json)")
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    import json

    from audiofootprint import evaluate, runtime
    from audiofootprint.energy.cost import synthetic_mel
    from audiofootprint.params import compose_params

    params = compose_params(args.root, [f"profile={args.profile}"])
    profile = params["profile"]
    setup = runtime.set_up(args.root, params)
    model, entry, label, weights = _measured_model(args, setup.device)
    seconds = float(evaluate.measure_settings(profile, entry)["audio_seconds"])
    mel = synthetic_mel(model, seconds, setup.seed)
    if args.engine == "onnxruntime" and model.engine != "onnxruntime":
        from audiofootprint.engines import on_onnxruntime

        model, difference = on_onnxruntime(model.for_inference(), mel, setup.device)
        weights += f"; exported to ONNX, max |ONNX Runtime - torch| = {difference:.2e} on the input below"
    result = evaluate.measure(model, mel, setup, profile, entry, label,
                              "synthetic log-mel (fixed seed); content does not change a vocoder's compute")
    result["weights"] = weights
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(format_measurement(result))
    return 0


def _measured_model(args: argparse.Namespace, device: str):
    """The model ``measure`` runs: a user's model file, or a configured vocoder with its weights;
    with its zoo entry (None for a file), label and a line on its weights."""
    from audiofootprint.vocoders import zoo

    if args.model_file:
        from audiofootprint.engines import load_model_file
        from audiofootprint.vocoders.base import MelSettings, resolve_mel

        if args.vocoder or args.checkpoint:
            raise ValueError("give either a configured vocoder (with --checkpoint) or --model-file, not both")
        mel = resolve_mel(dict(_key_value(item) for item in args.mel or []), MelSettings())
        model = load_model_file(args.model_file, mel, args.convention, args.sha256, device)
        checked = "sha256 verified" if args.sha256 else "sha256 not checked (give --sha256)"
        return model, None, Path(args.model_file).name, f"model file {args.model_file} ({checked})"
    if not args.vocoder:
        raise ValueError("name a configured vocoder (see `audiofootprint zoo`) or give --model-file FILE")
    entries = zoo.load_zoo(args.root)
    if args.vocoder not in entries:
        raise KeyError(f"unknown vocoder {args.vocoder!r}; configured: {', '.join(entries)}")
    entry = entries[args.vocoder]
    model = zoo.build(entry) if entry.weights is None else zoo.build_for_corpus(entry, entry.weights.mel.sample_rate)
    weights = "random initialisation (compute does not depend on weight values)"
    if args.checkpoint:
        model.from_checkpoint(args.checkpoint, sha256=args.sha256)
        weights = f"checkpoint {args.checkpoint}"
    elif entry.weights is not None:
        model.from_checkpoint(entry.weights.file(args.root), sha256=entry.weights.sha256,
                              sha256_from=entry.weights.sha256_key)
        weights = f"pretrained weights ({entry.weights.source}, sha256 verified)"
    return model, entry, args.vocoder, weights


def _key_value(item: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--mel``, the value read as YAML (a number, or null)."""
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--mel {item!r}: give KEY=VALUE, e.g. sample_rate=22050 hop_length=256")
    return key, yaml.safe_load(value)


def format_measurement(result: dict) -> str:
    """A readable table of one vocoder measurement (the output of measure_vocoder)."""
    m = result["measurement"]
    s = m["summary"]
    hw = m["hardware"]

    def med(d, scale=1.0, fmt=".4g"):
        return f"{d['median'] * scale:{fmt}} (IQR {d['q1'] * scale:{fmt}} to {d['q3'] * scale:{fmt}}, n={d['n']})"

    lines = [
        f"vocoder            {result['label']}  ({result['params']:,} parameters, "
        f"{result['size_bytes'] / 1e6:.1f} MB on disk, weights: {result.get('weights', 'n/a')})",
        f"input              {m['audio_seconds']:.3f} s of audio per call ({m['samples']:,} samples, "
        f"{result['mel_settings']['sample_rate']} Hz)",
        f"hardware           {hw['cpu_model']} x{hw['cpu_count']:g}, GPU: {hw['gpu_model'] or 'none'}, "
        f"{hw['ram_total_gb']:.1f} GB RAM, device {m['device']}",
        f"engine             {result['engine']}, {result['engine_threads']} threads",
        f"method             CPU: {m['methods']['cpu']}; GPU: {m['methods']['gpu']}; RAM: {m['methods']['ram']}",
        f"location           {hw['country_iso3']}, PUE {hw['pue']:g}, codecarbon {hw['codecarbon_version']} "
        f"offline tracker, {hw['tracking_mode']} mode",
        f"repetitions        {m['settings']['warmup']} warm-up, {len(m['windows'])} windows of >= "
        f"{m['settings']['min_window_s']:g} s ({sum(w['calls'] for w in m['windows'])} calls), "
        f"{len(m['idle'])} idle window(s)",
        f"wall time / call   {med(s['per_call']['wall_s'], 1e3)} ms",
        f"CPU time / call    {med(s['per_call']['cpu_s'], 1e3)} ms",
        f"real-time factor   {med(s['real_time_factor'])}",
        f"samples / s        {med(s['samples_per_s'], fmt=',.0f')}",
        f"energy / call      {med(s['per_call']['energy_j'])} J  (CPU {s['per_call']['cpu_j']['median']:.4g}, "
        f"GPU {s['per_call']['gpu_j']['median']:.4g}, RAM {s['per_call']['ram_j']['median']:.4g})",
        f"energy / audio s   {med(s['energy_j_per_audio_s'])} J gross, "
        f"{s['net_energy_j_per_audio_s']['median']:.4g} J net of idle ({s['energy_kwh_per_audio_s']:.3g} kWh gross)",
        f"idle power         {sum(s['idle_power_w'].values()):.3g} W (CPU {s['idle_power_w']['cpu']:.3g}, "
        f"RAM {s['idle_power_w']['ram']:.3g}, GPU {s['idle_power_w']['gpu']:.3g}); mean power under load "
        f"{s['mean_power_w']:.3g} W",
        f"CO2e / call        {med(s['per_call']['co2e_kg'], 1e3)} g",
        "FLOPs / audio s    " + (f"{result['flops_per_audio_s'] / 1e9:.3g} GFLOP " if result["flops_per_audio_s"]
                                  is not None else "") + f"({result['flops_method']})",
        f"peak memory / call {result['peak_memory']['bytes'] / 1e6:.1f} MB ({result['peak_memory']['method']})",
    ]
    return "\n".join(lines)


def _cmd_corpus(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.corpus import build_corpus, summary
    from audiofootprint.paths import CORPUS_DIR

    params.check_params(args.root)
    cfg = params.load_params(args.root)["corpus"]
    if cfg["source_dir"] in (None, "???"):
        raise ValueError(f"corpus.source_dir is not set for corpus {cfg['name']!r}: set it in conf/corpus/"
                         f"{cfg['name']}.yaml or with PARAMS_OVERRIDES='corpus.source_dir=/path/to/recordings'")
    result = build_corpus(cfg["source_dir"], Path(args.root) / CORPUS_DIR, int(cfg["sample_rate"]),
                          min_seconds=float(cfg["min_seconds"]), loudness_lufs=float(cfg["loudness_lufs"]),
                          split=tuple(cfg["split"]), include=cfg.get("include"), progress=True)
    print(summary(result.manifest).to_string())
    left_out = result.excluded[~result.excluded["reason"].str.startswith("non-speech")]
    if len(left_out):  # recordings without usable speech (silent, too short): recorded, and told
        shown = "; ".join(f"{row.source_path} ({row.reason})" for row in left_out.head(5).itertuples())
        print(f"corpus: left out {len(left_out)} recording(s) without usable speech: {shown}"
              f"{'; ...' if len(left_out) > 5 else ''} (every reason: {CORPUS_DIR / 'excluded.csv'})", file=sys.stderr)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.energy.harness import J_PER_KWH
    from audiofootprint.training.stage import train_model

    params.check_params(args.root)
    record = train_model(args.root, args.vocoder, params.load_params(args.root))
    if record.get("status") == "failed":  # recorded and told on stderr: the pipeline goes on
        return 0
    print(f"trained {args.vocoder}: {record.get('steps', 0)} steps, {record.get('seconds', 0):.1f} s, "
          f"{record.get('energy_kwh', 0) * J_PER_KWH:.1f} J ({record.get('objective')})")
    return 0


def _cmd_recipe_cost(args: argparse.Namespace) -> int:
    import json

    from audiofootprint import atomic, failures, params, runtime
    from audiofootprint.energy.harness import MeasureSettings
    from audiofootprint.paths import CORPUS_DIR, RECIPE_COST_CSV
    from audiofootprint.training import recipe_cost, recipe_stage
    from audiofootprint.vocoders import zoo

    if args.vocoder is None:  # the stage: the models of profile.recipe_cost
        params.check_params(args.root)
        table = recipe_stage.write_results(args.root, params.load_params(args.root))
        print(f"recipe_cost: {len(table)} model(s) measured: {RECIPE_COST_CSV}")
        return 0
    entries = zoo.load_zoo(args.root)
    if args.vocoder not in entries:
        raise KeyError(f"unknown vocoder {args.vocoder!r}; configured: {', '.join(entries)}")
    entry = entries[args.vocoder]
    if not recipe_cost.trains_itself(entry):
        raise zoo.ConfigError(f"{entry.path}: no training of its own (pretrained, training.objective none, or a "
                              "shared training run): nothing to measure")
    loaded = params.compose_params(args.root, [f"profile={args.profile}"])
    setup = runtime.set_up(args.root, loaded)
    if not (Path(args.root) / CORPUS_DIR).is_dir():
        raise FileNotFoundError(f"{CORPUS_DIR} not found: build the corpus first (`dvc repro corpus`)")
    settings = MeasureSettings(warmup=args.warmup, windows=args.steps, min_window_s=1e-3, min_repeats=1, idle_windows=1)
    record = recipe_stage.measure_model(entry, Path(args.root), int(loaded["corpus"]["sample_rate"]), settings, setup,
                                        float(loaded["energy"]["pue"]))
    if args.json:
        atomic.write_json(Path(args.json), record)
    if failures.failed(record):
        return 1
    row = recipe_stage.cost_row(entry, record)
    print(f"{entry.name}: {row['seconds_per_step']:.3g} s/step (IQR {row['seconds_per_step_q1']:.3g}-"
          f"{row['seconds_per_step_q3']:.3g}), {row['joules_per_step']:.3g} J/step at batch {row['batch_size']} x "
          f"{row['crop_samples']} samples, {row['steps_measured']} measured steps ({row['energy_method']}, {row['hardware']})")
    if row["recipe_kwh"] is not None:
        print(f"to the recipe's {row['recipe_steps']:,} steps: {row['recipe_days']:.3g} days, {row['recipe_kwh']:.3g} kWh "
              f"(IQR {row['recipe_kwh_q1']:.3g}-{row['recipe_kwh_q3']:.3g}); counted as carbontracker 1.1.6 does: "
              f"{row['carbontracker_kwh']:.3g} kWh, {row['carbontracker_co2e_kg']:.3g} kg CO2e")
    else:
        print(f"{entry.name}: the recipe gives no step count (training.recipe_steps: null): per-step cost only")
    if row["cap_steps"] is not None:
        print(f"the thesis' 5-day cap on this machine: {row['cap_steps']:,} steps, {row['cap_kwh']:.3g} kWh")
    if args.json:
        print(json.dumps({"written": args.json}))
    return 0


def _cmd_recordings(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.benchmark import score_recordings

    params.check_params(args.root)
    metrics = score_recordings(args.root, params.load_params(args.root))
    print("recordings: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in metrics.items()))
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.benchmark import benchmark_model
    from audiofootprint.benchmark_summary import summarise

    params.check_params(args.root)
    loaded = params.load_params(args.root)
    if args.vocoder == "summary":
        metrics = summarise(args.root, loaded)
        print(f"benchmark: Pareto front (quality vs inference energy, converged models): "
              f"{', '.join(metrics['pareto_inference'])}; most efficient: {metrics['most_efficient']}; "
              f"best quality: {metrics['best_quality']}")
        if metrics.get("pareto_published_mos"):
            print(f"benchmark: Pareto front (published MOS vs inference energy): "
                  f"{', '.join(metrics['pareto_published_mos'])}")
        if metrics["budget_trained"]:
            print(f"benchmark: {len(metrics['budget_trained'])} budget-trained models costed, not ranked by quality")
        for name, why in metrics["failed_reasons"].items():
            print(f"benchmark: {name} FAILED: {why}", file=sys.stderr)
        return 0
    if args.vocoder not in loaded["benchmark"]["models"]:
        raise KeyError(f"{args.vocoder!r} is not in benchmark.models of params.yaml "
                       f"({', '.join(loaded['benchmark']['models'])})")
    metrics = benchmark_model(args.root, args.vocoder, loaded)
    if not metrics.ok:  # recorded and told on stderr: the pipeline goes on
        return 0
    print(f"{args.vocoder}: {metrics.energy_j_per_audio_s['median']:.3g} J per audio second, "
          f"RTF {metrics.real_time_factor['median']:.3g}, "
          + ", ".join(f"{k} {v['mean']:.3f}" for k, v in metrics.quality.items()))
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.quantization.study import run_variant
    from audiofootprint.quantization.summary import summarise

    params.check_params(args.root)
    loaded = params.load_params(args.root)
    if args.vocoder == "summary":
        metrics = summarise(args.root, loaded)
        shown = ", ".join(f"{scheme} {s['size_ratio_median']:.2f}x smaller, {s['speedup_median']:.2f}x faster"
                          for scheme, s in metrics["by_scheme"].items())
        print(f"quantization: {metrics['variants_measured']} variants measured; median per scheme: {shown}")
        return 0
    if args.scheme is None:
        raise ValueError("give a scheme: audiofootprint quantize MODEL SCHEME (or `audiofootprint quantize summary`)")
    metrics = run_variant(args.root, args.vocoder, args.scheme, loaded)
    if metrics.ok:
        print(f"{args.vocoder}/{args.scheme}: {metrics.size_bytes / 1e6:.2f} MB, "
              f"{metrics.energy_j_per_audio_s['median']:.3g} J per audio second, "
              f"RTF {metrics.real_time_factor['median']:.3g}, "
              + ", ".join(f"{k} {v['mean']:.3f}" for k, v in metrics.quality.items()))
    else:
        print(f"{args.vocoder}/{args.scheme}: {metrics.status.replace('_', ' ')}: {metrics.reason}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    import json

    from audiofootprint.card import build_card, render_markdown

    card = build_card(args.root, args.vocoder)
    if args.json:
        print(json.dumps(card, indent=2, allow_nan=False))
    else:
        print(render_markdown(card), end="")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from audiofootprint.merge import describe, merge

    plan = merge(args.root, args.other, args.models or None, force=args.force)
    print(describe(plan, args.root))
    return 0


def _cmd_model_report(args: argparse.Namespace) -> int:
    from audiofootprint import params
    from audiofootprint.model_report import render_model_report

    params.check_params(args.root)
    executed = render_model_report(args.root, args.vocoder)
    print(f"rendered {executed.relative_to(Path(args.root).resolve())}")
    return 0


def _cmd_notebook(args: argparse.Namespace) -> int:
    from audiofootprint import params, report

    params.check_params(args.root)
    if args.name == "quantize":  # the one curated table that no stage reads before its notebook: checked first
        from audiofootprint.quantization.devices import load_devices

        load_devices(Path(args.root) / params.load_params(args.root)["quantize"]["devices"])
    executed = report.render_study(args.root, args.name)
    rendered = executed.relative_to(Path(args.root).resolve())
    print(f"rendered {rendered} and {rendered.with_suffix('.html')}")
    return 0


def _cmd_site(args: argparse.Namespace) -> int:
    from audiofootprint import params, site

    params.check_params(args.root)
    path = site.write_site(args.root, params.load_params(args.root))
    print(f"wrote {path}: open it in a browser (one static file, links relative to reports/)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line. Long by design: one flat declaration per command, so that the whole surface
    of the CLI reads top to bottom in one place (each command's work is in its own module)."""
    parser = argparse.ArgumentParser(prog="audiofootprint", description=__doc__)
    parser.add_argument("--root", default=".", help="project root holding conf/, data/, params.yaml (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("params", help="compose conf/ into params.yaml, or check that it is current")
    p.add_argument("--check", action="store_true", help="fail if params.yaml differs from what conf/ composes to")
    p.add_argument("--write", action="store_true", help="compose and write params.yaml (the default)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. profile=ci")
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("survey", help="survey stage: validate data/survey/papers.csv and compute shares")
    p.set_defaults(func=_cmd_survey)

    p = sub.add_parser("training-carbon", help="training-carbon stage: estimate published training runs")
    p.set_defaults(func=_cmd_training_carbon)

    p = sub.add_parser("carbon", help="estimate the energy and CO2e of a training run")
    p.add_argument("--hours", type=float, required=True, help="wall-clock hours of the run")
    power = p.add_mutually_exclusive_group(required=True)
    power.add_argument("--accelerator", help="accelerator name from data/carbon/hardware.csv (e.g. V100)")
    power.add_argument("--power-w", type=float, help="power per device, in watts")
    p.add_argument("--count", type=float, default=1, help="number of devices (default 1)")
    p.add_argument("--pue", type=float, help="data-centre power usage effectiveness (default 1.0)")
    p.add_argument("--utilization", type=float, help="share of the device power drawn, in (0, 1] (default 1.0)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--country", help="ISO3 country code (codecarbon's energy-mix table) or 'world'")
    where.add_argument("--intensity", type=float, help="grid carbon intensity, g CO2e per kWh")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_carbon)

    p = sub.add_parser("zoo", help="list every configured vocoder with its parameters, size and mel settings")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=_cmd_zoo)

    p = sub.add_parser("measure", help="measure one vocoder's time, energy and static costs on this machine")
    p.add_argument("vocoder", nargs="?", help="a configuration name of conf/vocoder/ (see `audiofootprint zoo`)")
    p.add_argument("--model-file", help="instead of a configured vocoder, your exported one: FILE.onnx (run by ONNX "
                                        "Runtime) or a TorchScript FILE.pt (torch); mel in, waveform out")
    p.add_argument("--mel", nargs="+", metavar="KEY=VALUE",
                   help="the model file's mel settings (sample_rate, n_fft, win_length, hop_length, n_mels, f_min, "
                        "f_max); those not given take the defaults (22050 Hz, 1024, 1024, 256, 80, 0, 8000)")
    p.add_argument("--convention", default="hifigan", help="the feature convention the model file takes "
                                                            "(a key of audiofootprint.features.CONVENTIONS)")
    p.add_argument("--engine", choices=("torch", "onnxruntime"), default="torch",
                   help="run a configured vocoder on this engine (onnxruntime: exported to ONNX first)")
    p.add_argument("--profile", default="default", help="measurement budget: ci, default or paper")
    p.add_argument("--checkpoint", help="weights to load (torch.load with weights_only=True): our generator.pt or "
                                        "the family's official checkpoint layout (default: the config's weights, if any)")
    p.add_argument("--sha256", help="refuse the checkpoint or model file unless its sha256 is this")
    p.add_argument("--json", action="store_true", help="print the full measurement as JSON")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("corpus", help="corpus stage: decode, normalise and split the speech recordings")
    p.set_defaults(func=_cmd_corpus)

    p = sub.add_parser("train", help="train stage: train one vocoder under the profile's budget, energy counted")
    p.add_argument("vocoder")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("recipe-cost", help="measure training steps at the recipe's batch and crop, and extrapolate "
                                           "time and energy to the recipe's step count")
    p.add_argument("vocoder", nargs="?", help="a configuration name of conf/vocoder/ that trains itself (without: "
                                               "the stage, the models of profile.recipe_cost in params.yaml)")
    p.add_argument("--steps", type=int, default=3, help="measured steps per phase of the recipe (after the warm-up)")
    p.add_argument("--warmup", type=int, default=1, help="steps run before measuring")
    p.add_argument("--profile", default="default", help="seed, threads, device and energy settings: ci, default or paper")
    p.add_argument("--json", help="also write the whole record to this file (JSON)")
    p.set_defaults(func=_cmd_recipe_cost)

    p = sub.add_parser("recordings", help="score the test recordings themselves (the quality ceiling)")
    p.set_defaults(func=_cmd_recordings)

    p = sub.add_parser("benchmark", help="benchmark stage: quality and inference cost of one vocoder, or `summary`")
    p.add_argument("vocoder", help="a model of benchmark.models, or `summary` for the fronts and efficiency")
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("quantize", help="quantize stage: one trained vocoder under one scheme, measured and "
                                        "scored; or `summary`")
    p.add_argument("vocoder", help="a model of quantize.models, or `summary` for the ratios and fronts")
    p.add_argument("scheme", nargs="?", help="a scheme of quantize.schemes (fp32, static_int8, ...)")
    p.set_defaults(func=_cmd_quantize)

    p = sub.add_parser("model-report", help="render the per-model notebook into reports/vocoders/NAME.html")
    p.add_argument("vocoder")
    p.set_defaults(func=_cmd_model_report)

    p = sub.add_parser("merge", help="copy per-model results of another checkout (another machine) into this one, "
                                     "after checking that they were made with the same parameters")
    p.add_argument("other", help="root of the other checkout (rsync'd or `dvc pull`ed)")
    p.add_argument("models", nargs="*", help="models to merge (default: every one of benchmark.models it has results of)")
    p.add_argument("--force", action="store_true", help="replace results of these models already here")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser("card", help="print the energy card of one benchmarked vocoder (Markdown, or --json)")
    p.add_argument("vocoder", help="a model of benchmark.models with results in results/benchmark/")
    p.add_argument("--root", default=argparse.SUPPRESS, help="project root (same as the global --root)")
    p.add_argument("--json", action="store_true", help="print the card as one JSON object")
    p.set_defaults(func=_cmd_card)

    p = sub.add_parser("notebook", help="execute notebooks/NAME.py into reports/NAME.ipynb and .html")
    p.add_argument("name", choices=STUDY_NOTEBOOKS)
    p.set_defaults(func=_cmd_notebook)

    p = sub.add_parser("site", help="site stage: write reports/index.html, the front page of every result")
    p.set_defaults(func=_cmd_site)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `audiofootprint` console script."""
    from audiofootprint.data import TableError
    from audiofootprint.params import StaleParamsError
    from audiofootprint.vocoders.zoo import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TableError, StaleParamsError, ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"audiofootprint {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as error:  # the machine refused: a full disk, a quota, a read-only or forbidden folder
        command = " ".join(shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
        print(f"audiofootprint {args.command}: error: {_os_error_message(error, command)}", file=sys.stderr)
        return 1


def _os_error_message(error: OSError, command: str) -> str:
    """One line for an error of the machine: the file, the cause in words, and what to do."""
    import errno

    again = f"then run `audiofootprint {command}` again"
    advice = {
        errno.ENOSPC: f"the disk is full: free space on the file system that holds it, {again}",
        errno.EDQUOT: f"the disk quota is used up: free space or raise the quota, {again}",
        errno.EROFS: f"the file system is read-only: make it writable or work in a writable copy, {again}",
        errno.EACCES: f"permission denied: give this user access to it, {again}",
        errno.EPERM: f"operation not permitted: give this user access to it, {again}",
    }.get(error.errno)
    cause = (error.strerror or str(error) or type(error).__name__).rstrip(".")
    cause = cause[:1].lower() + cause[1:]
    if error.filename is not None:
        where = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else f"{error.filename}"
        cause = f"{where}: {cause}"
    if advice:
        kept = " (an output it could not write is left as it was)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        return f"{cause}; {advice}{kept}"
    return cause


if __name__ == "__main__":
    sys.exit(main())
