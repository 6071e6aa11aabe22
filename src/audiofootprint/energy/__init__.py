"""Energy measurement harness: codecarbon's offline tracker around repeated calls."""
from audiofootprint.energy.harness import Measurement, MeasureSettings, measure, spread
from audiofootprint.energy.tracker import TrackerSettings

__all__ = ["Measurement", "MeasureSettings", "TrackerSettings", "measure", "spread"]
