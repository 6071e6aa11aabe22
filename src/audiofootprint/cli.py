"""The `audiofootprint` command line: one sub-command per stage or tool."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Notebooks the `notebook` sub-command renders, by name (notebooks/NAME.py -> reports/NAME.*).
NOTEBOOKS = ("survey",)


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
