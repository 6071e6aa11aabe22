"""Pareto fronts on hand-worked cases: ties, duplicates, three objectives, min and max."""
from __future__ import annotations

import pandas as pd
import pytest

from audiofootprint.pareto import dominated_by, front_survives_spread, pareto_mask


def frame(rows, columns=("energy", "quality")):
    return pd.DataFrame(rows, columns=list(columns), index=[f"m{i}" for i in range(len(rows))])


def test_two_objectives_min_energy_max_quality():
    # m0 cheap & poor, m1 dominated by m2 (costlier and worse), m2 and m3 trade off.
    table = frame([(1, 2.0), (5, 3.0), (3, 3.5), (8, 4.5)])
    assert pareto_mask(table, {"energy": "min", "quality": "max"}).tolist() == [True, False, True, True]
    assert dominated_by(table, {"energy": "min", "quality": "max"})[1] == ["m2"]


def test_tie_on_one_objective_is_broken_by_the_other():
    table = frame([(2, 3.0), (2, 4.0)])  # same energy, m1 better quality -> m0 dominated
    assert pareto_mask(table, {"energy": "min", "quality": "max"}).tolist() == [False, True]


def test_duplicates_do_not_dominate_each_other():
    table = frame([(2, 4.0), (2, 4.0), (3, 3.0)])
    assert pareto_mask(table, {"energy": "min", "quality": "max"}).tolist() == [True, True, False]
    assert dominated_by(table, {"energy": "min", "quality": "max"})[2] == ["m0", "m1"]


def test_three_objectives():
    table = frame([(1, 1, 1), (2, 2, 0), (2, 2, 2), (1, 1, 1)], columns=("a", "b", "c"))
    # all minimised: m2 is dominated by m0/m3 (and by nobody else); m1 wins on c
    assert pareto_mask(table, {"a": "min", "b": "min", "c": "min"}).tolist() == [True, True, False, True]
    # maximise c instead: m2 now beats m1 on every axis? (2,2,2) vs (2,2,0): c larger -> m1 dominated
    assert pareto_mask(table, {"a": "min", "b": "min", "c": "max"}).tolist() == [True, False, True, True]


def test_direction_flips_the_front():
    table = frame([(1, 1.0), (2, 2.0)])
    assert pareto_mask(table, {"energy": "min", "quality": "min"}).tolist() == [True, False]
    assert pareto_mask(table, {"energy": "max", "quality": "max"}).tolist() == [False, True]


def test_bad_input_is_named():
    table = frame([(1, None), (2, 2.0)])
    with pytest.raises(ValueError, match="'quality' is missing .* rows \\['m0'\\]"):
        pareto_mask(table, {"energy": "min", "quality": "max"})
    with pytest.raises(KeyError, match="speed"):
        pareto_mask(frame([(1, 1)]), {"speed": "min"})
    with pytest.raises(ValueError, match="'min' or 'max'"):
        pareto_mask(frame([(1, 1)]), {"energy": "lowest"})


def test_front_under_uncertainty():
    # m0 (energy 1..3, quality 3.0) and m1 (energy 2..2.5, quality 3.2): m1's best case
    # (2, 3.2) dominates m0's worst case (3, 3.0), so m0 is not surely on the front; m1 is.
    table = pd.DataFrame({"energy": [2.0, 2.2], "lo": [1.0, 2.0], "hi": [3.0, 2.5], "quality": [3.0, 3.2]},
                         index=["m0", "m1"])
    survives = front_survives_spread(table, {"energy": "min", "quality": "max"}, {"energy": ("lo", "hi")})
    assert survives.tolist() == [False, True]
