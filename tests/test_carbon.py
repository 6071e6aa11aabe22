"""The training-carbon estimator: arithmetic, published calculations, command line, schemas."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from audiofootprint import carbon, cli
from audiofootprint.data import TableError
from conftest import ROOT


def test_formula_by_hand():
    # 8 devices x 300 W x 10 h x 0.5 x PUE 1.5 / 1000 = 18 kWh; x 400 g/kWh = 7.2 kg
    result = carbon.estimate(hours=10, power_w=300, count=8, utilization=0.5, pue=1.5, intensity_g_per_kwh=400)
    assert result.energy_kwh == pytest.approx(18.0)
    assert result.co2e_kg == pytest.approx(7.2)
    assert result.as_dict()["pue"] == 1.5


@pytest.mark.parametrize("kwargs, fragment", [
    ({"hours": -1}, "hours"), ({"utilization": 0}, "utilization"), ({"utilization": 1.2}, "utilization"),
    ({"pue": 0.9}, "pue"), ({"power_w": float("nan")}, "power_w"),
])
def test_bad_assumptions_are_refused(kwargs, fragment):
    base = dict(hours=1, power_w=100, count=1, utilization=1.0, pue=1.0, intensity_g_per_kwh=100)
    with pytest.raises(ValueError, match=fragment):
        carbon.estimate(**(base | kwargs))


def _within(value, stated, rel=0.01):
    """Within 1%, or within the half unit the source rounded its printed whole number to."""
    return abs(value - stated) <= max(rel * abs(stated), 0.5)


@pytest.fixture(scope="module")
def references():
    return carbon.load_reference_calculations(ROOT / "data/carbon/reference_calculations.csv").set_index("case")


@pytest.mark.parametrize("case", [
    "strubell2019_transformer_base", "strubell2019_transformer_big", "strubell2019_elmo",
    "strubell2019_bert_base_gpu", "strubell2019_nas",
])
def test_reproduces_strubell_2019_table_3(references, case):
    # Strubell et al. 2019 (arXiv:1906.02243) Eq. 1-2: p_t = 1.58 t p / 1000, CO2e = 0.954 lbs/kWh p_t,
    # with p the whole machine's average draw; rows as stated in Table 3.
    row = references.loc[case]
    result = carbon.estimate(hours=row.hours, power_w=row.power_w, count=1, pue=row.pue,
                             intensity_g_per_kwh=row.intensity_g_per_kwh)
    assert _within(result.energy_kwh, row.energy_kwh), (result.energy_kwh, row.energy_kwh)
    # Table 3 prints CO2e in whole lbs computed from unrounded kWh: compare in lbs.
    lbs = result.co2e_kg / 0.45359237
    stated_lbs = row.co2e_kg / 0.45359237
    assert abs(lbs - stated_lbs) <= max(0.01 * stated_lbs, 0.5 + 1e-6 * stated_lbs)


@pytest.mark.parametrize("case", [
    "patterson2021_transformer_big_p100_us_average", "patterson2021_transformer_big_p100_google_iowa",
    "patterson2021_evolved_transformer_p100_google_iowa", "patterson2021_gpt3", "patterson2021_t5",
    "patterson2021_meena", "patterson2021_switch_transformer",
])
def test_reproduces_patterson_2021(references, case):
    # Patterson et al. 2021 (arXiv:2104.10350) Tables 1 and 4: chips x average W x hours x PUE, x gCO2e/kWh.
    row = references.loc[case]
    result = carbon.estimate(hours=row.hours, power_w=row.power_w, count=row["count"], pue=row.pue,
                             intensity_g_per_kwh=row.intensity_g_per_kwh)
    assert result.energy_kwh == pytest.approx(row.energy_kwh, rel=0.01)
    assert result.co2e_kg == pytest.approx(row.co2e_kg, rel=0.01)


def test_reproduces_bloom_dynamic_energy(references):
    # BLOOM (arXiv:2211.02001): 1,082,990 GPU-hours x 400 W = 433,196 kWh; x 57 g/kWh = 24.69 t.
    row = references.loc["bloom_176b_final_training_dynamic"]
    result = carbon.estimate(hours=row.hours, power_w=row.power_w, count=1, intensity_g_per_kwh=row.intensity_g_per_kwh)
    assert result.energy_kwh == pytest.approx(row.energy_kwh, rel=0.01)
    assert result.co2e_kg == pytest.approx(row.co2e_kg, rel=0.01)


def test_llama2_model_card_is_linear_in_gpu_hours(references):
    # The Llama 2 card states GPU-hours, 400 W per GPU and tCO2eq per model, not the intensity:
    # one intensity, implied by the 70B row, must reproduce the 7B and 13B rows.
    big = references.loc["llama2_70b"]
    implied = big.co2e_kg * 1000 / (big.hours * big.power_w / 1000)
    for case in ("llama2_7b", "llama2_13b"):
        row = references.loc[case]
        result = carbon.estimate(hours=row.hours, power_w=row.power_w, intensity_g_per_kwh=implied)
        assert result.co2e_kg == pytest.approx(row.co2e_kg, rel=0.01)


def test_device_hours_reported_or_derived():
    base = {"accelerator_count": 4.0, "device_hours": None, "training_hours": None, "training_steps": None,
            "seconds_per_step": None}
    assert carbon.device_hours(pd.Series(base | {"device_hours": 100.0})) == (100.0, "device-hours as reported")
    assert carbon.device_hours(pd.Series(base | {"training_hours": 10.0}))[0] == 40.0
    hours, how = carbon.device_hours(pd.Series(base | {"training_steps": 36000.0, "seconds_per_step": 0.5}))
    assert hours == pytest.approx(4 * 5.0) and "seconds per step" in how
    assert carbon.device_hours(pd.Series(base))[0] is None


def test_intensity_comes_from_codecarbon():
    from codecarbon.input import DataSource

    mix = DataSource().get_global_energy_mix_data()
    assert carbon.intensity_for("fra")[0] == mix["FRA"]["carbon_intensity"]
    assert carbon.intensity_for("world")[0] == 475.0
    with pytest.raises(carbon.UnknownNameError, match="FRA"):
        carbon.intensity_for("FRANCE")


P1, P2 = "arXiv:1111.11111", "arXiv:2222.22222"


def mos_table(rows, condition=None):
    """A published-MOS table by hand from (model, mos, test) rows; the source is the test's paper."""
    frame = pd.DataFrame(rows, columns=["model", "mos", "test"])
    frame["source"] = frame["test"].str.split(" ").str[0]
    frame["dataset"] = "LJSpeech"
    frame["test_condition"] = condition or carbon.COPY_SYNTHESIS
    return frame


def test_relative_mos_by_hand():
    # Paper P1 ran two listening tests whose recordings scored 4.5 and 4.8: B's 3.6 in Table 2 is
    # 1.2 below its own test's recordings (not 0.9 below Table 1's); A: 4.0 - 4.5 and 4.1 - 4.2.
    mos = mos_table([
        ("Ground Truth", 4.5, f"{P1} Table 1"), ("A", 4.0, f"{P1} Table 1"), ("B", 3.0, f"{P1} Table 1"),
        ("Ground Truth", 4.8, f"{P1} Table 2"), ("B", 3.6, f"{P1} Table 2"),
        ("Ground Truth", 4.2, f"{P2} Table 1"), ("A", 4.1, f"{P2} Table 1"),
    ])
    table = carbon.relative_mos(mos, {"A": "a", "B": "b"}).set_index("model")
    assert table.loc["A", "mos_gap"] == pytest.approx((-0.5 - 0.1) / 2)
    assert table.loc["A", "n_tests"] == 2 and table.loc["A", "tests"] == f"{P1} Table 1;{P2} Table 1"
    assert table.loc["B", "n_tests"] == 2 and table.loc["B", "mos_gap"] == pytest.approx((-1.5 - 1.2) / 2)
    assert table.loc["B", "gap_min"] == pytest.approx(-1.5) and table.loc["B", "gap_max"] == pytest.approx(-1.2)
    assert table.loc["B", "tests"] == f"{P1} Table 1;{P1} Table 2"
    with pytest.raises(KeyError, match="'C'"):
        carbon.relative_mos(mos, {"C": "c"})


def test_a_rating_whose_test_has_no_ground_truth_is_not_linked():
    # P1's Table 1 test rated the recordings; its later fast-sampling test (same paper) did not.
    mos = mos_table([
        ("Ground Truth", 4.5, f"{P1} Table 1"), ("A", 4.0, f"{P1} Table 1"),
        ("A", 4.4, f"{P1} Table 1 fast-sampling"), ("C", 4.3, f"{P1} Table 1 fast-sampling"),
    ])
    table = carbon.relative_mos(mos, {"A": "a"}).set_index("model")
    assert table.loc["A", "n_tests"] == 1 and table.loc["A", "mos_gap"] == pytest.approx(-0.5)
    assert table.loc["A", "tests"] == f"{P1} Table 1"
    assert set(carbon.linkable_mos(mos)["model"]) == {"A"}
    with pytest.raises(KeyError, match="'C'"):
        carbon.relative_mos(mos, {"C": "c"})
    # a test that is not LJSpeech copy-synthesis is never linked, recordings or not
    tts = mos_table([("Ground Truth", 4.2, f"{P2} Table 4"), ("D", 4.0, f"{P2} Table 4")], condition="TTS")
    with pytest.raises(KeyError, match="'D'"):
        carbon.relative_mos(pd.concat([mos, tts], ignore_index=True), {"D": "d"})


def test_published_mos_table_keeps_tests_apart(root):
    mos = carbon.load_published_mos(root / "data/published/mos_ljspeech.csv")
    assert mos["test"].notna().all() and not mos.duplicated(["test", "model"]).any()
    hifigan = mos[mos["source"] == "arXiv:2010.05646"].set_index("model")["test"]
    assert hifigan["HiFi-GAN V2"] == "arXiv:2010.05646 Table 1" != hifigan["MelGAN"]
    v2 = carbon.relative_mos(mos, {"HiFi-GAN V2": "hifigan_v2"}).iloc[0]
    assert "arXiv:2010.05646" not in v2["tests"]  # its own test's Ground Truth is not in the table
    with pytest.raises(KeyError):  # rated after submission, in a test without recordings
        carbon.relative_mos(mos, {"DiffWave BASE (Fast, 6 steps)": "diffwave_6"})
    univnet = mos[mos["source"] == "arXiv:2106.07889"]
    assert len(univnet) and not (univnet["dataset"] == "LJSpeech").any()
    assert not univnet["test_condition"].eq(carbon.COPY_SYNTHESIS).any()


@pytest.fixture
def mos_copy(tmp_path, root):
    path = tmp_path / "mos_ljspeech.csv"
    shutil.copy(root / "data/published/mos_ljspeech.csv", path)
    return path


def test_published_mos_schema_refuses_a_missing_test_id(mos_copy):
    frame = pd.read_csv(mos_copy, dtype=str, keep_default_na=False)
    frame.loc[0, "test"] = ""
    frame.loc[1, "test"] = "  "
    frame.to_csv(mos_copy, index=False)
    with pytest.raises(TableError) as info:
        carbon.load_published_mos(mos_copy)
    message = str(info.value)
    assert f"{mos_copy}, line 2 (id='{frame.loc[0, 'model']}'), column 'test'" in message
    assert f"line 3 (id='{frame.loc[1, 'model']}'), column 'test'" in message
    frame.drop(columns="test").to_csv(mos_copy, index=False)
    with pytest.raises(TableError, match="missing column.*'test'"):
        carbon.load_published_mos(mos_copy)


def test_published_mos_schema_refuses_a_repeated_test_and_model(mos_copy):
    frame = pd.read_csv(mos_copy, dtype=str, keep_default_na=False)
    pd.concat([frame, frame.iloc[[0]]], ignore_index=True).to_csv(mos_copy, index=False)
    with pytest.raises(TableError, match=r"line 2 .*repeats a \(test, model\) pair"):
        carbon.load_published_mos(mos_copy)
    frame.loc[1, "test"] = frame.loc[0, "test"].replace(frame.loc[0, "source"], "arXiv:2106.02297")
    frame.to_csv(mos_copy, index=False)
    with pytest.raises(TableError, match="does not start with its source"):
        carbon.load_published_mos(mos_copy)


# --- command line ---------------------------------------------------------------------------

def test_cli_json_reproduces_strubell_transformer_base(capsys):
    code = cli.main(["carbon", "--hours", "12", "--power-w", "1415.78", "--pue", "1.58",
                     "--intensity", "432.73", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["energy_kwh"] == pytest.approx(26.84, rel=0.001)
    assert out["co2e_kg"] == pytest.approx(26.84 * 0.43273, rel=0.001)
    assert out["pue"] == 1.58 and out["utilization"] == 1.0 and "power" in out["sources"]


def test_cli_accelerator_and_country(capsys, root):
    assert cli.main(["--root", str(root), "carbon", "--hours", "10", "--accelerator", "v100", "--count", "2",
                     "--utilization", "0.5", "--country", "FRA"]) == 0
    text = capsys.readouterr().out
    power = carbon.accelerator_power(carbon.load_hardware(root / "data/carbon/hardware.csv"), "V100")[0]
    expected = 2 * power * 10 * 0.5 / 1000
    assert f"energy: {expected:.6g} kWh" in text and "France" in text


@pytest.mark.parametrize("argv, fragment", [
    (["--hours", "1", "--accelerator", "K80", "--country", "FRA"], "unknown accelerator 'K80'; known: "),
    (["--hours", "1", "--power-w", "100", "--country", "XYZ"], "unknown country 'XYZ'"),
    (["--hours", "1", "--power-w", "100", "--intensity", "100", "--utilization", "2"], "utilization"),
])
def test_cli_errors_name_the_problem(capsys, argv, fragment):
    assert cli.main(["carbon", *argv]) == 2
    assert fragment in capsys.readouterr().err


def test_cli_requires_one_power_and_one_location():
    with pytest.raises(SystemExit):
        cli.main(["carbon", "--hours", "1", "--country", "FRA"])
    with pytest.raises(SystemExit):
        cli.main(["carbon", "--hours", "1", "--power-w", "1", "--accelerator", "V100", "--country", "FRA"])
    with pytest.raises(SystemExit):
        cli.main(["carbon", "--hours", "1", "--power-w", "1", "--country", "FRA", "--intensity", "5"])


# --- curated tables -------------------------------------------------------------------------

def test_curated_tables_load_and_runs_are_sourced(root):
    hardware = carbon.load_hardware(root / "data/carbon/hardware.csv")
    runs = carbon.load_training_runs(root / "data/carbon/training_runs.csv", hardware)
    assert len(runs) >= 25 and runs["source"].notna().all()
    usable = sum(carbon.device_hours(run)[0] is not None for _, run in runs.iterrows())
    assert usable >= 15
    for name in ["P100", "V100-PCIe", "V100-SXM2", "TITAN V", "GTX 1080 Ti", "RTX 2080 Ti", "RTX 3090", "T4",
                 "A100", "H100"]:
        carbon.accelerator_power(hardware, name)


def test_hardware_rows_say_whether_their_source_is_the_vendor(tmp_path, root):
    hardware = carbon.load_hardware(root / "data/carbon/hardware.csv")
    assert set(hardware["source_kind"]) <= set(carbon.HARDWARE_SOURCE_KINDS)
    secondary = hardware.loc[hardware["source_kind"] == "secondary", "notes"]
    assert secondary.notna().all(), "a secondary power must say in its note whom it cites"
    frame = pd.read_csv(root / "data/carbon/hardware.csv", dtype=str, keep_default_na=False)
    frame.loc[0, "source_kind"] = "datasheet"
    frame.to_csv(tmp_path / "hardware.csv", index=False)
    with pytest.raises(TableError, match=r"line 2 .*column 'source_kind'"):
        carbon.load_hardware(tmp_path / "hardware.csv")


@pytest.fixture
def runs_copy(tmp_path, root):
    path = tmp_path / "training_runs.csv"
    shutil.copy(root / "data/carbon/training_runs.csv", path)
    return path


def test_bad_training_run_rows_are_named(runs_copy, root):
    frame = pd.read_csv(runs_copy, dtype=str, keep_default_na=False)
    frame.loc[0, "accelerator"] = "Voodoo 3"
    frame.loc[1, "source"] = "a blog"
    frame.loc[2, "training_hours"] = "-3"
    frame.to_csv(runs_copy, index=False)
    hardware = carbon.load_hardware(root / "data/carbon/hardware.csv")
    with pytest.raises(TableError) as info:
        carbon.load_training_runs(runs_copy, hardware)
    message = str(info.value)
    assert f"{runs_copy}, line 3 (id='{frame.loc[1, 'model_id']}'), column 'source'" in message
    assert "line 4" in message and "column 'training_hours'" in message
    frame.loc[1, "source"] = "arXiv:1910.11480"
    frame.loc[2, "training_hours"] = "67.2"
    frame.to_csv(runs_copy, index=False)
    with pytest.raises(TableError, match=r"line 2 \(model_id=.*'Voodoo 3' is not in hardware.csv"):
        carbon.load_training_runs(runs_copy, hardware)
