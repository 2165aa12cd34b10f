"""Scale-out: three inference workers as separate processes on one Redis, many sites.

Every (site, issue time) must be forecast exactly once, whichever worker takes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from core import keys
from core.frame import Frame
from core.worker import live_states
from ingest.window import WindowStore

N_SITES = 8
N_FRAMES = 8  # per site: issue times at frames 4..7 -> 4 per site
START = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def _blob_grey(step: int, site_index: int, n: int = 32) -> np.ndarray:
    """A rain blob moving one cell per step, grey in [0, 1]: (n, n) float32."""
    rows, cols = np.mgrid[0:n, 0:n]
    centre = 8 + step + site_index % 4
    grey = 0.7 * np.exp(-((rows - 14) ** 2 + (cols - centre) ** 2) / 18.0)
    return grey.astype(np.float32)


def test_three_worker_processes_forecast_every_issue_time_exactly_once(
    tmp_path, redis_conn, redis_url, small_checkpoint
):
    expected = N_SITES * (N_FRAMES - 4)

    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.update(
        REDIS_URL=redis_url,
        NOWCAST_DATA_DIR=str(tmp_path),
        NOWCAST_CHECKPOINTS=json.dumps({"convlstm": str(small_checkpoint)}),
        NOWCAST_TARGET_CELLS="32",
        NOWCAST_CROP_CELLS="64",
        NOWCAST_INFER_BATCH_MAX="3",
        NOWCAST_INFER_DEVICE="cpu",
        OMP_NUM_THREADS="1",
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "infer"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        # the frames come once every worker is up, as a live radar feed would find them
        deadline = time.monotonic() + 120
        while len(live_states(redis_conn, keys.INFER_HEALTH)) < 3:
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.1)
        window = WindowStore(redis_conn, 30, 10_000)
        for step in range(N_FRAMES):  # interleaved, as sites deliver in real time
            for s in range(N_SITES):
                frame = Frame(
                    site_id=f"site-{s:02d}",
                    valid_time=START + timedelta(minutes=6 * step),
                    grey=_blob_grey(step, s),
                    norm_version="n1-test",
                )
                assert window.insert(frame) == "inserted"
        deadline = time.monotonic() + 180
        while redis_conn.xlen(keys.FORECAST_EVENTS) < expected:
            assert time.monotonic() < deadline, "workers did not forecast everything in time"
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.25)
        time.sleep(1.0)  # a late duplicate would show up here
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert all(w.returncode == 0 for w in workers), outputs

    announced = [
        (fields[b"site"], fields[b"issue_time"])
        for _, fields in redis_conn.xrange(keys.FORECAST_EVENTS)
    ]
    assert len(announced) == expected == len(set(announced))
    counts = {k.decode(): int(v) for k, v in redis_conn.hgetall(keys.INFER_COUNTS).items()}
    assert counts["issued:convlstm"] == counts["issued:persistence"] == expected
    pending = redis_conn.xpending(keys.EVENTS_STREAM, keys.INFER_GROUP)["pending"]
    assert pending == 0
    consumers = redis_conn.xinfo_consumers(keys.EVENTS_STREAM, keys.INFER_GROUP)
    assert len(consumers) == 3  # every worker joined the group
    stored = [out.count("stored nowcasts") for out in outputs]
    assert sum(stored) == expected
    assert sum(1 for n in stored if n > 0) >= 2, stored  # the work was shared
