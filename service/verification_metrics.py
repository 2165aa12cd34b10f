"""Live verification on /metrics, from the hourly buckets of
`service.verification_store.VerificationStore` at scrape time, as contingency counts from which
PromQL derives the scores, in two families whose size does not multiply sites by leads:

- ``nowcast_verification_cells{method, lead_step, threshold_mmh, outcome}``: every site pooled,
  per lead (``lead_step`` 1 = one radar cadence ahead, the label sites of different cadences
  pool on), ``outcome`` ``hit``, ``miss`` or ``false_alarm``; the CSI of a method at lead step
  10 is ``sum by (method) (nowcast_verification_cells{outcome="hit", lead_step="10"}) /
  sum by (method) (nowcast_verification_cells{lead_step="10"})``;
- ``nowcast_site_verification_cells{site, method, threshold_mmh, outcome}``: per site, its
  leads pooled.

A probabilistic method (`model.methods.probabilistic_names`) adds
``nowcast_verification_brier_skill`` and ``nowcast_verification_roc_area`` per method, lead step
and threshold (every site pooled): the Brier skill score against the sample climatology and the
ROC area of its probabilities of exceedance. A site's scores per lead are
``GET /v1/verification?site=``'s. Series: methods x thresholds x (3 x leads + 3 x sites + 2 x
leads for a probabilistic method): about 2,400 for 5 sites and 7 methods, 105 more a site (the
issue 33 scrape held 10,395 verification series for 5 sites).
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

LEAD_LABELS = ["method", "lead_step", "threshold_mmh"]
SITE_LABELS = ["site", "method", "threshold_mmh"]
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
        by_lead = GaugeMetricFamily(
            "nowcast_verification_cells",
            "Contingency counts (cells) per method, lead step and threshold (mm/h), every site "
            "pooled, all retained hours, by outcome.",
            labels=[*LEAD_LABELS, "outcome"],
        )
        by_site = GaugeMetricFamily(
            "nowcast_site_verification_cells",
            "Contingency counts (cells) per site, method and threshold (mm/h), its leads "
            "pooled, all retained hours, by outcome.",
            labels=[*SITE_LABELS, "outcome"],
        )
        probabilistic = {
            name: GaugeMetricFamily(
                f"nowcast_verification_{name}",
                f"{title} of a probabilistic method's probabilities of exceedance per method, "
                "lead step and threshold (mm/h), every site pooled, all retained hours.",
                labels=LEAD_LABELS,
            )
            for name, title in (("brier_skill", "Brier skill score"), ("roc_area", "ROC area"))
        }
        try:
            sites = [site for site in self._sites() if self._cadence_min(site) is not None]
            for method in self._methods:
                for site in sites:
                    acc = self._verification.summed([site], method, N_LEADS)
                    if acc.n_cells.any():
                        add_site_counts(by_site, site, method, acc)
                pooled = self._verification.summed(sites, method, N_LEADS) if sites else None
                if pooled is not None and pooled.n_cells.any():
                    add_lead_counts(by_lead, method, pooled)
                if sites and method in probabilistic_names():
                    summed = self._verification.summed_probability(sites, method, N_LEADS)
                    add_probabilistic_scores(probabilistic, method, summed)
        except redis.RedisError:
            return  # nowcast_redis_up (service.metrics) says so
        yield by_lead
        yield by_site
        yield from probabilistic.values()


def add_lead_counts(family: GaugeMetricFamily, method: str, acc: ScoreAccumulator) -> None:
    """Add one method's counts per lead and threshold (``acc``: every site summed)."""
    for step in range(1, acc.n_leads + 1):
        for j, threshold in enumerate(acc.thresholds_mmh):
            for outcome, table in OUTCOMES.items():
                count = getattr(acc, table)[step - 1, j]
                labels = [method, str(step), threshold_key(threshold), outcome]
                family.add_metric(labels, float(count))


def add_site_counts(
    family: GaugeMetricFamily, site: str, method: str, acc: ScoreAccumulator
) -> None:
    """Add one site's and method's counts per threshold, its leads pooled."""
    for j, threshold in enumerate(acc.thresholds_mmh):
        for outcome, table in OUTCOMES.items():
            count = getattr(acc, table)[:, j].sum()
            family.add_metric([site, method, threshold_key(threshold), outcome], float(count))


def add_probabilistic_scores(
    families: dict[str, GaugeMetricFamily], method: str, acc: ProbabilityAccumulator
) -> None:
    """Add one method's Brier skill and ROC area per lead and threshold, where defined."""
    scores = acc.scores()
    for step in range(1, acc.n_leads + 1):
        for threshold in acc.thresholds_mmh:
            key = threshold_key(threshold)
            for name, family in families.items():
                value = scores[name][key][step - 1]
                if value is not None:
                    family.add_metric([method, str(step), key], value)
