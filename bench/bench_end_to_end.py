"""End-to-end latency: a frame file appears -> its forecast is available from the API.

    python bench/bench_end_to_end.py [--frames 25] [--gap-s 3] [--json OUT.json]

Runs the service as the demo does, in one process on embedded Redis with the shipped
checkpoint and the paper's grid (512 x 512 synthetic frames -> 330 crop -> 100 x 100): the
ingest worker watching a folder, the inference worker (convlstm, extrapolation, persistence),
the API on loopback. Each frame is renamed into the watched folder (t0); the clock stops when
``GET /v1/sites/synth-01/nowcast/latest?frames=false`` returns that frame's time as its issue
time (t1). The first 4 frames only warm the window. Also reports each method's mean run time
from the worker's Prometheus histogram (same run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import REGISTRY

from core.redis_conn import open_redis
from ingest.cf_writer import write_synthetic_feed
from ingest.ingestor import Ingestor
from ingest.worker import IngestWorker
from model.hardware import describe_machine
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from service.settings import Settings


def _serve(app: object, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--gap-s", type=float, default=3.0, help="Pause between frames.")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    staged = write_synthetic_feed(work / "staged", args.frames, shape=(512, 512))
    incoming = work / "incoming"
    incoming.mkdir()
    settings = Settings(data_dir=work / "var", infer_device="cpu")
    runner = MethodRunner(settings)
    latencies_s: list[float] = []
    with open_redis(settings) as connection:
        ingest = IngestWorker(Ingestor(settings, connection), settings, settle_s=0.0)
        infer = InferenceWorker(settings, connection, runner)
        threads = [
            threading.Thread(target=ingest.run_folders, args=([incoming], True), daemon=True),
            threading.Thread(target=infer.run, daemon=True),
        ]
        for thread in threads:
            thread.start()
        server = _serve(create_app(settings, connection), args.port)
        url = f"http://127.0.0.1:{args.port}/v1/sites/synth-01/nowcast/latest?frames=false"
        with httpx.Client() as client:
            for i, path in enumerate(staged):
                expected = path.stem.split("_")[-1]  # 20260101T002400Z
                started = time.perf_counter()
                os.replace(path, incoming / path.name)
                if i < 4:
                    time.sleep(args.gap_s)
                    continue
                while True:
                    response = client.get(url)
                    if response.status_code == 200:
                        issue = response.json()["issue_time"].replace("-", "").replace(":", "")
                        if issue == expected:
                            break
                    time.sleep(0.01)
                latencies_s.append(time.perf_counter() - started)
                time.sleep(args.gap_s)
        server.should_exit = True
        ingest.request_stop()
        infer.request_stop()
        for thread in threads:
            thread.join(timeout=30)

    per_method = {}
    for method in settings.methods:
        labels = {"method": method}
        total = REGISTRY.get_sample_value("nowcast_inference_duration_seconds_sum", labels)
        count = REGISTRY.get_sample_value("nowcast_inference_duration_seconds_count", labels)
        per_method[method] = round(1000 * total / count, 1) if count else None
    result = {
        "frames_timed": len(latencies_s),
        "median_s": round(statistics.median(latencies_s), 3),
        "p95_s": round(percentile(latencies_s, 0.95), 3),
        "max_s": round(max(latencies_s), 3),
        "mean_method_ms": per_method,
        "poll_interval_s": settings.poll_interval_s,
        "machine": describe_machine(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
