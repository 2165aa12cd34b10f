"""Sustained load on loopback: frames for many sites at an accelerated cadence, plus API readers.

Real processes on their own Redis server: ``nowcast ingest --watch`` (frames pushed on the
Redis stream), two ``nowcast infer`` workers, ``nowcast serve``. A pusher delivers one new
frame per site every tick (a 6-minute cadence compressed to ``tick_s``), reader threads ask the
API for sites, latest nowcasts and verification. Afterwards: no frame and no forecast lost
(every pushed frame accepted, every issue time forecast exactly once, nothing pending), no API
error. Recorded (printed, and written as JSON to ``$RELIABILITY_LOAD_REPORT`` when set): frames
and forecasts per second, API requests per second and latency percentiles, each process's
resident memory at the start and end of the load, Redis memory.

The default suite runs a short version; ``pytest -m long tests/reliability/test_load.py``
runs ``$RELIABILITY_LOAD_SECONDS`` (default 600) with more sites.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from core import keys
from core.worker import live_states
from ingest.cf_writer import feed_file_name, write_cf_frame
from ingest.synth import SynthParams, synth_rain_rate_mmh
from ingest.worker import push_frame
from service.methods_runner import N_INPUTS
from tests.reliability.procs import nowcast, nowcast_env, redis_server, wait_healthy, wait_until
from tests.service.helpers import FEED_START
from tests.service.live_server import free_port

READ_PATHS = (
    "/v1/sites",
    "/v1/sites/{site}/nowcast/latest?frames=false",
    "/v1/sites/{site}/nowcast/latest?stride=4",
    "/v1/verification?site={site}",
)


@dataclass(frozen=True)
class LoadPlan:
    sites: int
    tick_s: float  # one frame per site per tick (6 minutes of radar time)
    seconds: float  # how long frames are pushed
    readers: int
    reader_pause_s: float
    forecast_ttl_s: int = 6 * 3600  # short in the long run: Redis memory held by the TTLs


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _rain_fields(n: int) -> list[np.ndarray]:
    """``n`` synthetic rain-rate fields (mm/h), reused in a cycle with new valid times."""
    return list(synth_rain_rate_mmh(n, SynthParams(shape=(96, 96), cadence_min=6.0), 7))


class Pusher(threading.Thread):
    """Pushes frame k of every site each tick, until ``seconds`` have passed."""

    def __init__(self, redis_client, folder: Path, plan: LoadPlan) -> None:
        super().__init__(daemon=True)
        self.redis = redis_client
        self.folder = folder
        self.plan = plan
        self.fields = _rain_fields(12)
        self.pushed = 0
        self.ticks = 0
        self.stop = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.plan.seconds
        while time.monotonic() < end and not self.stop.is_set():
            started = time.monotonic()
            valid = FEED_START + timedelta(minutes=6 * self.ticks)
            field = self.fields[self.ticks % len(self.fields)]
            for s in range(self.plan.sites):
                site = f"load-{s:02d}"
                path = self.folder / feed_file_name(site, valid)
                write_cf_frame(path, np.roll(field, 3 * s, axis=1), valid, site, "rain_rate")
                push_frame(self.redis, path.read_bytes(), path.name)
                path.unlink()
                self.pushed += 1
            self.ticks += 1
            self.stop.wait(max(0.0, self.plan.tick_s - (time.monotonic() - started)))


class Reader(threading.Thread):
    def __init__(self, base: str, plan: LoadPlan, offset: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.plan = plan
        self.offset = offset
        self.latencies_s: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        k = self.offset
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                site = f"load-{k % self.plan.sites:02d}"
                url = self.base + READ_PATHS[k % len(READ_PATHS)].format(site=site)
                started = time.perf_counter()
                try:
                    status = client.get(url).status_code
                except httpx.HTTPError:
                    self.failures += 1
                else:
                    self.latencies_s.append(time.perf_counter() - started)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                k += 1
                self.stop.wait(self.plan.reader_pause_s)


def run_load(tmp_path: Path, small_checkpoint: Path, plan: LoadPlan) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with redis_server(tmp_path / "redis") as server:
        client = server.client()
        env = nowcast_env(
            tmp_path / "data",
            server.url,
            checkpoints=json.dumps({"convlstm": str(small_checkpoint)}),
            methods='["convlstm", "persistence"]',
            infer_batch_max=16,
            forecast_ttl_s=plan.forecast_ttl_s,
        )
        with (
            nowcast(["ingest", "--watch"], env, tmp_path / "ingest.log") as ingest,
            nowcast(["infer"], env, tmp_path / "infer-a.log") as infer_a,
            nowcast(["infer"], env, tmp_path / "infer-b.log") as infer_b,
            nowcast(["serve", "--port", str(port)], env, tmp_path / "serve.log") as api,
        ):
            children = {
                "ingest": ingest.proc,
                "infer-a": infer_a.proc,
                "infer-b": infer_b.proc,
                "api": api.proc,
            }
            procs = list(children.values())
            wait_healthy(base, 90, api.proc)
            wait_until(
                lambda: len(live_states(client, keys.INFER_HEALTH)) == 2, 90, "two workers", procs
            )
            pusher = Pusher(client, tmp_path, plan)
            readers = [Reader(base, plan, i) for i in range(plan.readers)]
            rss_start: dict[str, float] = {}
            redis_mb: list[float] = []
            started = time.monotonic()
            pusher.start()
            for reader in readers:
                reader.start()
            try:
                while pusher.is_alive():
                    assert all(p.poll() is None for p in procs), "a process died under load"
                    if not rss_start and pusher.ticks >= N_INPUTS + 1:  # warm: all code loaded
                        rss_start = {n: _rss_mb(p.pid) for n, p in children.items()}
                    redis_mb.append(client.info("memory")["used_memory"] / 2**20)
                    pusher.join(timeout=1.0)
                pushed_at = time.monotonic()
                issues = plan.sites * (pusher.ticks - (N_INPUTS - 1))
                wait_until(
                    lambda: (
                        client.xlen(keys.FORECAST_EVENTS) >= issues
                        and client.xlen(keys.INCOMING_STREAM) == 0
                        and client.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"] == 0
                    ),
                    180,
                    "the pipeline to drain",
                    procs,
                )
                drained_at = time.monotonic()
                rss_end = {n: _rss_mb(p.pid) for n, p in children.items()}
            finally:
                pusher.stop.set()
                for reader in readers:
                    reader.stop.set()
                    reader.join(timeout=30)
            time.sleep(0.5)  # a late duplicate would show up here
            announced = [
                (f[b"site"], f[b"issue_time"]) for _, f in client.xrange(keys.FORECAST_EVENTS)
            ]
            counts = {k.decode(): int(v) for k, v in client.hgetall(keys.COUNTS).items()}
            infer_counts = {
                k.decode(): int(v) for k, v in client.hgetall(keys.INFER_COUNTS).items()
            }
            redis_mb.append(client.info("memory")["used_memory"] / 2**20)

    latencies = np.array([t for r in readers for t in r.latencies_s])
    statuses: dict[int, int] = {}
    for reader in readers:
        for status, n in reader.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    push_s = pushed_at - started
    return {
        "plan": plan.__dict__,
        "pushed": pusher.pushed,
        "ticks": pusher.ticks,
        "issues_expected": issues,
        "announced": announced,
        "counts": counts,
        "infer_counts": infer_counts,
        "frames_per_s": round(counts.get("accepted", 0) / (drained_at - started), 2),
        "forecasts_per_s": round(len(announced) / (drained_at - started), 2),
        "push_s": round(push_s, 1),
        "drain_s": round(drained_at - pushed_at, 1),
        "api_requests": int(latencies.size),
        "api_requests_per_s": round(latencies.size / push_s, 1),
        "api_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
        "api_p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1),
        "api_statuses": statuses,
        "api_failures": sum(r.failures for r in readers),
        "rss_start_mb": {k: round(v, 1) for k, v in rss_start.items()},
        "rss_end_mb": {k: round(v, 1) for k, v in rss_end.items()},
        "redis_used_mb_max": round(max(redis_mb), 2),
        "redis_used_mb_end": round(redis_mb[-1], 2),
    }


def check_and_report(report: dict) -> None:
    announced = report.pop("announced")
    figures = {k: v for k, v in report.items() if k not in ("counts", "infer_counts")}
    print(" load: " + json.dumps(figures))
    if os.environ.get("RELIABILITY_LOAD_REPORT"):
        Path(os.environ["RELIABILITY_LOAD_REPORT"]).write_text(json.dumps(report, indent=2))
    # nothing lost: every pushed frame accepted once, every issue time forecast once
    assert report["counts"] == {"accepted": report["pushed"]}, report["counts"]
    assert len(announced) == len(set(announced)) == report["issues_expected"]
    for method in ("convlstm", "persistence"):
        assert report["infer_counts"][f"issued:{method}"] == report["issues_expected"]
    # the API answered every request, never with a server error
    assert report["api_failures"] == 0 and report["api_requests"] > 0
    assert all(status < 500 for status in report["api_statuses"]), report["api_statuses"]


@pytest.mark.timeout(300)
def test_short_load_loses_nothing(tmp_path, small_checkpoint):
    plan = LoadPlan(sites=4, tick_s=1.0, seconds=7, readers=2, reader_pause_s=0.02)
    check_and_report(run_load(tmp_path, small_checkpoint, plan))


@pytest.mark.long
@pytest.mark.timeout(3600)
def test_sustained_load_loses_nothing_and_memory_stays_flat(tmp_path, small_checkpoint):
    seconds = float(os.environ.get("RELIABILITY_LOAD_SECONDS", "600"))
    plan = LoadPlan(
        sites=8, tick_s=2.0, seconds=seconds, readers=2, reader_pause_s=0.02, forecast_ttl_s=120
    )
    report = run_load(tmp_path, small_checkpoint, plan)
    check_and_report(report)
    for name, start in report["rss_start_mb"].items():  # no leak: bounded growth
        assert report["rss_end_mb"][name] - start < 150, (name, report)
    # Redis holds the windows (30 frames a site) and the forecasts of the last 120 s
    assert report["redis_used_mb_max"] < 200, report
