"""Small devices a quantized vocoder might run on (data/quantize/devices.csv), with their schema."""
from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series


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
