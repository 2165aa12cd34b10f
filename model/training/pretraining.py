"""A corpus of synthetic radar events for pre-training: varied motion, growth and decay.

The real archive is small (about 1,000 frames, few rain episodes). Synthetic events from the
project's STEPS-like generator (`ingest.synth`) show the networks what the real archive shows
too seldom: rain fields of many scales moving at many speeds and directions while they grow
and decay. Each event draws its own parameters from the ranges below, is written as
CF-NetCDF frames (`ingest.cf_writer`) and is read back through the ingest normaliser like any
real event, so pre-training and training share one pre-processing.

Ranges (uniform unless stated), chosen to cover the archive's weather, not to match one site:

- cadence: 5, 6 or 10 min (the archive's cadences), equally likely;
- speed 10-70 km/h in any direction, the direction turning by -15..15 degrees per hour;
- spectral slope beta 2.6-3.4 (k^-beta; radar rain fields are near 3);
- wet fraction 0.05-0.35 of the 512 x 512-km domain, growth/decay cycle of 2-6 h;
- log-rain mean -5..3 dBR (0.3-2 mm/h), std 3-6 dB;
- lifetime of 32-km structures 30-120 min.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ingest.synth import SynthParams

CADENCES_MIN = (5.0, 6.0, 10.0)
SPEED_KMH = (10.0, 70.0)
TURN_DEG_PER_H = (-15.0, 15.0)
BETA = (2.6, 3.4)
WET_FRACTION = (0.05, 0.35)
CYCLE_PERIOD_H = (2.0, 6.0)
LOG_RAIN_MEAN_DBR = (-5.0, 3.0)
LOG_RAIN_STD_DBR = (3.0, 6.0)
LIFETIME_REF_MIN = (30.0, 120.0)
CORPUS_START = datetime(2025, 1, 1, tzinfo=UTC)
SITE_PREFIX = "synth-pre-"  # site ids and folder names of the corpus's events


@dataclass(frozen=True)
class CorpusEvent:
    """One synthetic event of the corpus: its site id, generator seed and parameters."""

    site_id: str
    seed: int
    params: SynthParams


def draw_corpus(n_events: int, seed: int, shape: tuple[int, int] = (512, 512)) -> list[CorpusEvent]:
    """Draw `n_events` events' parameters from the module's ranges; deterministic for a seed."""
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n_events):
        speed_kmh = rng.uniform(*SPEED_KMH)
        direction_rad = rng.uniform(0.0, 2.0 * np.pi)
        params = SynthParams(
            shape=shape,
            cadence_min=float(rng.choice(CADENCES_MIN)),
            velocity_kmh=(
                float(speed_kmh * np.cos(direction_rad)),
                float(speed_kmh * np.sin(direction_rad)),
            ),
            rotation_deg_per_h=float(rng.uniform(*TURN_DEG_PER_H)),
            beta=float(rng.uniform(*BETA)),
            wet_fraction=float(rng.uniform(*WET_FRACTION)),
            cycle_period_h=float(rng.uniform(*CYCLE_PERIOD_H)),
            log_rain_mean_dbr=float(rng.uniform(*LOG_RAIN_MEAN_DBR)),
            log_rain_std_dbr=float(rng.uniform(*LOG_RAIN_STD_DBR)),
            lifetime_ref_min=float(rng.uniform(*LIFETIME_REF_MIN)),
        )
        events.append(CorpusEvent(f"{SITE_PREFIX}{i:03d}", int(rng.integers(2**31)), params))
    return events


def write_corpus(
    out_dir: Path, n_events: int, frames: int, seed: int, shape: tuple[int, int] = (512, 512)
) -> list[Path]:
    """Write the corpus as one folder of CF-NetCDF rain-rate frames per event.

    Event i starts 30 days after event i - 1 (no two events share a valid time). Returns the
    event folders.
    """
    from ingest.cf_writer import write_synthetic_feed

    folders = []
    for i, event in enumerate(draw_corpus(n_events, seed, shape)):
        folder = Path(out_dir) / event.site_id
        write_synthetic_feed(
            folder,
            frames,
            site_id=event.site_id,
            seed=event.seed,
            start=CORPUS_START + timedelta(days=30 * i),
            params=event.params,
        )
        folders.append(folder)
    return folders
