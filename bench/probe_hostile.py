"""Issue 33's hostile probes, re-run against a real ``nowcast serve`` on this machine.

    python bench/probe_hostile.py [--idle 1000] [--json OUT.json]

Starts ``nowcast serve`` (one uvicorn worker, its own embedded Redis, the shipped settings) as
a separate process on 127.0.0.1 and measures, each beside the figure the issue reported:
- a site whose frames include one dated 1970: the bytes and time of ``GET /v1/sites``;
- the ODIM_H5 decompression bomb (16384 x 16384 cells, gzip) pushed through the upload
  route: the answer, its time, and the server's peak resident memory (VmHWM) before and after;
- frames of 1e30 mm/h, 500 mm/h everywhere, ODIM with gain 1e30 or without gain/offset or
  without nodata/undetect: the answers;
- ``--idle`` connections that send nothing or half a header line: how many are still open
  15 s later, and the server's open file descriptors then;
- a 10,000-character ``method=``: the bytes of the 422 body.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h5py
import httpx
import numpy as np

from ingest.cf_writer import write_cf_frame
from model.hardware import describe_machine

API_KEY = "probe-key-0123456789"
SITE = "probe-1"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rain_file(folder: Path, name: str, rain_mmh: np.ndarray, valid: datetime) -> bytes:
    path = folder / name
    write_cf_frame(path, rain_mmh, valid, SITE, "rain_rate")
    return path.read_bytes()


def _odim(raw: np.ndarray, **what: float | None) -> bytes:
    """A small ODIM_H5 RATE composite; ``what`` overrides gain/offset/nodata/undetect (None:
    left out)."""
    attrs = {"gain": 0.01, "offset": 0.0, "nodata": 65535.0, "undetect": 0.0, **what}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["Conventions"] = np.bytes_("ODIM_H5/V2_2")
        for key, value in (("object", "COMP"), ("source", "NOD:probe"), ("date", "20260101"),
                           ("time", "010000")):  # fmt: skip
            h5.require_group("what").attrs[key] = np.bytes_(value)
        data = h5.create_group("dataset1/data1")
        if raw.size:
            data.create_dataset("data", data=raw)
        else:  # the bomb: 16384^2 cells that compress to almost nothing
            data.create_dataset("data", shape=(16384, 16384), dtype="u1", chunks=(1024, 1024),
                                compression="gzip", fillvalue=1)  # fmt: skip
        data.create_group("what").attrs["quantity"] = np.bytes_("RATE")
        for key, value in attrs.items():
            if value is not None:
                data["what"].attrs[key] = value
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nowcast-probe-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOWCAST_")}
    env.pop("REDIS_URL", None)
    env.update(NOWCAST_DATA_DIR=str(work / "var"), NOWCAST_API_KEYS=json.dumps([API_KEY]))
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    out: dict[str, object] = {"machine": describe_machine()}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("nowcast serve did not start")
            time.sleep(0.3)
        client = httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)

        def push(raw: bytes) -> tuple[int, str]:
            response = client.post(f"/v1/sites/{SITE}/frames", content=raw)
            return response.status_code, response.json().get("detail", "")[:160]

        frames = work / "frames"
        frames.mkdir()
        rain = np.full((400, 400), 2.0)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        out["1970_frame"] = {"push": push(_rain_file(frames, "old.nc", rain, epoch))}
        for i in range(5):
            push(_rain_file(frames, f"f{i}.nc", rain, START + timedelta(minutes=6 * i)))
        started = time.perf_counter()
        sites = client.get("/v1/sites")
        out["1970_frame"].update(  # type: ignore[union-attr]
            sites_bytes=len(sites.content),
            sites_s=round(time.perf_counter() - started, 3),
            gap_count=sites.json()[0]["gap_count"],
            gaps_listed=len(sites.json()[0]["gaps"]),
            issue_reported="113-226 MB in 5-15 s",
        )
        hwm_before = _status_kb(server.pid, "VmHWM")
        started = time.perf_counter()
        answer = push(_odim(np.zeros(0)))
        out["odim_bomb"] = {
            "answer": answer,
            "s": round(time.perf_counter() - started, 3),
            "server_peak_rss_mb_before": hwm_before // 1024,
            "server_peak_rss_mb_after": _status_kb(server.pid, "VmHWM") // 1024,
            "issue_reported": "blocked ingest 61 s, demo past 5 GB",
        }
        stored = np.full((96, 96), 200, dtype=np.uint16)
        out["impossible_values"] = {
            "rain_1e30_everywhere": push(
                _rain_file(frames, "a.nc", np.full((400, 400), 1e30), START + timedelta(hours=1))
            ),
            "rain_500_everywhere": push(
                _rain_file(frames, "b.nc", np.full((400, 400), 500.0), START + timedelta(hours=2))
            ),
            "odim_gain_1e30": push(_odim(stored, gain=1e30)),
            "odim_no_gain_offset": push(_odim(stored, gain=None, offset=None)),
            "odim_no_nodata_undetect": push(_odim(stored, nodata=None, undetect=None)),
            "issue_reported": "all accepted (865 mm/h served)",
        }
        long_method = client.get(
            f"/v1/sites/{SITE}/nowcast/latest", params={"method": "m" * 10_000}
        )
        out["long_method"] = {
            "status": long_method.status_code,
            "body_bytes": len(long_method.content),
            "issue_reported": "10,000 characters echoed",
        }
        sockets = []
        fds_before = len(os.listdir(f"/proc/{server.pid}/fd"))
        for i in range(args.idle):
            conn = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                conn.sendall(b"GET /v1/sites HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(conn)
        time.sleep(15)
        still_open = 0
        for conn in sockets:
            conn.setblocking(False)
            try:
                still_open += conn.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
            conn.close()
        out["slow_clients"] = {
            "opened": args.idle,
            "still_open_after_15_s": still_open,
            "server_fds_before": fds_before,
            "server_fds_after_15_s": len(os.listdir(f"/proc/{server.pid}/fd")),
            "issue_reported": "1,000 held with no limit; fds 24 -> 1,024",
        }
        out["metrics_bytes"] = len(httpx.get(f"{base}/metrics").content)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
