"""Load curated tables from data/ and validate them with pandera schemas.

A bad row stops the pipeline with a :class:`TableError` whose message names the file,
the CSV line, the row's id, the column and the rule it breaks.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa


class TableError(ValueError):
    """A curated table breaks its schema, or is no table; the message's first line names the first
    problem found (file, line, id, column), the lines below every other one."""


def _describe_failure(case: pd.Series, frame: pd.DataFrame, path: Path, id_column: str | None) -> str:
    index = case["index"]
    row_rule = case["schema_context"] == "DataFrameSchema"
    column = case["column"] if isinstance(case["column"], str) and not row_rule else None
    where = f"{path}"
    if index is not None and not pd.isna(index) and index in frame.index:
        where += f", line {int(index) + 2}"  # +1 for the header, +1 for 1-based lines
        if id_column and id_column in frame.columns:
            where += f" (id={frame.at[index, id_column]!r})"
    if column:
        where += f", column '{column}'"
    check = str(case["check"])
    value = case["failure_case"]
    if row_rule:
        return f"{where}: row {check}"
    if check == "field_uniqueness":
        return f"{where}: value {value!r} is repeated, fails {check} (each row needs its own)"
    return f"{where}: value {value!r} fails {check}"


def _see_readme(path: Path) -> str:
    readme = path.parent / "README.md"
    return f" (columns: {readme})" if readme.is_file() else ""


def validate_table(frame: pd.DataFrame, schema: type[pa.DataFrameModel], path: str | Path,
                   id_column: str | None = "id") -> pd.DataFrame:
    """Validate ``frame`` (read from ``path``) against ``schema``; return the coerced frame."""
    path = Path(path)
    expected = list(schema.to_schema().columns)
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected]
    if missing or unexpected:
        raise TableError(
            f"{path}: header does not match the table's columns"
            + (f"; missing column(s) {', '.join(repr(c) for c in missing)}" if missing else "")
            + (f"; unexpected column(s) {', '.join(repr(c) for c in unexpected)}" if unexpected else "")
            + f". Expected, in order: {','.join(expected)} (see the README beside the table)."
        )
    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        cases = error.failure_cases.copy()
        # A row rule (dataframe check) fails once per cell of the row: report it once per row.
        row_rule = cases["schema_context"] == "DataFrameSchema"
        cases.loc[row_rule, ["column", "failure_case"]] = None
        # A failed dtype coercion is reported twice (coerce and dtype); keep the first.
        cases = cases.drop_duplicates(subset=["check", "column", "index", "failure_case"])
        cases = cases[~(cases["check"].astype(str).str.startswith("dtype(")
                        & cases.duplicated(subset=["column", "index"], keep=False))]
        # A column that could not be coerced fails its value checks as a whole (no row): the coercion says it.
        uncoerced = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype("), "column"])
        cases = cases[~(cases["column"].isin(uncoerced) & cases["index"].isna())]
        lines = [_describe_failure(case, frame, path, id_column) for _, case in cases.iterrows()]
        lines = [line for line in dict.fromkeys(lines)]  # keep order, drop exact repeats
        more = f"; {len(lines) - 1} more problem(s):\n  " + "\n  ".join(lines[1:]) if len(lines) > 1 else ""
        raise TableError(lines[0] + _see_readme(path) + more) from None


def read_table(path: str | Path, schema: type[pa.DataFrameModel], id_column: str | None = "id") -> pd.DataFrame:
    """Read a curated CSV (empty cells stay missing) and validate it against ``schema``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (curated tables live in data/, see data/README.md).")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty: it needs its header line and one row per entry"
                         f"{_see_readme(path)}") from None
    except pd.errors.ParserError as error:
        raise TableError(f"{path} is not a valid CSV table: {str(error).strip()}; quote a cell that holds a comma"
                         f"{_see_readme(path)}") from None
    except UnicodeDecodeError as error:
        raise TableError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}): "
                         "save it as UTF-8 CSV") from None
    if frame.empty:
        raise TableError(f"{path} has a header but no rows: add the table's entries{_see_readme(path)}")
    return validate_table(frame, schema, path, id_column)
