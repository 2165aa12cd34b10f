"""Probabilistic verification (model.verification.probabilistic) against pysteps.verification
on the same forecasts: reliability, ROC and its area, CRPS, rank histogram; the Brier score by
its definition; pooling by merging equals pooling the data."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.verification import ensscores, probscores

from model.verification.probabilistic import (
    RANK_MIN_MMH,
    ProbabilityAccumulator,
    exceedance_probabilities,
)

THRESHOLDS = (0.5, 2.0)


def _case(seed: int, n_members: int = 12, shape: tuple[int, int] = (40, 50)):
    """Members (M, H, W) and an observation (H, W) of rain (mm/h): log-normal, half dry,
    members related to the observation so that the scores are neither 0 nor 1."""
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.normal(0.0, 1.2, shape)) * (rng.random(shape) < 0.5)
    members = truth * np.exp(rng.normal(0.0, 0.6, (n_members, *shape)))
    members *= rng.random((n_members, *shape)) < 0.8
    observed = truth * np.exp(rng.normal(0.0, 0.3, shape))
    observed[0, :5] = np.nan  # not observed: left out everywhere
    return members, observed


def test_exceedance_probabilities_are_member_fractions():
    members = np.array([[[[0.0, 1.0]]], [[[3.0, 1.0]]], [[[0.6, np.nan]]]])  # (M=3, L=1, 1, 2)
    p = exceedance_probabilities(members, (0.5, 2.0))
    assert p.shape == (1, 2, 1, 2)
    np.testing.assert_allclose(p[0, 0, 0], [2 / 3, 2 / 3])
    np.testing.assert_allclose(p[0, 1, 0], [1 / 3, 0.0])


def test_reliability_roc_and_brier_match_pysteps_and_the_definition():
    members, observed = _case(1)
    probability = exceedance_probabilities(members[:, None], THRESHOLDS)[0]
    acc = ProbabilityAccumulator(1, THRESHOLDS)
    acc.add_probabilities(1, probability, observed)
    scores = acc.scores()
    valid = np.isfinite(observed)
    for j, threshold in enumerate(THRESHOLDS):
        key = str(threshold)
        p, o = probability[j][valid], observed[valid]
        # reliability: pysteps' diagram of the same pairs (every bin kept)
        rel = probscores.reldiag_init(threshold, n_bins=10, min_count=0)
        probscores.reldiag_accum(rel, probability[j], observed)
        r, f = probscores.reldiag_compute(rel)
        ours = scores["reliability"][key][0]
        counts = np.asarray(ours["count"])
        np.testing.assert_array_equal(counts, rel["num_idx"])
        enough = counts >= 10
        assert enough.sum() >= 3
        np.testing.assert_allclose(
            np.asarray(ours["forecast_probability"], dtype=float)[counts > 0],
            r[counts > 0],
            rtol=1e-6,  # the probabilities are float32
        )
        np.testing.assert_allclose(
            np.asarray(ours["observed_frequency"], dtype=float)[enough], f[enough]
        )
        # ROC: pysteps' curve and area
        pofd, pod, area = probscores.ROC_curve(
            probability[j], observed, threshold, n_prob_thrs=10, compute_area=True
        )
        roc = scores["roc"][key][0]
        np.testing.assert_allclose(roc["pod"], pod)
        np.testing.assert_allclose(roc["pofd"], pofd)
        assert scores["roc_area"][key][0] == pytest.approx(area)
        assert 0.5 < area < 1.0
        # Brier score and its skill against the sample climatology
        event = (o >= threshold).astype(float)
        brier = float(np.mean((p - event) ** 2))
        climate = event.mean() * (1 - event.mean())
        assert scores["brier"][key][0] == pytest.approx(brier)
        assert scores["brier_skill"][key][0] == pytest.approx(1 - brier / climate)
        assert scores["observed_frequency"][key][0] == pytest.approx(event.mean())


def test_crps_and_rank_histogram_match_pysteps():
    members, observed = _case(2)
    acc = ProbabilityAccumulator(2, THRESHOLDS, n_members=members.shape[0])
    acc.add_ensemble(2, members, observed)
    scores = acc.scores()
    assert scores["crps"][0] is None  # lead 1 had nothing
    assert scores["crps"][1] == pytest.approx(probscores.CRPS(members, observed))
    # ranks: ties among dry members are broken at random by pysteps, so compare the counts'
    # total and a case without ties exactly
    expected = ensscores.rankhist(members, observed, X_min=RANK_MIN_MMH, normalize=False)
    assert acc.arrays["rank_counts"][1].sum() == expected.sum()
    wet = np.exp(np.random.default_rng(3).normal(0, 1, (12, 30, 30))) + 1.0
    truth = np.exp(np.random.default_rng(4).normal(0, 1, (30, 30))) + 1.0
    exact = ProbabilityAccumulator(1, THRESHOLDS, n_members=12)
    exact.add_ensemble(1, wet, truth)
    np.testing.assert_array_equal(
        exact.arrays["rank_counts"][0],
        ensscores.rankhist(wet, truth, X_min=RANK_MIN_MMH, normalize=False),
    )
    assert sum(exact.scores()["rank_histogram"][0]) == pytest.approx(1.0)


def test_merging_accumulators_pools_like_accumulating_everything():
    cases = [_case(seed) for seed in (5, 6, 7)]
    whole = ProbabilityAccumulator(3, THRESHOLDS, n_members=12)
    parts = []
    for lead, (members, observed) in enumerate(cases, start=1):
        np.random.seed(0)  # pysteps' rank-tie draws
        whole.add_ensemble(lead, members, observed)
        part = ProbabilityAccumulator(3, THRESHOLDS, n_members=12)
        np.random.seed(0)
        part.add_ensemble(lead, members, observed)
        parts.append(part)
    merged = ProbabilityAccumulator(3, THRESHOLDS, n_members=12)
    for part in parts:
        merged.merge(ProbabilityAccumulator.from_dict(part.to_dict()))  # through JSON-safe form
    for name, values in whole.arrays.items():
        np.testing.assert_allclose(merged.arrays[name], values, err_msg=name)
    assert merged.scores() == whole.scores()
    with pytest.raises(ValueError, match="cannot merge"):
        merged.merge(ProbabilityAccumulator(3, THRESHOLDS))


def test_bad_input_is_refused_clearly():
    acc = ProbabilityAccumulator(2, THRESHOLDS)
    with pytest.raises(ValueError, match="lead 3 outside"):
        acc.add_probabilities(3, np.zeros((2, 4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        acc.add_probabilities(1, np.zeros((3, 4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="do not fit"):
        acc.add_ensemble(1, np.zeros((5, 4, 4)), np.zeros((4, 4)))


def test_the_bootstrap_band_over_forecasts_widens_with_their_spread():
    from model.verification.probabilistic import reliability_bootstrap

    counts = np.full((40, 1), 1000)
    same = np.full((40, 1), 300)  # every forecast observed 30 %: nothing to resample
    low, high = reliability_bootstrap(counts, same, n_resamples=200)
    assert low[0] == pytest.approx(0.3) and high[0] == pytest.approx(0.3)
    rng = np.random.default_rng(0)
    spread = rng.integers(0, 1000, (40, 1))  # forecasts disagree: a wide band around the mean
    low, high = reliability_bootstrap(counts, spread, n_resamples=500)
    mean = spread.sum() / counts.sum()
    assert low[0] < mean < high[0] and high[0] - low[0] > 0.1
    empty = reliability_bootstrap(np.zeros((5, 2)), np.zeros((5, 2)), n_resamples=10)
    assert np.isnan(empty[0]).all()  # no case: no band


def test_the_bootstrap_over_events_resamples_whole_events_not_their_windows():
    from model.verification.probabilistic import reliability_bootstrap

    # 4 events of 10 near-identical windows each (consecutive windows share all but a frame):
    # resampling the 40 windows as if independent narrows the band 3-fold
    counts = np.full((40, 1), 1000)
    per_event = np.repeat([200, 350, 500, 650], 10)[:, None]
    events = [f"e{i // 10}" for i in range(40)]
    low_w, high_w = reliability_bootstrap(counts, per_event, n_resamples=500)
    low_e, high_e = reliability_bootstrap(counts, per_event, n_resamples=500, groups=events)
    assert high_e[0] - low_e[0] > 2.0 * (high_w[0] - low_w[0])
    assert low_e[0] < 0.425 < high_e[0]  # the pooled frequency


def test_the_jackknife_band_over_events_is_the_hand_computed_one():
    from scipy import stats

    from model.verification.probabilistic import reliability_band_jackknife

    counts = np.array([[10, 0], [20, 0], [30, 5]])  # bin 2: cases from one event only
    observed = np.array([[5, 0], [8, 0], [20, 1]])
    low, high = reliability_band_jackknife(counts, observed, ["a", "b", "c"])
    left_out = np.array([28 / 50, 25 / 40, 13 / 30])  # without a, b, c: a ratio each
    half = stats.t.ppf(0.975, 2) * np.sqrt(2 / 3 * np.sum((left_out - left_out.mean()) ** 2))
    assert low[0] == pytest.approx(33 / 60 - half) and high[0] == 1.0  # clipped
    assert np.isnan(low[1]) and np.isnan(high[1])
    assert not np.isnan(
        reliability_band_jackknife(counts, observed, ["a", "b", "c"], 0.95, 3)[0][0]
    )
    two_events = reliability_band_jackknife(counts[1:], observed[1:], ["b", "c"], min_groups=3)
    assert np.isnan(two_events[0]).all()  # two events: t with one degree of freedom, not judged
    with pytest.raises(ValueError, match="min_groups"):
        reliability_band_jackknife(counts, observed, ["a", "b", "c"], min_groups=1)


def test_with_five_events_the_jackknife_band_holds_its_level_where_the_bootstrap_does_not():
    """Five events of 11 windows, each event and window with its own rain regime (a random
    log-odds offset): how often does each band hold the frequency of the population the events
    are drawn from? The test split has 5 events, so this is the band the card judges by."""
    from model.verification.probabilistic import reliability_band_jackknife, reliability_bootstrap

    rng = np.random.default_rng(7)
    events = np.repeat(np.arange(5), 11)
    labels = [f"e{e}" for e in events]
    logit = np.log(0.4 / 0.6)
    draws = logit + rng.normal(0, 0.5, 200_000) + rng.normal(0, 0.3, 200_000)
    population = np.mean(1 / (1 + np.exp(-draws)))
    held = {"jackknife": 0, "bootstrap": 0}
    trials = 200
    for trial in range(trials):
        offset = rng.normal(0, 0.5, 5)[events] + rng.normal(0, 0.3, len(events))
        counts = rng.integers(50, 400, (len(events), 1))
        observed = rng.binomial(counts[:, 0], 1 / (1 + np.exp(-(logit + offset))))[:, None]
        for name, (low, high) in (
            ("jackknife", reliability_band_jackknife(counts, observed, labels)),
            ("bootstrap", reliability_bootstrap(counts, observed, 200, trial, labels)),
        ):
            held[name] += bool(low[0] <= population <= high[0])
    assert 0.9 <= held["jackknife"] / trials <= 0.99
    assert held["bootstrap"] / trials < held["jackknife"] / trials - 0.05
    assert 0.75 <= held["bootstrap"] / trials <= 0.9  # the card's "about 84 %" (seeded: 168/200)


def test_the_card_judges_reliability_over_events_and_names_both_bands():
    from model.evaluation.card import reliability_summary, reliability_text

    def points(p: float, o: float) -> dict:
        return {"forecast_probability": [p], "observed_frequency": [o], "count": [500]}

    scores = {
        "reliability": {"0.5": [points(0.3, 0.32), points(0.6, 0.5), points(0.8, 0.7)]},
        "reliability_band": {"0.5": [{"low": [0.31], "high": [0.33]}] * 3},
        "reliability_band_events": {
            "0.5": [
                {"low": [0.2], "high": [0.4]},  # inside
                {"low": [0.4], "high": [0.65]},  # inside
                {"low": [0.7], "high": [0.7]},  # one event only: not judged
            ]
        },
    }
    assert reliability_summary(scores, "0.5")[:2] == (0, 3)
    assert reliability_summary(scores, "0.5", "reliability_band_events")[:2] == (2, 2)
    both = {key: {**value, "2.0": value["0.5"]} for key, value in scores.items()}
    assert reliability_text({**both, "reliability_events": 5})[1]  # 2 of 2 judged bins inside
    both["reliability_band_events"]["2.0"] = [{"low": [0.4], "high": [0.45]}] * 3
    text, passes = reliability_text({**both, "reliability_events": 5})
    assert not passes and "over the 5 events in 0 of 3" in text
    # with the jackknife-t band over events the card judges by it, and names all three
    wide = [
        {"low": [0.2], "high": [0.45]},
        {"low": [0.4], "high": [0.65]},
        {"low": [0.6], "high": [0.9]},
    ]
    judged = {**both, "reliability_band_events_t": {"0.5": wide, "2.0": wide}}
    text, passes = reliability_text({**judged, "reliability_events": 5})
    assert passes and "jackknife-t band over them in 3 of 3 (judged)" in text
    assert "bootstrap band over the 5 events in 0 of 3" in text
    judged["reliability_band_events_t"]["2.0"] = [{"low": [0.35], "high": [0.45]}] * 3
    assert not reliability_text({**judged, "reliability_events": 5})[1]


def test_the_reliability_diagram_draws_the_judged_band_and_falls_back_bin_by_bin():
    from model.evaluation.plots import _error_bars

    scores = {
        "reliability_band_events_t": {"0.5": [{"low": [0.2, None], "high": [0.5, None]}]},
        "reliability_band": {"0.5": [{"low": [0.3, 0.5], "high": [0.4, 0.7]}]},
    }
    p, o, n = np.array([0.3, 0.6]), np.array([0.35, 0.6]), np.array([100, 100])
    # bin 1: the jackknife-t band over events; bin 2 (one event): the band over forecasts
    np.testing.assert_allclose(_error_bars(scores, "0.5", 1, p, o, n), [[0.15, 0.1], [0.15, 0.1]])


def test_the_reliability_test_passes_reliable_forecasts_and_fails_biased_ones():
    """Reports of 20 judged bins, each bin's band the jackknife-t over 5 simulated events of a
    population whose frequency the forecast states exactly (reliable) or 0.1 too high
    (biased): the count test keeps its level where "95 % of the bins inside" does not, and
    still catches the bias."""
    from model.evaluation.card import bins_allowed_outside
    from model.verification.probabilistic import reliability_band_jackknife

    rng = np.random.default_rng(11)
    events = np.repeat(np.arange(5), 11)
    labels = [f"e{e}" for e in events]
    logits = np.linspace(-2.5, 1.5, 20)  # one forecast probability per bin
    population = np.array(
        [np.mean(1 / (1 + np.exp(-(lg + rng.normal(0, 0.5, 50_000))))) for lg in logits]
    )
    passed = {"count test": 0, "95 % inside": 0, "count test, biased": 0}
    reports = 60
    for _ in range(reports):
        offset = rng.normal(0, 0.4, (5, 20))[events]
        counts = rng.integers(50, 400, (len(events), 20))
        observed = rng.binomial(counts, 1 / (1 + np.exp(-(logits + offset))))
        low, high = reliability_band_jackknife(counts, observed, labels, min_groups=3)
        for name, stated in (("", population), (", biased", np.minimum(population + 0.1, 1))):
            outside = int(np.sum((stated < low) | (stated > high)))
            if name:
                passed["count test, biased"] += outside <= bins_allowed_outside(20)
                continue
            passed["count test"] += outside <= bins_allowed_outside(20)
            passed["95 % inside"] += 20 - outside >= 0.95 * 20
    assert passed["count test"] / reports >= 0.9
    assert passed["95 % inside"] / reports <= passed["count test"] / reports - 0.1
    assert passed["count test, biased"] / reports <= 0.1
    assert bins_allowed_outside(65) == 6 and bins_allowed_outside(15) == 2
