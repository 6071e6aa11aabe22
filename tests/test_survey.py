"""Survey computations against hand-computed expectations, and schema errors on bad rows."""
from __future__ import annotations

import pandas as pd
import pytest

from audiofootprint.data import TableError
from audiofootprint.survey import (
    energy_papers, family_shares, group_shares, headline, load_papers, period_label,
    quality_cost_crosstab, reports_any, shares_by, single_third_party_copy,
)
from conftest import survey_row, write_survey

GROUPS = {
    "quality": ["human_rating", "distribution_metric", "signal_metric", "likelihood"],
    "computational_cost": ["param_count", "flops", "inference_speed", "training_time", "training_hardware"],
    "energy": ["energy_co2"],
}

#            families: hum dist sig lik par flop speed ttime thw energy
FIVE = [
    survey_row("a", 2017, metrics="1000100000"),                     # MOS + params
    survey_row("b", 2019, metrics="1010011110"),                     # MOS, PESQ, FLOPs, speed, time, hw
    survey_row("c", 2021, task="music_generation", metrics="0100000001"),  # FAD + energy
    survey_row("d", 2023, metrics="1000000000"),                     # MOS only
    survey_row("e", 2024, metrics=" 0000 0000", notes="human test section not found"),
]


@pytest.fixture
def papers(tmp_path):
    return load_papers(write_survey(tmp_path / "papers.csv", FIVE))


def test_family_shares_by_hand(papers):
    shares = family_shares(papers).set_index("family")
    # human_rating: a, b, d report; c does not; e unknown -> 3 of 4 known
    assert shares.loc["human_rating", ["reporting", "known", "unknown"]].tolist() == [3, 4, 1]
    assert shares.loc["human_rating", "share"] == pytest.approx(0.75)
    # param_count: a only, of 5 known
    assert shares.loc["param_count", "share"] == pytest.approx(1 / 5)
    # flops: b only; e's flops cell is empty -> 1 of 4
    assert shares.loc["flops", ["reporting", "known"]].tolist() == [1, 4]
    assert shares.loc["energy_co2", "share"] == pytest.approx(1 / 5)
    assert shares.loc["likelihood", "share"] == 0


def test_reports_any_three_states(papers):
    quality = reports_any(papers, GROUPS["quality"])
    # e: human empty, others 0 -> cannot be told
    assert quality.tolist()[:4] == [True, True, True, True]
    assert pd.isna(quality.iloc[4])
    cost = reports_any(papers, GROUPS["computational_cost"])
    # c and d report no cost figure; e has flops empty and the rest 0 -> unknown
    assert cost.tolist()[:4] == [True, True, False, False]
    assert pd.isna(cost.iloc[4])


def test_group_shares_by_hand(papers):
    groups = group_shares(papers, GROUPS).set_index("group")
    assert groups.loc["quality", ["reporting", "known", "unknown"]].tolist() == [4, 4, 1]
    assert groups.loc["computational_cost", "share"] == pytest.approx(2 / 4)
    assert groups.loc["energy", "share"] == pytest.approx(1 / 5)


def test_shares_by_period(papers):
    periods = [[2016, 2018], [2019, 2020], [2021, 2022], [2023, 2025]]
    key = papers["year"].map(lambda y: period_label(y, periods)).rename("period")
    table = shares_by(papers, key)
    late = table[(table["period"] == "2023-2025") & (table["family"] == "human_rating")].iloc[0]
    # d reports MOS, e unknown -> 1 of 1 known, 2 papers in the period
    assert (late["n_papers"], late["reporting"], late["known"]) == (2, 1, 1)
    with pytest.raises(ValueError, match="2030"):
        period_label(2030, periods)


def test_crosstab_energy_list_and_headline(papers):
    table = quality_cost_crosstab(papers, GROUPS)
    assert table.loc["reports quality", "reports cost"] == 2
    assert table.loc["reports quality", "no cost"] == 2
    assert table.loc["unknown", "unknown"] == 1
    assert energy_papers(papers)["id"].tolist() == ["c"]
    numbers = headline(papers, GROUPS)
    assert numbers["n_papers"] == 5
    assert numbers["n_reporting_energy"] == 1
    assert numbers["share_by_group"]["computational_cost"] == 0.5
    assert numbers["share_by_family"]["param_count"] == 0.2


@pytest.mark.parametrize("bad, column, fragment", [
    ({"venue": "Nature"}, "venue", "isin"),
    ({"year": "twenty"}, "year", "int64"),
    ({"task_family": "speech"}, "task_family", "isin"),
    ({"human_rating": "2"}, "human_rating", "isin"),
    ({"checked": "maybe"}, "checked", "isin"),
    ({"checked": ""}, "checked", "not_nullable"),
    ({"text_source": "arxiv_html;my_memory"}, "text_source", "names a copy outside"),
    ({"arxiv_id": "arXiv:2001.1"}, "arxiv_id", "str_matches"),
])
def test_bad_cell_names_file_line_and_column(tmp_path, bad, column, fragment):
    rows = [survey_row("ok"), survey_row("broken", **bad)]
    path = write_survey(tmp_path / "papers.csv", rows)
    with pytest.raises(TableError) as info:
        load_papers(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3 (id='broken')" in message
    assert f"column '{column}'" in message
    assert fragment in message


def test_row_level_rules(tmp_path):
    rows = [
        survey_row("dup"), survey_row("dup"),
        survey_row("no_id", arxiv_id=""),
        survey_row("unexplained", metrics="1 00000000"),
        survey_row("no_evidence", evidence=""),
    ]
    with pytest.raises(TableError) as info:
        load_papers(write_survey(tmp_path / "papers.csv", rows))
    message = str(info.value)
    assert "column 'id'" in message and "field_uniqueness" in message
    assert "line 4 (id='no_id')" in message and "needs an arxiv_id or a doi" in message
    assert "line 5 (id='unexplained')" in message and "no note saying why" in message
    assert "line 6 (id='no_evidence')" in message and "no evidence" in message


def test_unconfirmed_venue_must_read_arxiv_and_full_text_names_its_copy(tmp_path):
    rows = [
        survey_row("memory", notes="The venue (DAFx 2022) comes from memory."),
        survey_row("caveat", notes="Venue ICASSP 2025, unconfirmed."),
        survey_row("honest", venue="arXiv", notes="Venue: arXiv; DAFx 2022 is claimed but unconfirmed."),
        survey_row("unrelated", notes="Venue confirmed on the proceedings page. Training time not verified."),
        survey_row("no_copy", text_source=""),
        survey_row("abstract_only", checked="abstract", text_source=""),
    ]
    with pytest.raises(TableError) as info:
        load_papers(write_survey(tmp_path / "papers.csv", rows))
    message = str(info.value)
    assert "line 2 (id='memory')" in message and "line 3 (id='caveat')" in message
    assert message.count("names a venue other than arXiv") == 2
    assert "line 6 (id='no_copy')" in message and "names no text_source" in message
    for fine in ("honest", "unrelated", "abstract_only"):
        assert f"id='{fine}'" not in message


def test_single_third_party_copy_is_counted(tmp_path):
    rows = [
        survey_row("only_conversion", text_source="will-rice/tts-papers"),
        survey_row("two_copies", text_source="will-rice/tts-papers;arxiv_html"),
        survey_row("abstract", checked="abstract", text_source="will-rice/tts-papers"),
    ]
    papers = load_papers(write_survey(tmp_path / "papers.csv", rows))
    assert single_third_party_copy(papers).tolist() == [True, False, False]
    assert headline(papers, GROUPS)["n_full_text_single_third_party_copy"] == 1


def test_missing_column_and_year_outside_span(tmp_path):
    path = tmp_path / "papers.csv"
    write_survey(path, [survey_row("a")])
    frame = pd.read_csv(path).drop(columns=["flops"])
    frame.to_csv(path, index=False)
    with pytest.raises(TableError, match=r"missing column\(s\) 'flops'"):
        load_papers(path)
    write_survey(path, [survey_row("old", year=2012)])
    with pytest.raises(TableError, match=r"line 2 \(id='old'\): year 2012 is outside 2016-2025"):
        load_papers(path, 2016, 2025)
