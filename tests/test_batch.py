"""``posestream batch`` on real shared videos, with a real local Ray instance (and a real head
started with ``ray start --head`` for ``--address``), compared with ``posestream run``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import shared_file

pytest.importorskip("ray")

CLIPS = ("media/har-wave/wave.mp4", "media/tfjs-pose-testdata/pose_squats.mp4", "media/har-stand/stand.mp4")


@pytest.fixture()
def videos(tmp_path) -> Path:
    """Three short shared videos (one in a sub-folder) and a corrupt one."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, clip in enumerate(CLIPS):
        source = shared_file(clip)
        shutil.copy(source, folder / ("sub" if i == 2 else "") / source.name)
    data = shared_file("media/tfjs-pose-testdata/pose_1.mp4").read_bytes()
    (folder / "broken.mp4").write_bytes(data[: len(data) // 8])  # the moov atom is cut off
    return folder


def _posestream(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posestream.stream.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def _manifest(out: Path) -> dict:
    return {Path(r["input"]).name: r for r in map(json.loads, (out / "batch.jsonl").read_text().splitlines())}


def test_two_workers_match_posestream_run(videos, tmp_path):
    out = tmp_path / "out"
    done = _posestream("batch", str(videos), "--out", str(out), "--workers", "2", "--quiet")
    assert done.returncode == 1, done.stderr  # one video failed: the batch says so, after finishing the others
    manifest = _manifest(out)
    assert {name: r["status"] for name, r in manifest.items()} == {
        "wave.mp4": "ok", "pose_squats.mp4": "ok", "stand.mp4": "ok", "broken.mp4": "failed"}
    assert "not a readable video" in manifest["broken.mp4"]["error"]
    assert "failed" in done.stderr and "broken.mp4" in done.stderr
    assert manifest["wave.mp4"]["frames"] == 125 and manifest["stand.mp4"]["frames"] == 106
    # each video's files are those of a separate `posestream run` with the same settings (one
    # ONNX Runtime thread per worker on this 2-core machine: threads 1)
    config = tmp_path / "threads1.yaml"
    config.write_text("pipeline:\n  threads: 1\n")
    for clip, sub in (("wave", ""), ("stand", "sub")):
        single = tmp_path / f"run-{clip}"
        source = videos / sub / f"{clip}.mp4"
        assert _posestream("run", str(source), "--out", str(single), "--config", str(config), "--quiet").returncode == 0
        for name in (f"{clip}.jsonl", f"results_{clip}.json"):
            assert (out / sub / name).read_bytes() == (single / name).read_bytes(), name
        # and the same annotated video, byte for byte: the same drawing (stream/sinks/annotate.py
        # draws the values as the file writes them) encoded the same way (one x264 thread, no
        # macroblock tree: stream/sinks/files.py says why; before, CI saw frames of this video
        # differ between the two, at 34.9 dB PSNR)
        assert (out / sub / f"{clip}.mp4").read_bytes() == (single / f"{clip}.mp4").read_bytes()
    import hashlib

    for r in manifest.values():
        for path, digest in r["outputs"].items():
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest


def test_resume_recomputes_only_what_is_missing(videos, tmp_path):
    out = tmp_path / "out"
    first = _posestream("batch", str(videos), "--out", str(out), "--no-video", "--quiet")
    assert first.returncode == 1
    before = _manifest(out)
    (out / "pose_squats.jsonl").unlink()
    again = _posestream("batch", str(videos), "--out", str(out), "--no-video", "--resume", "--quiet")
    assert "1 ok, 1 failed, 2 skipped" in again.stdout, again.stdout
    after = _manifest(out)
    assert (out / "pose_squats.jsonl").is_file()
    assert after["pose_squats.mp4"]["outputs"] == before["pose_squats.mp4"]["outputs"]  # same bytes again
    assert after["wave.mp4"] == before["wave.mp4"]  # untouched


def _worker_pids() -> list[int]:
    """Ray actor processes of posestream's VideoWorker that are running a video now."""
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::VideoWorker.process" in line]


def test_a_killed_worker_has_its_video_retried(videos, tmp_path):
    (videos / "broken.mp4").unlink()
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, "-m", "posestream.stream.cli", "batch", str(videos), "--out", str(out),
                              "--workers", "2", "--no-video", "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and batch.poll() is None and time.monotonic() < deadline:
        pids = _worker_pids()
        if pids:
            time.sleep(1.0)  # well into the video
            try:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    stdout, stderr = batch.communicate(timeout=600)
    assert killed is not None, "no worker was seen processing a video"
    assert batch.returncode == 0, stderr
    assert "3 ok, 0 failed" in stdout
    assert all(r["status"] == "ok" for r in _manifest(out).values())


def test_joins_a_running_ray_head(videos, tmp_path):
    (videos / "broken.mp4").unlink()
    ray = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = 46379
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats"], capture_output=True, text=True,
                             env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        import re

        # the head binds to the node's address (with Ray's token authentication on): join it by
        # the address it prints, and by "auto"
        address = re.search(r"ray start --address='([^']+)'", started.stdout + started.stderr)[1]
        for i, how in enumerate((address, "auto")):
            out = tmp_path / f"out{i}"
            done = _posestream("batch", str(videos / "wave.mp4"), "--out", str(out), "--workers", "2",
                               "--address", how, "--no-video", "--quiet")
            assert done.returncode == 0, done.stderr
            assert _manifest(out)["wave.mp4"]["status"] == "ok"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_bad_input_is_one_line(tmp_path):
    done = _posestream("batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "no such file" in done.stderr
    (tmp_path / "empty").mkdir()
    done = _posestream("batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "no video found" in done.stderr


def test_one_worker_without_ray_writes_skeleton_and_npz_too(tmp_path):
    from posestream.offline.batch import collect_jobs, run_batch
    from posestream.stream.config import RunConfig

    clip = shared_file("media/har-wave/wave.mp4")
    out = tmp_path / "out"
    counts = run_batch(collect_jobs([str(clip)], out), RunConfig.from_yaml(None, {}), out,
                       options={"write_video": False, "skeleton": True, "export_npz": True}, progress=False)
    assert counts["ok"] == 1 and counts["failed"] == 0
    outputs = {Path(p).name for p in _manifest(out)["wave.mp4"]["outputs"]}
    assert {"wave.jsonl", "results_wave.json", "wave_skeleton.mp4"} <= outputs
    assert any(name.endswith(".npz") for name in outputs)
