"""How much the compendium survives: the reliability suite's figures, per part and kind.

Runs every test marked ``reliability(part, kind)`` (tests/reliability_support.py says what the
marker means) through pytest and prints, for each part (kill, bad_input, no_network, full_disk,
concurrent, merge, same_bytes) and each kind within it, how many cases were tried, how many the
project survived or handled, how many it did not, and how many could not be tried here (skipped,
with the reason). A case is tried when its test ran; survived/handled when it passed.

    .venv/bin/python benchmarks/reliability.py            # the default set (no slow cases)
    .venv/bin/python benchmarks/reliability.py --slow     # every case, slow ones included
    .venv/bin/python benchmarks/reliability.py --json out.json -- tests/test_jobs.py   # more pytest arguments
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a passed case means, by part (the rest: "handled").
VERB = {"kill": "survived", "same_bytes": "identical"}


class Tally:
    """A pytest plugin that counts the outcome of each reliability case by its marker's (part, kind)."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[str, str]] = {}
        self.outcomes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.skips: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.failures: dict[tuple[str, str], list[str]] = defaultdict(list)

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            mark = item.get_closest_marker("reliability")
            if mark is not None:
                part, kind = (list(mark.args) + [None, None])[:2]
                self.cases[item.nodeid] = (str(part), str(kind or "-"))

    def pytest_runtest_logreport(self, report) -> None:
        key = self.cases.get(report.nodeid)
        if key is None:
            return
        if report.skipped and report.when in ("setup", "call"):
            self.outcomes[key]["skipped"] += 1
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skips[key].add(reason.removeprefix("Skipped: "))
        elif report.failed:
            if report.when in ("setup", "call"):  # an error of a fixture counts as not handled too
                self.outcomes[key]["failed"] += 1
                self.failures[key].append(report.nodeid)
        elif report.when == "call":
            self.outcomes[key]["passed"] += 1

    def rows(self) -> list[dict]:
        """One row per (part, kind): tried, passed, failed, skipped."""
        out = []
        for (part, kind), counts in sorted(self.outcomes.items()):
            tried = counts["passed"] + counts["failed"]
            out.append({"part": part, "kind": kind, "tried": tried, VERB.get(part, "handled"): counts["passed"],
                        "passed": counts["passed"], "failed": counts["failed"], "skipped": counts["skipped"],
                        "skip_reasons": sorted(self.skips[(part, kind)]), "failures": self.failures[(part, kind)]})
        return out


def print_table(rows: list[dict]) -> None:
    """The figures: one line per kind, a total per part, then what was skipped and what failed."""
    print(f"{'part':<12}{'kind':<18}{'tried':>6}{'ok':>6}{'failed':>8}{'skipped':>9}  ok means")
    by_part: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_part[row["part"]].append(row)
    for part, kinds in by_part.items():
        for row in kinds:
            print(f"{part:<12}{row['kind']:<18}{row['tried']:>6}{row['passed']:>6}{row['failed']:>8}{row['skipped']:>9}"
                  f"  {VERB.get(part, 'handled')}")
        total = {k: sum(r[k] for r in kinds) for k in ("tried", "passed", "failed", "skipped")}
        print(f"{part:<12}{'(all)':<18}{total['tried']:>6}{total['passed']:>6}{total['failed']:>8}"
              f"{total['skipped']:>9}")
    for row in rows:
        for reason in row["skip_reasons"]:
            print(f"skipped {row['part']}/{row['kind']}: {reason}")
        for nodeid in row["failures"]:
            print(f"FAILED {row['part']}/{row['kind']}: {nodeid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", action="store_true", help="include the cases marked slow")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    marker = "reliability" if args.slow else "reliability and not slow"
    tally = Tally()
    named_paths = any(Path(arg.split("::")[0]).exists() for arg in args.pytest_args)
    where = [] if named_paths else [str(ROOT / "tests")]
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-m", marker, "--rootdir", str(ROOT), *where,
                        *args.pytest_args], plugins=[tally])
    rows = tally.rows()
    if not rows:
        print("no reliability case ran", file=sys.stderr)
        return 1
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
