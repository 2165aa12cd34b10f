"""Response bodies of the HTTP API (pydantic models: validated, and documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in words.")


class Refusal(BaseModel):
    issue_time: datetime
    reason: str = Field(description="warming_up, gap, behind or internal_error")
    message: str


class SiteStatus(BaseModel):
    id: str
    frames: int = Field(description="Frames in the rolling window.")
    oldest_frame: datetime | None
    newest_frame: datetime | None
    cadence_min: float | None
    gaps: list[datetime] = Field(
        description="Missing cadence slots inside the window, the newest ones (at most the "
        "window's size in frames), oldest first."
    )
    gap_count: int = Field(
        default=0, ge=0, description="All missing cadence slots inside the window."
    )
    mask_version: str | None = Field(description="None: no noise mask fitted, unmasked.")
    norm_version: str | None
    model_version: str | None = Field(description="Model of the newest forecast.")
    last_issue_time: datetime | None
    last_ingest_at: datetime | None
    last_refusal: Refusal | None
    counts: dict[str, int] = Field(description="Ingest outcomes of this site's frames.")
    georeferenced: bool = Field(
        default=False, description="The grid's place on Earth is known (from the frames)."
    )
    bbox: list[float] | None = Field(
        default=None,
        description="[lon_min, lat_min, lon_max, lat_max] of the normalised grid, degrees.",
    )


class GraticuleLine(BaseModel):
    axis: Literal["lon", "lat"] = Field(description="lon: a meridian; lat: a parallel.")
    value_deg: float = Field(description="Its longitude (east) or latitude (north), degrees.")
    pieces: list[list[tuple[float, float]]] = Field(
        description="Polylines of (column, row) grid coordinates, fractional; cell centres at "
        "integers, (0, 0) the first cell of the first row, as in the frames."
    )


class Graticule(BaseModel):
    site: str
    georeferenced: bool
    shape: list[int] | None = Field(description="[rows, columns] of the grid.")
    step_deg: float | None = Field(description="Spacing of the lines, degrees.")
    lines: list[GraticuleLine]


class NowcastBody(BaseModel):
    site: str
    method: str
    issue_time: datetime = Field(description="Valid time of the newest input frame (UTC).")
    model_version: str
    norm_version: str
    cadence_min: float
    lead_minutes: list[float]
    valid_times: list[datetime]
    units: str = "mm h-1"
    stride: int = Field(description="Every stride-th grid cell along each axis.")
    shape: list[int] = Field(description="(leads, rows, cols) of frames.")
    max_rain_mmh: list[float] = Field(description="Largest rain rate of each lead.")
    frames: list[list[list[float]]] | None = Field(
        description="Rain rate (mm/h) by lead, row, column; null when frames=false."
    )


class ProbabilityBody(BaseModel):
    """product=probability: a probabilistic method's probabilities of exceedance."""

    site: str
    method: str
    issue_time: datetime
    model_version: str
    cadence_min: float
    lead_minutes: list[float]
    valid_times: list[datetime]
    members: int | None = Field(description="Ensemble members behind the probabilities.")
    thresholds_mmh: list[float] = Field(description="Rain rates the probabilities exceed.")
    stride: int
    shape: list[int] = Field(description="(leads, thresholds, rows, cols).")
    probability_percent: list[list[list[list[int]]]] | None = Field(
        description="P(rain >= threshold) in whole percent by lead, threshold, row, column; "
        "null when frames=false."
    )


class PointSeries(BaseModel):
    site: str
    method: str
    issue_time: datetime
    row: int
    col: int
    lat: float | None = Field(default=None, description="The cell centre's latitude, deg N.")
    lon: float | None = Field(default=None, description="The cell centre's longitude, deg E.")
    lead_minutes: list[float]
    valid_times: list[datetime]
    rain_mmh: list[float]


class ObservedFrames(BaseModel):
    site: str
    valid_times: list[datetime]
    units: str = "mm h-1"
    stride: int
    frames: list[list[list[float]]]


class NativeFrameBody(BaseModel):
    site: str
    valid_time: datetime
    units: str = "mm h-1"
    shape: list[int] = Field(description="The radar's grid: rows, columns.")
    covered_fraction: float = Field(description="Share of the grid the radar saw.")
    max_rain_mmh: float = Field(description="The frame's peak rain rate, whole grid.")
    block_cells: int = Field(description="Side of the blocks of ``frame``, in radar cells.")
    frame: list[list[float | None]] = Field(
        description="Each block's maximum rain rate; null where the radar saw no cell of it."
    )


class MethodScores(BaseModel):
    csi: dict[str, list[float | None]] = Field(description="Threshold (mm/h) -> CSI by lead.")
    far: dict[str, list[float | None]]
    pod: dict[str, list[float | None]]
    rain_mse: list[float | None] = Field(description="(mm/h)^2 by lead.")
    correlation: list[float | None]
    hits: dict[str, list[int]]
    misses: dict[str, list[int]]
    false_alarms: dict[str, list[int]]
    correct_negatives: dict[str, list[int]]
    n_cells: list[int] = Field(description="Verified cells by lead.")


class ReliabilityPoints(BaseModel):
    forecast_probability: list[float | None] = Field(description="Mean forecast per bin.")
    observed_frequency: list[float | None] = Field(
        description="Observed frequency per bin; null under 10 cases."
    )
    count: list[int] = Field(description="Cases per bin.")


class RocPoints(BaseModel):
    pod: list[float | None] = Field(description="At each probability threshold.")
    pofd: list[float | None]


class ProbabilisticScores(BaseModel):
    """Scores of probabilities of exceedance (`model.verification.probabilistic`)."""

    probability_thresholds: list[float] = Field(description="Of the ROC points.")
    reliability_bin_edges: list[float]
    brier: dict[str, list[float | None]] = Field(description="Threshold -> Brier score by lead.")
    brier_skill: dict[str, list[float | None]] = Field(
        description="Against the sample climatology of the same observations."
    )
    roc_area: dict[str, list[float | None]]
    observed_frequency: dict[str, list[float | None]]
    reliability: dict[str, list[ReliabilityPoints]] = Field(description="Threshold -> by lead.")
    roc: dict[str, list[RocPoints]] = Field(description="Threshold -> by lead.")


class VerificationBody(BaseModel):
    sites: list[str]
    since: datetime | None
    until: datetime | None
    leads: list[int]
    lead_minutes: list[float] | None = Field(description="Null when sites differ in cadence.")
    thresholds_mmh: list[float]
    methods: dict[str, MethodScores]
    probabilistic: dict[str, ProbabilisticScores] = Field(
        default_factory=dict,
        description="The probabilistic methods' probabilities of exceedance, scored.",
    )


class FrameAccepted(BaseModel):
    outcome: str = Field(description="accepted or archived_only")
    site: str
    valid_time: datetime


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    detail: dict[str, str]


class HealthBody(BaseModel):
    status: str = Field(description="ok while the process serves requests.")


class ColourStep(BaseModel):
    from_mmh: float = Field(description="Lower bound of the level, mm/h.")
    colour: str = Field(description="#rrggbb")


class ColourScale(BaseModel):
    source: str = Field(description="Where the scale comes from.")
    units: str = "mm h-1"
    steps: list[ColourStep] = Field(description="Levels low to high; below the first: dry.")
    no_data: str = Field(description="Colour of cells outside radar coverage.")
