"""The `audiofootprint` command line: one sub-command per stage or tool."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Notebooks the `notebook` sub-command renders, by name (notebooks/NAME.py -> reports/NAME.*).
NOTEBOOKS = ("survey", "carbon")


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


def _cmd_notebook(args: argparse.Namespace) -> int:
    from audiofootprint import params, report

    params.check_params(args.root)
    root = Path(args.root).resolve()
    source = root / "notebooks" / f"{args.name}.py"
    executed = report.render_notebook(
        source, root / "reports" / f"{args.name}.ipynb", root / "reports" / f"{args.name}.html",
        parameters={"root": str(root)}, cwd=root,
    )
    print(f"rendered {executed.relative_to(root)} and reports/{args.name}.html")
    return 0


def build_parser() -> argparse.ArgumentParser:
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

    p = sub.add_parser("notebook", help="execute notebooks/NAME.py into reports/NAME.ipynb and .html")
    p.add_argument("name", choices=NOTEBOOKS)
    p.set_defaults(func=_cmd_notebook)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `audiofootprint` console script."""
    from audiofootprint.data import TableError
    from audiofootprint.params import StaleParamsError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TableError, StaleParamsError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"audiofootprint {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
