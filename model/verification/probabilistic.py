"""Verification of probabilistic nowcasts: pooled, mergeable counts per lead and threshold.

Exceedance probabilities per (lead, threshold, cell) are scored against the observed rain:
- Brier score (mean squared error of the probability), and its skill against the sample
  climatology of the pooled observations: BSS = 1 - BS / (o (1 - o)), o the observed frequency;
- the reliability diagram: observed frequency per forecast-probability bin (10 bins of 0.1),
  with the bin's mean forecast probability and its count (pysteps' ``reldiag``);
- the ROC curve (POD against POFD at the probability thresholds 0, 1/9, ..., 1) and its area
  (pysteps' ``ROC_curve``, the same trapezoids).
For ensembles, per lead: the CRPS (mm/h; pysteps' ``CRPS``) and the rank histogram of the
observation among the members (pysteps' ``rankhist``; pairs where the observation and every
member are below `RANK_MIN_MMH` are left out, as dry ties say nothing).

The counts are sums, so accumulators of different windows, hours or sites merge by addition
and the pooled scores do not depend on how the data were split. The reliability and ROC
counts are pysteps' own accumulators' arrays; pysteps.verification is the reference the
tests compare with. Probabilities are in [0, 1]; rain rates in mm/h; NaN observations are
left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.verification.scores import THRESHOLDS_MMH, nan_to_none, threshold_key

N_RELIABILITY_BINS = 10
N_ROC_THRESHOLDS = 10
RANK_MIN_MMH = 0.1
RELIABILITY_MIN_COUNT = 10
"""A reliability bin with fewer cases is reported without its observed frequency."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_PROB_COUNTS = ("n", "observed", "rel_count", "rel_observed")
_PROB_SUMS = ("brier_sum", "rel_prob_sum")
_ROC = ("roc_hits", "roc_misses", "roc_false_alarms", "roc_correct_negatives")


def exceedance_probabilities(
    members_mmh: ArrayLike, thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH
) -> NDArray[np.float32]:
    """Fraction of members at or above each threshold.

    ``members_mmh`` (..., M, L, H, W) rain rates -> (..., L, n_thresholds, H, W) float32 in
    [0, 1]. A NaN member counts as below.
    """
    members = np.asarray(members_mmh, dtype=np.float32)
    out = [np.mean(members >= t, axis=-4, dtype=np.float32) for t in thresholds_mmh]
    return np.stack(out, axis=-3)


def roc_probability_thresholds() -> FloatArray:
    """pysteps' ``ROC_curve_init`` thresholds: linspace(0, 1, 10)."""
    return np.linspace(0.0, 1.0, N_ROC_THRESHOLDS)


@dataclass(eq=False)
class ProbabilityAccumulator:
    """Pooled probabilistic counts: ``ProbabilityAccumulator(n_leads)``.

    Per (lead, threshold): ``n`` verified cells, ``observed`` events, ``brier_sum``;
    reliability ``rel_count``, ``rel_prob_sum``, ``rel_observed`` per bin; ROC
    ``roc_hits``, ... per probability threshold. Per lead, for ensembles (``n_members``):
    ``crps_sum`` (mm/h), ``crps_n`` and ``rank_counts`` (M + 1 ranks).
    """

    n_leads: int
    thresholds_mmh: tuple[float, ...] = THRESHOLDS_MMH
    n_members: int | None = None
    arrays: dict[str, NDArray[Any]] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_leads < 1:
            raise ValueError(f"n_leads must be >= 1, got {self.n_leads}")
        self.thresholds_mmh = tuple(float(t) for t in self.thresholds_mmh)
        table = (self.n_leads, len(self.thresholds_mmh))
        self.arrays = {
            "n": np.zeros(table, np.int64),
            "observed": np.zeros(table, np.int64),
            "brier_sum": np.zeros(table, np.float64),
            "rel_count": np.zeros((*table, N_RELIABILITY_BINS), np.int64),
            "rel_prob_sum": np.zeros((*table, N_RELIABILITY_BINS), np.float64),
            "rel_observed": np.zeros((*table, N_RELIABILITY_BINS), np.int64),
            **{name: np.zeros((*table, N_ROC_THRESHOLDS), np.int64) for name in _ROC},
        }
        if self.n_members is not None:
            self.arrays["crps_sum"] = np.zeros(self.n_leads, np.float64)
            self.arrays["crps_n"] = np.zeros(self.n_leads, np.int64)
            self.arrays["rank_counts"] = np.zeros((self.n_leads, self.n_members + 1), np.int64)

    # -- accumulate --------------------------------------------------------------------------
    def add_probabilities(self, lead: int, probability: ArrayLike, observed_mmh: ArrayLike) -> None:
        """Add one lead (1-based): ``probability`` (n_thresholds, H, W) in [0, 1] against the
        observed rain (H, W) mm/h, NaN where not observed."""
        from pysteps.verification import probscores

        p_all = np.asarray(probability, dtype=np.float64)
        obs = np.asarray(observed_mmh, dtype=np.float64)
        if p_all.shape != (len(self.thresholds_mmh), *obs.shape):
            raise ValueError(f"probability {p_all.shape} does not fit observed {obs.shape}")
        k = self._lead_index(lead)
        valid = np.isfinite(obs)
        for j, threshold in enumerate(self.thresholds_mmh):
            p, o = p_all[j][valid], obs[valid]
            if np.isnan(p).any():
                raise ValueError("probability has NaN at observed cells")
            event = (o >= threshold).astype(np.float64)
            a = self.arrays
            a["n"][k, j] += p.size
            a["observed"][k, j] += int(event.sum())
            a["brier_sum"][k, j] += float(np.sum((p - event) ** 2))
            rel = probscores.reldiag_init(threshold, N_RELIABILITY_BINS, min_count=0)
            probscores.reldiag_accum(rel, p, o)
            a["rel_count"][k, j] += rel["num_idx"]
            a["rel_prob_sum"][k, j] += rel["X_sum"]
            a["rel_observed"][k, j] += rel["Y_sum"]
            roc = probscores.ROC_curve_init(threshold, N_ROC_THRESHOLDS)
            probscores.ROC_curve_accum(roc, p, o)
            for name, key in zip(_ROC, ("hits", "misses", "false_alarms", "corr_neg"), strict=True):
                a[name][k, j] += roc[key]

    def add_ensemble(
        self,
        lead: int,
        members_mmh: ArrayLike,
        observed_mmh: ArrayLike,
        probability: ArrayLike | None = None,
    ) -> None:
        """Add one lead of an ensemble: ``members_mmh`` (M, H, W) against the observation
        (H, W): the probabilities it implies (or ``probability`` (n_thresholds, H, W), e.g.
        calibrated ones), the CRPS and the rank histogram."""
        from pysteps.verification import ensscores, probscores

        members = np.asarray(members_mmh, dtype=np.float64)
        obs = np.asarray(observed_mmh, dtype=np.float64)
        if self.n_members is None or members.shape != (self.n_members, *obs.shape):
            raise ValueError(f"members {members.shape} do not fit {self.n_members} x {obs.shape}")
        if probability is None:
            probability = exceedance_probabilities(members[:, None], self.thresholds_mmh)[0]
        self.add_probabilities(lead, probability, obs)
        k = self._lead_index(lead)
        crps = probscores.CRPS_init()
        probscores.CRPS_accum(crps, members, obs)
        self.arrays["crps_sum"][k] += crps["CRPS_sum"]
        self.arrays["crps_n"][k] += int(crps["n"])
        rank = ensscores.rankhist_init(self.n_members, RANK_MIN_MMH)
        ensscores.rankhist_accum(rank, members, obs)
        self.arrays["rank_counts"][k] += np.asarray(rank["n"], dtype=np.int64)

    def merge(self, other: ProbabilityAccumulator) -> None:
        """Add ``other``'s counts (same leads, thresholds and members)."""
        if (other.n_leads, other.thresholds_mmh, other.n_members) != (
            self.n_leads,
            self.thresholds_mmh,
            self.n_members,
        ):
            raise ValueError("cannot merge accumulators of different leads, thresholds or members")
        for name, values in other.arrays.items():
            self.arrays[name] += values

    def _lead_index(self, lead: int) -> int:
        if not 1 <= lead <= self.n_leads:
            raise ValueError(f"lead {lead} outside 1..{self.n_leads}")
        return lead - 1

    # -- store -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; inverse of `from_dict`."""
        return {
            "n_leads": self.n_leads,
            "thresholds_mmh": list(self.thresholds_mmh),
            "n_members": self.n_members,
            **{name: values.tolist() for name, values in self.arrays.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbabilityAccumulator:
        acc = cls(int(data["n_leads"]), tuple(data["thresholds_mmh"]), data.get("n_members"))
        for name, target in acc.arrays.items():
            values = np.asarray(data[name], dtype=target.dtype)
            if values.shape != target.shape:
                raise ValueError(f"{name}: shape {values.shape} != {target.shape}")
            target[...] = values
        return acc

    # -- scores ------------------------------------------------------------------------------
    def scores(self) -> dict[str, Any]:
        """JSON-safe scores, each threshold key ("0.5") -> one value per lead (None where
        undefined): ``brier``, ``brier_skill``, ``roc_area``, ``observed_frequency``;
        ``reliability`` -> per lead {``forecast_probability``, ``observed_frequency``,
        ``count``} per bin (frequency None under `RELIABILITY_MIN_COUNT` cases); ``roc`` ->
        per lead {``pod``, ``pofd``} at ``roc_probability_thresholds``. With members: ``crps``
        per lead and ``rank_histogram`` per lead (normalised)."""
        a = self.arrays
        keys = [threshold_key(t) for t in self.thresholds_mmh]
        with np.errstate(divide="ignore", invalid="ignore"):
            n = a["n"].astype(np.float64)
            brier = a["brier_sum"] / n
            frequency = a["observed"] / n
            skill = 1.0 - brier / (frequency * (1.0 - frequency))
            pod = a["roc_hits"] / (a["roc_hits"] + a["roc_misses"])
            pofd = a["roc_false_alarms"] / (a["roc_false_alarms"] + a["roc_correct_negatives"])
            rel_p = a["rel_prob_sum"] / a["rel_count"]
            rel_o = np.where(
                a["rel_count"] >= RELIABILITY_MIN_COUNT, a["rel_observed"] / a["rel_count"], np.nan
            )
        area = roc_area(pofd, pod)
        out: dict[str, Any] = {
            "probability_thresholds": roc_probability_thresholds().tolist(),
            "reliability_bin_edges": [0.0, *np.linspace(0.1, 1.0, N_RELIABILITY_BINS).tolist()],
        }
        for name, values in (
            ("brier", brier),
            ("brier_skill", skill),
            ("roc_area", area),
            ("observed_frequency", frequency),
        ):
            out[name] = {key: nan_to_none(values[:, j]) for j, key in enumerate(keys)}
        out["reliability"] = {
            key: [
                {
                    "forecast_probability": nan_to_none(rel_p[k, j]),
                    "observed_frequency": nan_to_none(rel_o[k, j]),
                    "count": a["rel_count"][k, j].tolist(),
                }
                for k in range(self.n_leads)
            ]
            for j, key in enumerate(keys)
        }
        out["roc"] = {
            key: [
                {"pod": nan_to_none(pod[k, j]), "pofd": nan_to_none(pofd[k, j])}
                for k in range(self.n_leads)
            ]
            for j, key in enumerate(keys)
        }
        if self.n_members is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                out["crps"] = nan_to_none(a["crps_sum"] / a["crps_n"])
                totals = a["rank_counts"].sum(axis=1, keepdims=True)
                out["rank_histogram"] = [
                    nan_to_none(row) for row in a["rank_counts"] / np.where(totals, totals, np.nan)
                ]
        return out


def roc_area(pofd: FloatArray, pod: FloatArray) -> FloatArray:
    """Area under the ROC curve over the last axis (probability thresholds ascending), the
    trapezoids of pysteps' ``ROC_curve_compute``, closed at (1, 1) and (0, 0)."""
    area = (1.0 - pofd[..., 0]) * (1.0 + pod[..., 0]) / 2.0
    area = area + np.sum(
        (pofd[..., :-1] - pofd[..., 1:]) * (pod[..., 1:] + pod[..., :-1]) / 2.0, -1
    )
    return np.asarray(area + pofd[..., -1] * pod[..., -1] / 2.0, dtype=np.float64)


def reliability_bootstrap(
    counts: NDArray[np.integer],
    observed: NDArray[np.integer],
    n_resamples: int = 1000,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """95 % bands of each reliability bin's observed frequency, resampling whole forecasts.

    ``counts``, ``observed``: (n_forecasts, ...) per-forecast reliability counts (cases and
    events per bin). Neighbouring cells of one forecast are not independent, so the unit
    resampled (with replacement, ``n_resamples`` times) is the forecast: the band is as wide
    as the forecasts' spread makes it. ``groups``: one label per forecast (e.g. its event);
    then the unit resampled is the group, for forecasts that are not independent of each other
    either (consecutive windows of one event share all but one frame). Returns (low, high) of
    shape counts.shape[1:], NaN where a bin had no case in a resample's sum.
    """
    counts = np.asarray(counts, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if groups is not None:
        labels, index = np.unique(np.asarray(groups), return_inverse=True)
        counts = np.stack([counts[index == g].sum(0) for g in range(len(labels))])
        observed = np.stack([observed[index == g].sum(0) for g in range(len(labels))])
    rng = np.random.default_rng(seed)
    n = counts.shape[0]
    frequencies = np.empty((n_resamples, *counts.shape[1:]))
    for r in range(n_resamples):
        pick = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        total = np.tensordot(pick, counts, axes=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            frequencies[r] = np.tensordot(pick, observed, axes=1) / total
    with warnings.catch_warnings():  # a bin empty in every resample: NaN, said in the doc
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanpercentile(frequencies, 2.5, axis=0)
        high = np.nanpercentile(frequencies, 97.5, axis=0)
    return low, high


def reliability_band_jackknife(
    counts: NDArray[np.integer],
    observed: NDArray[np.integer],
    groups: Sequence[str],
    level: float = 0.95,
    min_groups: int = 2,
) -> tuple[FloatArray, FloatArray]:
    """Bands of each reliability bin's observed frequency over few independent groups (events).

    ``counts``, ``observed``: (n_forecasts, ...) per-forecast reliability counts; ``groups``:
    one label per forecast. The pooled frequency sum(observed) / sum(counts) is a ratio
    estimator over the groups; its delete-one-group jackknife standard error times Student's t
    with (groups - 1) degrees of freedom gives the band, counting per bin only the groups with
    cases in it. With few groups (the test split has 5 events) this holds its level, where the
    percentile bootstrap over groups (`reliability_bootstrap` with ``groups``) is too narrow:
    a bootstrap of 5 units sees 5 values at most (tests/model/test_probabilistic.py simulates
    it: about 84 % coverage against the jackknife's 95 %; Cameron, Gelbach & Miller 2008 on
    few clusters). Returns (low, high) of shape counts.shape[1:], clipped to [0, 1]; NaN where
    fewer than ``min_groups`` (at least 2) groups have cases in a bin: one group says nothing
    of the spread between groups, and two give a band of Student's t with one degree of
    freedom (12.7 standard errors each way), valid but nearly always [0, 1].
    """
    if min_groups < 2:
        raise ValueError(f"min_groups must be >= 2 (a spread between groups), got {min_groups}")
    from scipy import stats

    counts = np.asarray(counts, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    per_group_counts = np.stack([counts[index == g].sum(0) for g in range(len(labels))])
    per_group_observed = np.stack([observed[index == g].sum(0) for g in range(len(labels))])
    total_counts, total_observed = per_group_counts.sum(0), per_group_observed.sum(0)
    present = per_group_counts > 0
    n_groups = present.sum(0)
    # bins with fewer than 2 groups divide by 0 or average nothing: NaN, as said above
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = total_observed / total_counts
        left_out = (total_observed - per_group_observed) / (total_counts - per_group_counts)
        left_out = np.where(present, left_out, np.nan)
        spread = np.nansum((left_out - np.nanmean(left_out, axis=0)) ** 2, axis=0)
        standard_error = np.sqrt((n_groups - 1) / n_groups * spread)
        quantile = stats.t.ppf(0.5 + level / 2, np.maximum(n_groups - 1, 1))
        half = np.where(n_groups >= min_groups, quantile * standard_error, np.nan)
    return np.clip(pooled - half, 0.0, 1.0), np.clip(pooled + half, 0.0, 1.0)
