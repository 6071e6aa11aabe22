"""Small devices a quantized vocoder might run on (data/quantize/devices.csv), with their schema."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from audiofootprint.data import read_table


class DeviceSchema(pa.DataFrameModel):
    """data/quantize/devices.csv: memory and processor of each device, read in its spec sheet."""

    device: Series[str] = pa.Field(unique=True)
    category: Series[str]
    cpu: Series[str]
    cores: Series[float] = pa.Field(ge=1, nullable=True)
    clock_mhz: Series[float] = pa.Field(gt=0, nullable=True)
    ram_bytes: Series[float] = pa.Field(gt=0)
    ram_note: Series[str] = pa.Field(nullable=True)
    flash_bytes: Series[float] = pa.Field(gt=0, nullable=True)
    source_url: Series[str] = pa.Field(str_matches=r"^https?://")
    source_where: Series[str]
    checked: Series[str] = pa.Field(isin=["yes"])

    class Config:
        strict = True
        coerce = True


def load_devices(path: str | Path) -> pd.DataFrame:
    """The small-device table (data/quantize/devices.csv), validated."""
    return read_table(path, DeviceSchema, id_column="device")


def feasibility(table: pd.DataFrame, devices: pd.DataFrame) -> pd.DataFrame:
    """Which measured variants fit each device's RAM: weights at rest plus the peak memory one call
    of about the measured audio length added (measured here), against the device's total RAM."""
    columns = ["model", "scheme", "footprint_mb", "weights_mb", "real_time_here", *devices["device"]]
    ok = table[table["status"] == "ok"].copy()
    if ok.empty:  # no model quantized in this run
        return pd.DataFrame(columns=columns)
    ok["footprint_bytes"] = ok["weight_bytes"] + ok["peak_memory_bytes"].fillna(0)
    rows = []
    for _, variant in ok.iterrows():
        row = {"model": variant["model"], "scheme": variant["scheme"],
               "footprint_mb": variant["footprint_bytes"] / 1e6, "weights_mb": variant["weight_bytes"] / 1e6,
               "real_time_here": bool(variant["real_time_factor"] < 1.0)}
        for _, device in devices.iterrows():
            row[device["device"]] = bool(variant["footprint_bytes"] <= device["ram_bytes"])
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
