"""Pareto optimality over any number of objectives, each minimised or maximised.

A point dominates another when it is at least as good on every objective and strictly
better on at least one. Identical points do not dominate each other: both stay on the front.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DIRECTIONS = ("min", "max")


def _oriented(frame: pd.DataFrame, objectives: dict[str, str]) -> np.ndarray:
    """The objective columns as floats, negated where maximised, so that smaller is better."""
    if not objectives:
        raise ValueError("at least one objective is needed")
    columns = []
    for column, direction in objectives.items():
        if direction not in DIRECTIONS:
            raise ValueError(f"objective {column!r}: direction must be 'min' or 'max', got {direction!r}")
        if column not in frame.columns:
            raise KeyError(f"objective column {column!r} not in the table (columns: {list(frame.columns)})")
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any():
            rows = list(frame.index[np.isnan(values)])
            raise ValueError(f"objective {column!r} is missing or not numeric in rows {rows}")
        columns.append(values if direction == "min" else -values)
    return np.column_stack(columns)


def dominated_by(frame: pd.DataFrame, objectives: dict[str, str]) -> list[list]:
    """For each row, the index labels of the rows that dominate it (empty: on the front)."""
    points = _oriented(frame, objectives)
    labels = list(frame.index)
    result = []
    for i, point in enumerate(points):
        no_worse = (points <= point).all(axis=1)
        better = (points < point).any(axis=1)
        result.append([labels[j] for j in np.flatnonzero(no_worse & better)])
    return result


def pareto_mask(frame: pd.DataFrame, objectives: dict[str, str]) -> pd.Series:
    """True for the rows on the Pareto front of ``objectives`` ({column: 'min' | 'max'})."""
    return pd.Series([not d for d in dominated_by(frame, objectives)], index=frame.index, name="pareto")


def front_survives_spread(frame: pd.DataFrame, objectives: dict[str, str],
                          bounds: dict[str, tuple[str, str]]) -> pd.Series:
    """Whether each row stays on the front when every point may sit anywhere in its interval.

    ``bounds`` maps an objective to the (low, high) columns of its interval. A row *surely*
    belongs to the front if no other row's best case dominates its worst case.
    """
    worst, best = frame.copy(), frame.copy()
    for column, direction in objectives.items():
        low, high = bounds.get(column, (column, column))
        worst[column] = frame[high] if direction == "min" else frame[low]
        best[column] = frame[low] if direction == "min" else frame[high]
    survives = []
    for label in frame.index:
        others = best.drop(index=label)
        candidate = worst.loc[[label]]
        combined = pd.concat([candidate, others])
        survives.append(not dominated_by(combined, objectives)[0])
    return pd.Series(survives, index=frame.index, name="surely_pareto")
