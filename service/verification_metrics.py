"""Live verification on /metrics, per site, from the hourly buckets of
`service.verification_store.VerificationStore` at scrape time.

- ``nowcast_verification_{csi,pod,far}{site, method, lead_step, lead_minutes, threshold_mmh}``:
  the scores of every retained hour of the site's verification;
- ``nowcast_verification_cells{..., outcome}``: the contingency counts behind them
  (``hit``, ``miss``, ``false_alarm``), so that a query pools sites correctly, e.g. the CSI
  of a method over all sites at lead step 10 is
  ``sum by (method) (nowcast_verification_cells{outcome="hit", lead_step="10"}) /
  sum by (method) (nowcast_verification_cells{lead_step="10"})``.

A probabilistic method (`model.methods.probabilistic_names`) adds
``nowcast_verification_brier_skill`` and ``nowcast_verification_roc_area`` with the same labels:
the Brier skill score against the sample climatology and the ROC area of its probabilities of
exceedance.

``lead_minutes`` is the lead in minutes at the site's own cadence; ``lead_step`` the lead's
number (1 = one cadence ahead), the label to pool on when sites of different cadences are
mixed. Label values are bounded by the sites with a window, the configured methods, the 15
leads and `model.verification.scores.THRESHOLDS_MMH`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from model.methods import probabilistic_names
from model.verification.probabilistic import ProbabilityAccumulator
from model.verification.scores import ScoreAccumulator, threshold_key
from service.methods_runner import N_LEADS
from service.verification_store import VerificationStore

LABELS = ["site", "method", "lead_step", "lead_minutes", "threshold_mmh"]
OUTCOMES = {"hit": "hits", "miss": "misses", "false_alarm": "false_alarms"}
"""Label value of ``outcome`` -> `ScoreAccumulator` table."""


class VerificationCollector(Collector):
    """Per-site verification gauges.

    ``sites`` lists the sites with a window; ``cadence_min(site)`` gives a site's cadence in
    minutes (None while unknown: the site is left out); ``methods`` the configured methods.
    """

    def __init__(
        self,
        verification: VerificationStore,
        sites: Callable[[], list[str]],
        cadence_min: Callable[[str], float | None],
        methods: tuple[str, ...],
    ) -> None:
        self._verification = verification
        self._sites = sites
        self._cadence_min = cadence_min
        self._methods = methods

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(
                f"nowcast_verification_{name}",
                f"{name.upper()} per site, method, lead and threshold (mm/h), all retained hours.",
                labels=LABELS,
            )
            for name in ("csi", "pod", "far")
        }
        probabilistic = {
            name: GaugeMetricFamily(
                f"nowcast_verification_{name}",
                f"{title} of a probabilistic method's probabilities of exceedance per site, "
                "method, lead and threshold (mm/h), all retained hours.",
                labels=LABELS,
            )
            for name, title in (("brier_skill", "Brier skill score"), ("roc_area", "ROC area"))
        }
        cells = GaugeMetricFamily(
            "nowcast_verification_cells",
            "Contingency counts behind nowcast_verification_csi/pod/far (cells), by outcome.",
            labels=[*LABELS, "outcome"],
        )
        try:
            for site in self._sites():
                cadence = self._cadence_min(site)
                if cadence is None:
                    continue
                for method in self._methods:
                    acc = self._verification.summed([site], method, N_LEADS)
                    if acc.n_cells.any():
                        add_site_scores(families, cells, site, method, cadence, acc)
                    if method in probabilistic_names():
                        summed = self._verification.summed_probability([site], method, N_LEADS)
                        add_probabilistic_scores(probabilistic, site, method, cadence, summed)
        except redis.RedisError:
            return  # nowcast_redis_up (service.metrics) says so
        yield from families.values()
        yield cells
        yield from probabilistic.values()


def add_site_scores(
    families: dict[str, GaugeMetricFamily],
    cells: GaugeMetricFamily,
    site: str,
    method: str,
    cadence_min: float,
    acc: ScoreAccumulator,
) -> None:
    """Add one site's and method's scores and counts (leads of ``cadence_min`` minutes)."""
    scores = acc.scores()
    for step in range(1, acc.n_leads + 1):
        lead = [str(step), f"{cadence_min * step:g}"]
        for j, threshold in enumerate(acc.thresholds_mmh):
            key = threshold_key(threshold)
            labels = [site, method, *lead, key]
            for name, family in families.items():
                value = scores[name][key][step - 1]
                if value is not None:
                    family.add_metric(labels, value)
            for outcome, table in OUTCOMES.items():
                count = getattr(acc, table)[step - 1, j]
                cells.add_metric([*labels, outcome], float(count))


def add_probabilistic_scores(
    families: dict[str, GaugeMetricFamily],
    site: str,
    method: str,
    cadence_min: float,
    acc: ProbabilityAccumulator,
) -> None:
    """Add one site's and method's Brier skill and ROC area, where defined."""
    scores = acc.scores()
    for step in range(1, acc.n_leads + 1):
        for threshold in acc.thresholds_mmh:
            key = threshold_key(threshold)
            labels = [site, method, str(step), f"{cadence_min * step:g}", key]
            for name, family in families.items():
                value = scores[name][key][step - 1]
                if value is not None:
                    family.add_metric(labels, value)
