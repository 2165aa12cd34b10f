"""Live verification: every kept forecast scored against each observed frame as it arrives.

A frame at valid time t scores every stored forecast of its site whose lead lands on t; a new
forecast is scored at once against the frames already in the window (out of order arrivals,
replays). Each (forecast, lead) counts once however often it is seen
(`service.verification_store`), so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import numpy as np

from ingest.window import WindowStore
from model.verification.probabilistic import ProbabilityAccumulator
from service.forecast import Forecast, RainConversion
from service.forecast_store import ForecastStore
from service.methods_runner import N_LEADS
from service.verification_store import VerificationStore, single_lead_accumulator


class LiveVerifier:
    """Scores the ``methods``' forecasts of ``forecasts`` against the frames of ``window`` into
    ``verification``; observed grey levels become rain rates through ``conversion``."""

    def __init__(
        self,
        window: WindowStore,
        forecasts: ForecastStore,
        verification: VerificationStore,
        conversion: RainConversion,
        methods: Collection[str],
    ) -> None:
        self.window, self.forecasts, self.verification = window, forecasts, verification
        self.conversion = conversion
        self.methods = methods  # the runner's, live

    def observation(self, site_id: str, valid_time: datetime, cadence_min: float) -> int:
        """Score every kept forecast with a lead valid at ``valid_time``; returns how many
        (forecast, lead) pairs were new. ``cadence_min``: the site's, in minutes."""
        observed = self.window.frame_at(site_id, valid_time)
        if observed is None:
            return 0
        observed_mmh = self.conversion.rain_mmh(observed.grey)
        start = valid_time - timedelta(minutes=cadence_min * N_LEADS)
        end = valid_time - timedelta(minutes=cadence_min)
        counted = 0
        for method in self.methods:
            for forecast in self.forecasts.issued_between(site_id, method, start, end):
                counted += self.count(forecast, valid_time, observed_mmh)
        return counted

    def made(self, site_id: str, issue_time: datetime) -> None:
        """The forecasts of an issue time made already, delivered again: the worker that made
        them may have died between storing and verifying their backlog. Verify it (once)."""
        made = [
            forecast
            for method in self.methods
            for forecast in self.forecasts.issued_between(site_id, method, issue_time, issue_time)
        ]
        if made:
            self.backlog(made)

    def backlog(self, forecasts: list[Forecast]) -> None:
        """Score new forecasts (one issue time) against the observations already in the window."""
        first = forecasts[0]
        for valid_time in first.valid_times:
            observed = self.window.frame_at(first.site_id, valid_time)
            if observed is None:
                continue
            observed_mmh = self.conversion.rain_mmh(observed.grey)
            for forecast in forecasts:
                self.count(forecast, valid_time, observed_mmh)

    def count(self, forecast: Forecast, valid_time: datetime, observed_mmh: np.ndarray) -> int:
        """Score ``forecast``'s lead valid at ``valid_time`` against ``observed_mmh`` (H, W)
        mm/h, its probabilities too where it has them; 1 if that lead was new, else 0."""
        lead = forecast.lead_of(valid_time)
        if lead is None or forecast.grey.shape[1:] != observed_mmh.shape:
            return 0
        forecast_mmh = forecast.conversion.rain_mmh(forecast.grey[lead - 1])
        single = single_lead_accumulator(forecast_mmh, observed_mmh)
        added = self.verification.add(
            forecast.site_id, forecast.method, forecast.issue_time, lead, valid_time, single
        )
        if forecast.probability is not None:
            probabilistic = ProbabilityAccumulator(forecast.n_leads, forecast.thresholds_mmh)
            probabilistic.add_probabilities(lead, forecast.probability[lead - 1], observed_mmh)
            self.verification.add_probability(
                forecast.site_id, forecast.method, forecast.issue_time, lead, valid_time,
                probabilistic,
            )  # fmt: skip
        return int(added)  # the store counts it in keys.INFER_COUNTS "verified" too
