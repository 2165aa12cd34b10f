"""The fastest replay this machine sustains: the demo's pipeline, real frames, back-pressure.

    python bench/bench_replay.py ../shared/data/radar [--ticks 60] [--json OUT.json]

Runs what ``nowcast demo --frames FOLDER`` runs (embedded Redis, ingest worker, inference
worker with the shipped checkpoint and the default methods, one thread each) on the first
``--ticks`` frames of every site, with no pause between ticks: the replay waits only for the
pipeline (`service.feeds.FolderReplay` back-pressure). The achieved speed (one 6-minute cadence
per tick, per wall-clock second) is the highest ``--speed`` at which every issue time is still
forecast; a replay asked to go faster is slowed to it. Also reports the issue times forecast
and refused, by reason, from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    from core import keys
    from core.redis_conn import open_redis
    from model.hardware import describe_machine
    from service.demo import Pipeline, pipeline_backlog
    from service.feeds import REPLAY_CADENCE_S, FolderReplay
    from service.methods_runner import MethodRunner
    from service.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("frames", type=Path)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        settings = get_settings().model_copy(update={"data_dir": work, "redis_url": None})
        runner = MethodRunner(settings)
        replay = FolderReplay(args.frames, work / "incoming", interval_s=0.0)
        replay.sequences = [s[: args.ticks] for s in replay.sequences]
        with open_redis(settings) as connection:
            replay.backlog = pipeline_backlog(connection)
            pipeline = Pipeline(settings, connection, runner, replay)
            pipeline.start()
            pipeline.feed_thread.join()
            pipeline.stop()
            counts = {k.decode(): int(v) for k, v in connection.hgetall(keys.INFER_COUNTS).items()}
        progress = replay.progress
        result = {
            "command": f"python bench/bench_replay.py {args.frames} --ticks {args.ticks}",
            "machine": describe_machine(),
            "threads": os.environ.get("OMP_NUM_THREADS", "default"),
            "methods": list(settings.methods),
            "sites": len(replay.sequences),
            "frames": progress.delivered,
            "ticks": progress.ticks,
            "seconds": round(progress.elapsed_s, 1),
            "seconds_per_tick": round(progress.elapsed_s / max(1, progress.ticks), 2),
            "sustained_speed": round(progress.speed(REPLAY_CADENCE_S), 1),
            "held_back_s": round(progress.held_s, 1),
            "issued": counts.get(f"issued:{settings.methods[0]}", 0),
            "refused": {
                k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("refused:")
            },
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
