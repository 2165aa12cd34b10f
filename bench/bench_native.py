"""Bytes and time of the radar's own frame (`ingest.native`) per shared radar.

    python bench/bench_native.py [--frames-per-radar 5]

For the first frames of each radar folder under ../shared/data/radar and ../shared/data/odim:
the grid, the packed bytes per frame (and per site for a 40-frame window), and the packing and
unpacking time per frame, beside the normalised 100 x 100 frame's bytes in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.frame import Frame
from ingest.codec import encode_frame
from ingest.native import NativeFrame, native_rain_mmh, pack_native, unpack_native
from ingest.normalize import NormParams, normalise_dbz
from ingest.reader import frame_files, read_radar_file
from model.hardware import describe_machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-radar", type=int, default=5)
    args = parser.parse_args()
    print(describe_machine())
    print(f"{'radar':<36}{'grid':>12}{'kB/frame':>10}{'MB/site':>9}{'pack ms':>9}"
          f"{'unpack ms':>10}{'100x100 kB':>11}")  # fmt: skip
    for root in (SHARED / "radar", SHARED / "odim"):
        networks: dict[str, list[Path]] = {}
        for path in frame_files(root):
            networks.setdefault(path.relative_to(root).parts[0], []).append(path)
        for network, paths in sorted(networks.items()):
            files = paths[: args.frames_per_radar]
            sizes, pack_s, unpack_s, small = [], [], [], []
            for path in files:
                field = read_radar_file(path)
                rain = native_rain_mmh(field.dbz, (200.0, 1.6))
                frame = NativeFrame(field.site_id, field.valid_time, rain)
                started = time.perf_counter()
                blob = pack_native(frame)
                pack_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                unpack_native(blob)
                unpack_s.append(time.perf_counter() - started)
                sizes.append(len(blob))
                grey = normalise_dbz(field.dbz, NormParams())[0]
                small.append(len(encode_frame(Frame(field.site_id, field.valid_time, grey, "n"))))
            shape = "x".join(map(str, rain.shape))
            print(f"{network[:35]:<36}{shape:>12}{np.mean(sizes) / 1e3:>10.0f}"
                  f"{40 * np.mean(sizes) / 1e6:>9.1f}{1e3 * np.median(pack_s):>9.1f}"
                  f"{1e3 * np.median(unpack_s):>10.1f}{np.mean(small) / 1e3:>11.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
