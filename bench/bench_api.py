"""API under load: wrk (50 connections) against a running ``nowcast serve``.

    python bench/bench_api.py [--duration-s 15] [--connections 50] [--workers 1] [--json OUT.json]

Prepares an embedded Redis with real forecasts (6 synthetic 512 x 512 frames ingested, the
inference worker run once with the shipped checkpoint), starts ``nowcast serve`` on it as a
separate process (one uvicorn worker), and runs wrk (Debian package ``wrk``) on the same
machine against: ``/healthz`` (the framework's floor, the baseline of the same run), the latest
forecast's JSON metadata, its JSON frames (stride 2), and its CF-NetCDF. Reports requests/s and
latency p50/p99 per route, and each route's p99 as a ratio of /healthz's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from core.redis_conn import embedded_url, open_redis
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from model.hardware import describe_machine
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from service.settings import Settings

ROUTES = {
    "healthz": "/healthz",
    "latest_metadata": "/v1/sites/synth-01/nowcast/latest?frames=false",
    "latest_json_stride2": "/v1/sites/synth-01/nowcast/latest?stride=2",
    "latest_netcdf": "/v1/sites/synth-01/nowcast/latest?format=netcdf",
}
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from ``wrk --latency`` output."""
    out: dict[str, float] = {}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    out["requests_per_s"] = float(rate.group(1))
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        out[f"p{pct}_ms"] = round(float(value) * _UNIT_MS[unit], 3)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    out["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--workers", type=int, default=1, help="nowcast serve --workers")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk's own threads")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    settings = Settings(data_dir=work / "var", infer_device="cpu")
    paths = write_synthetic_feed(work / "feed", 6, shape=(512, 512))
    results: dict[str, dict[str, float]] = {}
    with open_redis(settings) as connection:
        ingestor = Ingestor(settings, connection)
        for path in paths:
            ingestor.ingest_bytes(path.read_bytes(), str(path))
        worker = InferenceWorker(settings, connection, MethodRunner(settings))
        while worker.process_once() > 0:
            pass
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
        env.update(REDIS_URL=embedded_url(connection) or "", NOWCAST_DATA_DIR=str(work / "var"))
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            for name, route in ROUTES.items():
                httpx.get(base + route).raise_for_status()  # warm the render cache
                wrk = subprocess.run(
                    ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}",
                     f"-d{args.duration_s}s", "--latency", base + route],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                results[name] = parse_wrk(wrk.stdout)
                print(name, results[name], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    floor = results["healthz"]["p99_ms"]
    for figures in results.values():
        figures["p99_vs_healthz"] = round(figures["p99_ms"] / floor, 2)
    report = {
        "connections": args.connections,
        "api_workers": args.workers,
        "wrk_threads": args.wrk_threads,
        "duration_s": args.duration_s,
        "routes": ROUTES,
        "results": results,
        "machine": describe_machine(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
