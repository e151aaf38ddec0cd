#!/usr/bin/env python3
"""Fault injection on the live graph: kill each stage, the supervisor and the RTSP server at
random points of real runs, and report what was lost.

    python tools/fault_bench.py [--video FILE] [--frames 90] [--trials 2] [--seed 0] [--no-rtsp]

Per trial, one process is killed (SIGKILL) when the sink has written a random number of frames
(uniform in [5, frames − 5]):

* a stage (capture, a detector, person, sink) of a lossless file run: the run must end with
  status 0 and every frame, in order, in every output (JSON lines, mmpose JSON, video with the
  source's timing); ``lost`` = frames missing from the outputs (must be 0);
* the supervisor (``posestream live`` killed outright, with its sink frozen first so that it
  cannot close its files): every stage must die with it; the next run into the same folder
  recovers the ``.part`` files (``recovered`` frames, ``complete`` = the recovered files agree);
* the RTSP server (a live camera, GStreamer via the system Python, as in the tests): it is
  killed and started again 2 s later; the graph must reconnect and go on (``lost`` there is
  the camera's frames during the outage, as expected of a live source).

Prints one row per trial and the peak resident memory of the whole graph (``peak_rss_mb_total``
of ``metrics.json``). Default input: ``$POSESTREAM_SHARED/media/har-wave/wave.mp4``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _video_times(path: Path) -> list[float]:
    import av

    if not path.is_file():
        return []
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def _complete(out: Path, stream: str, frames: int) -> tuple[int, bool]:
    """(frames missing, whether every output holds frames 1..frames with the source's timing)."""
    lines = _lines(out / f"{stream}.jsonl")
    ids = [line["frame_id"] for line in lines]
    predictions = out / f"results_{stream}.json"
    count = len(json.loads(predictions.read_text())["instance_info"]) if predictions.is_file() else -1
    times = _video_times(out / f"{stream}.mp4")
    timing = len(times) == len(lines) and all(abs(t - (line["pts"] - lines[0]["pts"])) < 0.002
                                              for t, line in zip(times, lines))
    ok = ids == list(range(1, frames + 1)) and count == frames and timing and not list(out.glob("*.part"))
    return frames - len(set(ids)), ok


def stage_trial(video: str, frames: int, target: str, at: int, work: Path) -> dict:
    """Kill ``target`` (SIGKILL) once the sink has written ``at`` frames of a lossless run."""
    from posestream.stream.config import RunConfig
    from posestream.stream.graph.supervisor import Supervisor

    config = RunConfig.from_dict({"graph": {"detect_workers": 2, "heartbeat_timeout": 5.0}})
    supervisor = Supervisor([video], config, work, max_frames=frames)
    killed = []

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            sink = next(p for p in supervisor.processes if p.spec["name"] == "sink")
            if sink.beat.get("extra", {}).get("written", {}).get(supervisor.streams[0], 0) >= at \
                    and target in supervisor.pids():
                os.kill(supervisor.pids()[target], signal.SIGKILL)
                killed.append(target)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    status = supervisor.run()
    watcher.join(timeout=1)
    lost, ok = _complete(work, supervisor.streams[0], frames)
    metrics = json.loads((work / "metrics.json").read_text())
    return {"killed": target, "at": at, "status": status, "lost": lost, "complete": ok and bool(killed),
            "restarts": sum(s["restarts"] for s in metrics["stages"].values()),
            "rss_mb": metrics.get("peak_rss_mb_total"), "s": round(time.monotonic() - start, 1)}


def _stage_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def supervisor_trial(video: str, frames: int, at: int, work: Path) -> dict:
    """Kill ``posestream live`` outright at ``at`` written frames; count stages left alive and
    what the next run recovers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stream = Path(video).stem
    live = [sys.executable, "-m", "posestream.stream.cli", "live", "--source", video, "--out", str(work)]
    process = subprocess.Popen([*live, "--max-frames", str(frames)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    part = work / f"{stream}.jsonl.part"
    start = time.monotonic()
    while process.poll() is None and not (part.is_file() and len(part.read_bytes().splitlines()) >= at):
        time.sleep(0.01)
    stages = _stage_pids(process.pid)
    sink = [pid for pid in stages if Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"sink\0")]
    for pid in sink:
        os.kill(pid, signal.SIGSTOP)  # a hard kill of the whole run: the sink cannot close its files
    process.kill()
    process.wait()
    for pid in sink:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in stages):
        time.sleep(0.1)
    left = sum(_alive(pid) for pid in stages)
    rerun = subprocess.run([*live, "--max-frames", "5"], env=env, capture_output=True, text=True, timeout=600)
    recovered = _lines(work / f"{stream}.recovered.jsonl")
    ids = [line["frame_id"] for line in recovered]
    ok = ids == list(range(1, len(ids) + 1)) and len(_video_times(work / f"{stream}.recovered.mp4")) == len(ids)
    return {"killed": "supervisor", "at": at, "status": rerun.returncode, "stages_left": left,
            "recovered": len(ids), "complete": ok and "recovered" in rerun.stderr, "s": round(time.monotonic() - start, 1)}


def rtsp_trial(seconds: float, at: float, work: Path, every: float | None = None) -> dict:
    """A live RTSP camera (GStreamer) killed at ``at`` s and back 2 s later (and again every
    ``every`` s: the soak, a stream coming and going); stop after ``seconds``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def server():
        proc = subprocess.Popen(["/usr/bin/python3", str(REPO / "tests" / "rtsp_server.py"), str(port), "320", "240"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError("the RTSP server did not start (python3-gi, gir1.2-gst-rtsp-server-1.0)")
        return proc

    camera = server()
    graph = subprocess.Popen([sys.executable, "-m", "posestream.stream.cli", "live", "--source",
                              f"rtsp://127.0.0.1:{port}/test", "--out", str(work), "--no-video"],
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    start, outages = time.monotonic(), 0
    try:
        next_outage = at
        while time.monotonic() - start < seconds:
            time.sleep(max(0.0, min(next_outage, seconds) - (time.monotonic() - start)))
            if time.monotonic() - start >= seconds:
                break
            camera.kill()
            camera.wait()
            time.sleep(2)
            camera = server()
            outages += 1
            next_outage = (time.monotonic() - start) + every if every else seconds
    finally:
        graph.send_signal(signal.SIGINT)
        graph.wait(timeout=120)
        camera.kill()
    metrics = json.loads((work / "metrics.json").read_text())
    capture = next(v for k, v in metrics["stages"].items() if k.startswith("capture"))["counters"]
    lines = _lines(next(work.glob("*.jsonl")))
    ids = [line["frame_id"] for line in lines]
    return {"killed": "rtsp server", "at": round(at, 1), "status": graph.returncode, "frames": len(lines),
            "outages": outages, "reconnects": capture.get("reconnects", 0), "in_order": ids == sorted(ids),
            "rss_mb_per_minute": metrics.get("rss_mb_per_minute"),
            "complete": graph.returncode == 130 and ids == sorted(ids) and capture.get("reconnects", 0) >= 1,
            "rss_mb": metrics.get("peak_rss_mb_total"), "s": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", help="a recorded video (default: har-wave/wave.mp4 from the shared data)")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--trials", type=int, default=2, help="trials per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-rtsp", action="store_true", help="skip the RTSP server trials")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS",
                        help="only a soak: an RTSP camera dropping every 15 s for this long; prints RSS per minute")
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(shared / "models"))
    video = args.video or str(shared / "media" / "har-wave" / "wave.mp4")
    rng = random.Random(args.seed)
    stream = Path(video).stem
    if args.soak:
        with tempfile.TemporaryDirectory() as work:
            row = rtsp_trial(args.soak, 15.0, Path(work), every=15.0)
        print(row)
        print(f"soak {args.soak:.0f} s, {row['outages']} outages, {row['reconnects']} reconnects, {row['frames']} frames; "
              f"graph RSS (MiB) each minute: {row['rss_mb_per_minute']}, peak {row['rss_mb']}")
        return 0 if row["complete"] else 1
    rows = []
    for target in (f"capture-{stream}", "detect0", "detect1", "person", "sink"):
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory() as work:
                rows.append(stage_trial(video, args.frames, target, rng.randint(5, args.frames - 5), Path(work)))
                print(rows[-1], flush=True)
    for _ in range(args.trials):
        with tempfile.TemporaryDirectory() as work:
            rows.append(supervisor_trial(video, args.frames, rng.randint(5, args.frames - 5), Path(work)))
            print(rows[-1], flush=True)
    if not args.no_rtsp and Path("/usr/bin/python3").exists():
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory() as work:
                try:
                    rows.append(rtsp_trial(20.0, rng.uniform(6, 12), Path(work)))
                except RuntimeError as exc:
                    print(f"rtsp: skipped ({exc})")
                    break
                print(rows[-1], flush=True)
    print(f"\n{video}, {args.frames} frames, seed {args.seed}")
    print(f"{'killed':14} {'at':>5} {'status':>6} {'lost':>5} {'complete':>8} {'restarts':>8} {'rss MB':>7} {'s':>6}  other")
    for row in rows:
        other = {k: v for k, v in row.items() if k not in ("killed", "at", "status", "lost", "complete", "restarts",
                                                           "rss_mb", "s")}
        print(f"{row['killed']:14} {row['at']:>5} {row['status']:>6} {row.get('lost', '-'):>5} "
              f"{str(row['complete']):>8} {row.get('restarts', '-'):>8} {row.get('rss_mb') or '-':>7} {row['s']:>6}  "
              + " ".join(f"{k}={v}" for k, v in other.items()))
    stage_rows = [r for r in rows if "lost" in r]
    print(f"\nlossless runs: {len(stage_rows)}, frames lost in all: {sum(r['lost'] for r in stage_rows)}, "
          f"incomplete: {sum(not r['complete'] for r in rows)}")
    return 0 if all(r["complete"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
