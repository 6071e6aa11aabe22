"""Literature survey (thesis part 1): which metric families generative audio papers report.

The curated table is data/survey/papers.csv (columns documented in data/survey/README.md).
Each metric cell is 1 (reported), 0 (checked, not reported) or empty (could not tell).
Shares are computed over the papers whose cell is known, and the unknowns are counted.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from audiofootprint import atomic
from audiofootprint.data import TableError, read_table
from audiofootprint.paths import SURVEY_DIR

#: Metric families, in the order tables and figures show them, with readable labels.
METRIC_FAMILIES: dict[str, str] = {
    "human_rating": "Human ratings (MOS, MUSHRA, ABX)",
    "distribution_metric": "Distribution metrics (FAD, KL, IS)",
    "signal_metric": "Signal metrics (PESQ, STOI, MCD, SNR, spectral)",
    "likelihood": "Likelihood (NLL, bits per sample)",
    "param_count": "Parameter count",
    "flops": "FLOPs / MACs",
    "inference_speed": "Inference speed / real-time factor",
    "training_time": "Training time",
    "training_hardware": "Training hardware",
    "energy_co2": "Energy or CO2",
}
TASK_FAMILIES = [
    "neural_vocoder", "text_to_speech", "music_generation", "unconditional_audio",
    "neural_codec", "text_to_audio", "timbre_ddsp",
]
VENUES = [
    "ICASSP", "Interspeech", "ISMIR", "DAFx", "NeurIPS", "ICML", "ICLR", "TASLP", "SSW",
    "EUSIPCO", "SLT", "ASRU", "AAAI", "IJCAI", "ACM MM", "TMLR", "TPAMI", "TACL", "JSTSP", "JAES", "SPL", "ACL", "NAACL",
    "EMNLP", "arXiv",
]
CHECKED = ["full_text", "abstract", "official_repository", "not_verified"]
#: The copies of a paper a row was read in (``text_source``, ``;``-separated).
TEXT_SOURCES = [
    "arxiv_html", "ar5iv", "openreview", "will-rice/tts-papers", "official_repository",
    "project_page", "publisher", "other_copy", "abstract_page", "search_excerpt",
]
#: The one third-party conversion most full texts were read in: a single point of failure.
SINGLE_THIRD_PARTY_COPY = "will-rice/tts-papers"
#: A note that says the venue was not confirmed by a source (the venue must then read arXiv).
UNCONFIRMED_VENUE = r"(?i)venue[^.;]*?\b(?:from memory|unconfirmed|not confirmed|not verified)"

_metric = dict(isin=[0, 1], nullable=True)


class PaperSchema(pa.DataFrameModel):
    """One surveyed paper per row."""

    id: Series[str] = pa.Field(unique=True, str_matches=r"^[a-z0-9][a-z0-9_]*$")
    title: Series[str] = pa.Field(str_length={"min_value": 3})
    first_author: Series[str]
    year: Series[int]
    venue: Series[str] = pa.Field(isin=VENUES)
    arxiv_id: Series[str] = pa.Field(nullable=True, str_matches=r"^\d{4}\.\d{4,5}$")
    doi: Series[str] = pa.Field(nullable=True, str_matches=r"^10\.\d{4,9}/\S+$")
    task_family: Series[str] = pa.Field(isin=TASK_FAMILIES)
    human_rating: Series[pd.Int64Dtype] = pa.Field(**_metric)
    distribution_metric: Series[pd.Int64Dtype] = pa.Field(**_metric)
    signal_metric: Series[pd.Int64Dtype] = pa.Field(**_metric)
    likelihood: Series[pd.Int64Dtype] = pa.Field(**_metric)
    param_count: Series[pd.Int64Dtype] = pa.Field(**_metric)
    flops: Series[pd.Int64Dtype] = pa.Field(**_metric)
    inference_speed: Series[pd.Int64Dtype] = pa.Field(**_metric)
    training_time: Series[pd.Int64Dtype] = pa.Field(**_metric)
    training_hardware: Series[pd.Int64Dtype] = pa.Field(**_metric)
    energy_co2: Series[pd.Int64Dtype] = pa.Field(**_metric)
    evidence: Series[str] = pa.Field(nullable=True)
    checked: Series[str] = pa.Field(isin=CHECKED)
    notes: Series[str] = pa.Field(nullable=True)
    text_source: Series[str] = pa.Field(nullable=True)

    @pa.check("text_source", error=f"names a copy outside {TEXT_SOURCES}")
    def known_text_sources(cls, column: Series[str]) -> Series[bool]:
        return column.isna() | column.map(
            lambda value: isinstance(value, str) and set(value.split(";")) <= set(TEXT_SOURCES))

    @pa.dataframe_check(error="needs an arxiv_id or a doi")
    def has_identifier(cls, frame: pd.DataFrame) -> Series[bool]:
        return frame["arxiv_id"].notna() | frame["doi"].notna()

    @pa.dataframe_check(error="has an empty metric cell but no note saying why")
    def unknown_cells_explained(cls, frame: pd.DataFrame) -> Series[bool]:
        return ~frame[list(METRIC_FAMILIES)].isna().any(axis=1) | frame["notes"].notna()

    @pa.dataframe_check(error="reports a metric (a 1) but gives no evidence of where")
    def reported_cells_located(cls, frame: pd.DataFrame) -> Series[bool]:
        return ~(frame[list(METRIC_FAMILIES)] == 1).any(axis=1) | frame["evidence"].notna()

    @pa.dataframe_check(error="is checked against a full text or repository but names no text_source")
    def full_text_has_source(cls, frame: pd.DataFrame) -> Series[bool]:
        read = frame["checked"].isin(["full_text", "official_repository"])
        return ~read | frame["text_source"].notna()

    @pa.dataframe_check(error="says its venue is unconfirmed (from memory) but names a venue other than arXiv")
    def unconfirmed_venue_is_arxiv(cls, frame: pd.DataFrame) -> Series[bool]:
        unconfirmed = frame["notes"].fillna("").str.contains(UNCONFIRMED_VENUE, regex=True)
        return ~unconfirmed | (frame["venue"] == "arXiv")

    class Config:
        strict = True
        coerce = True


def load_papers(path: str | Path, first_year: int | None = None, last_year: int | None = None) -> pd.DataFrame:
    """Read and validate the survey table; optionally require years within the survey's span."""
    papers = read_table(path, PaperSchema)
    if first_year is not None and last_year is not None:
        outside = papers[(papers["year"] < first_year) | (papers["year"] > last_year)]
        if len(outside):
            lines = [f"{path}, line {i + 2} (id={row.id!r}): year {row.year} is outside "
                     f"{first_year}-{last_year} (survey.first_year/last_year in conf/survey)"
                     for i, row in outside.iterrows()]
            raise TableError("\n".join(lines))
    return papers


def family_shares(papers: pd.DataFrame, families: list[str] | None = None) -> pd.DataFrame:
    """Per metric family: papers reporting it, papers checked, unknown cells, and the share.

    ``share`` = reporting / known, where known excludes empty (unknown) cells.
    """
    families = families or list(METRIC_FAMILIES)
    rows = []
    for family in families:
        column = papers[family]
        known = int(column.notna().sum())
        reporting = int((column == 1).sum())
        rows.append({
            "family": family,
            "label": METRIC_FAMILIES.get(family, family),
            "reporting": reporting,
            "known": known,
            "unknown": int(column.isna().sum()),
            "share": reporting / known if known else float("nan"),
        })
    return pd.DataFrame(rows)


def reports_any(papers: pd.DataFrame, families: list[str]) -> pd.Series:
    """Per paper, whether it reports any of ``families``: True, False, or <NA> if it cannot be told.

    A paper reports the group if any cell is 1; it does not if all cells are 0; otherwise unknown.
    """
    cells = papers[families].fillna(-1)  # -1 marks an unknown cell
    any_one = (cells == 1).any(axis=1)
    all_zero = (cells == 0).all(axis=1)
    result = pd.Series(pd.NA, index=papers.index, dtype="boolean")
    result[any_one] = True
    result[all_zero & ~any_one] = False
    return result


def group_shares(papers: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Share of papers reporting at least one family of each group (quality, cost, energy)."""
    rows = []
    for group, families in groups.items():
        flags = reports_any(papers, families)
        known = int(flags.notna().sum())
        reporting = int(flags.fillna(False).sum())
        rows.append({"group": group, "reporting": reporting, "known": known,
                     "unknown": int(flags.isna().sum()),
                     "share": reporting / known if known else float("nan")})
    return pd.DataFrame(rows)


def period_label(year: int, periods: list[list[int]]) -> str:
    """The label ``"first-last"`` of the period that holds ``year``."""
    for first, last in periods:
        if first <= year <= last:
            return f"{first}-{last}"
    raise ValueError(f"year {year} is in no period of {periods}: extend survey.periods in conf/survey")


def shares_by(papers: pd.DataFrame, key: pd.Series, families: list[str] | None = None) -> pd.DataFrame:
    """Tidy table of family shares within each value of ``key`` (a period, a task family)."""
    frames = []
    for value, subset in papers.groupby(key, sort=True):
        shares = family_shares(subset, families)
        shares.insert(0, "n_papers", len(subset))
        shares.insert(0, key.name, value)
        frames.append(shares)
    return pd.concat(frames, ignore_index=True)


def quality_cost_crosstab(papers: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Counts of papers by whether they report quality (rows) and computational cost (columns)."""
    quality = reports_any(papers, groups["quality"]).map({True: "reports quality", False: "no quality"})
    cost = reports_any(papers, groups["computational_cost"]).map({True: "reports cost", False: "no cost"})
    return pd.crosstab(quality.fillna("unknown").rename("quality"), cost.fillna("unknown").rename("cost"))


def energy_papers(papers: pd.DataFrame) -> pd.DataFrame:
    """The papers that report energy or CO2, oldest first."""
    cols = ["id", "title", "first_author", "year", "venue", "arxiv_id", "doi", "evidence"]
    return papers.loc[papers["energy_co2"] == 1, cols].sort_values(["year", "id"]).reset_index(drop=True)


def single_third_party_copy(papers: pd.DataFrame) -> pd.Series:
    """Per paper, whether its full text was read only in the one third-party conversion."""
    return (papers["checked"] == "full_text") & (papers["text_source"] == SINGLE_THIRD_PARTY_COPY)


def headline(papers: pd.DataFrame, groups: dict[str, list[str]]) -> dict:
    """The survey's headline numbers (DVC metrics): counts and shares, rounded to 4 places."""
    shares = family_shares(papers)
    grouped = group_shares(papers, groups)
    return {
        "n_papers": int(len(papers)),
        "n_checked_full_text": int((papers["checked"] == "full_text").sum()),
        "n_full_text_single_third_party_copy": int(single_third_party_copy(papers).sum()),
        "n_reporting_energy": int((papers["energy_co2"] == 1).sum()),
        "share_by_group": {r.group: round(float(r.share), 4) for r in grouped.itertuples()},
        "share_by_family": {r.family: round(float(r.share), 4) for r in shares.itertuples()},
    }


def write_results(root: str | Path, params: dict) -> dict:
    """Run the survey stage: validate the table and write every table and the metrics.

    Outputs go under ``results/survey/`` (tables/*.csv and metrics.json); returns the metrics.
    """
    root = Path(root)
    cfg = params["survey"]
    papers = load_papers(root / cfg["papers"], cfg["first_year"], cfg["last_year"])
    groups = cfg["groups"]
    unknown = set(sum(groups.values(), [])) - set(METRIC_FAMILIES)
    if unknown:
        raise KeyError(f"survey.groups in conf/survey names unknown metric families {sorted(unknown)}; "
                       f"known: {list(METRIC_FAMILIES)}")
    out = root / SURVEY_DIR
    period = papers["year"].map(lambda y: period_label(y, cfg["periods"])).rename("period")
    task = papers["task_family"].rename("task_family")
    atomic.write_csv(out / "tables" / "family_shares.csv", family_shares(papers))
    atomic.write_csv(out / "tables" / "group_shares.csv", group_shares(papers, groups))
    atomic.write_csv(out / "tables" / "shares_by_period.csv", shares_by(papers, period))
    atomic.write_csv(out / "tables" / "shares_by_task.csv", shares_by(papers, task))
    atomic.write_csv(out / "tables" / "quality_cost.csv",
                     quality_cost_crosstab(papers, groups).reset_index())
    atomic.write_csv(out / "tables" / "energy_papers.csv", energy_papers(papers))
    metrics = headline(papers, groups)
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
