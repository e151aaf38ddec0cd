"""The supervisor: starts the live graph's stages, watches their heartbeats, restarts a crashed or
hung stage (up to ``max_restarts`` times each), lets end-of-stream flush every result, and stops
cleanly on SIGINT/SIGTERM.

Exit status of :meth:`Supervisor.run`: 0 every stream finished; 2 a source could not be opened,
or failed part-way (its results so far are written, the other streams go on to their end);
1 a stage failed more often than allowed; 130 / 143 stopped by SIGINT / SIGTERM (after the
results so far were flushed and written).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from posestream.stream.config import RunConfig
from posestream.stream.capture.cameras import open_any_source, source_name
from posestream.stream.sinks.files import write_json_atomic
from posestream.stream.graph.wire import WireError, decode
from posestream.stream.graph.endpoints import endpoints, ipc_run_dir, secure, start_authenticator
from posestream.stream.graph.stages import EXIT_BAD_SOURCE, EXIT_SOURCE_FAILED

log = logging.getLogger("posestream.supervisor")


@dataclass
class _Process:
    spec: dict
    popen: subprocess.Popen | None = None
    started: float = 0.0
    last_beat: float | None = None
    beat: dict = field(default_factory=dict)
    restarts: int = 0
    peak_rss_mb: float = 0.0
    finished: bool = False


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """A process's peak (``VmHWM``) or current (``VmRSS``) resident memory on Linux, MiB; 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def stream_ids(sources: list[str]) -> list[str]:
    """A unique id per source: :func:`posestream.stream.capture.cameras.source_name`, numbered when two are alike."""
    ids = []
    for spec in sources:
        base = source_name(spec)
        name, k = base, 2
        while name in ids:
            name, k = f"{base}_{k}", k + 1
        ids.append(name)
    return ids


def stage_threads(config: RunConfig, cores: int | None = None) -> tuple[int, int]:
    """ONNX Runtime intra-op threads of each detector process and of the person stage.

    ``pipeline.threads`` > 0 is used as it is. Otherwise (0, auto) the cores are shared out:
    each of the N detector workers gets ``cores // (N + 1)`` and the person stage (pose, the
    heaviest model) ``cores // 2``, at least 1 each — at most about 1.5 × the cores in all, and
    the detectors and the person stage seldom run at full load together (ONNX Runtime does not
    spin). The capture, sink and BLAS/OpenMP pools of every stage get one thread.

    Returns:
        ``(detect_threads, person_threads)``.
    """
    if config.pipeline.threads > 0:
        return config.pipeline.threads, config.pipeline.threads
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // (config.graph.detect_workers + 1)), max(1, cores // 2)


class Supervisor:
    """Runs one live graph.

    Args:
        sources: source specs (camera index or device, RTSP URL, video file), one stream each.
        config: all settings (``graph``, ``sinks`` and the pipeline sections).
        out_dir: output folder (one set of files per stream, and ``metrics.json``).
        max_frames: stop each file source after this many frames.
    """

    def __init__(self, sources: list[str], config: RunConfig, out_dir: str | Path, max_frames: int | None = None):
        self.config, self.out_dir = config, Path(out_dir)
        self.streams = stream_ids(sources)
        self.run_dir = ipc_run_dir() if config.graph.transport == "ipc" else tempfile.mkdtemp(prefix="posestream-")
        self.endpoints = endpoints(config.to_dict()["graph"], self.run_dir, self.streams)
        base = {"config": config.to_dict(), "endpoints": self.endpoints}
        detect_threads, person_threads = stage_threads(config)
        self.processes = [_Process({**base, "stage": "sink", "name": "sink", "out": str(self.out_dir),
                                    "streams": self.streams, "threads": 1}),
                          _Process({**base, "stage": "person", "name": "person", "threads": person_threads})]
        self.processes += [_Process({**base, "stage": "detect", "name": f"detect{i}", "threads": detect_threads})
                           for i in range(config.graph.detect_workers)]
        self.processes += [_Process({**base, "stage": "capture", "name": f"capture-{s}", "stream": s, "source": src,
                                     "max_frames": max_frames}) for s, src in zip(self.streams, sources)]
        self.interrupted: int | None = None
        self.malformed = 0  # malformed heartbeats
        self.source_failed = False
        self.rss_timeline: list[float] = []  # MiB of all stages, once a minute

    def _start(self, process: _Process) -> None:
        # one thread each for the BLAS and OpenMP pools a stage might touch: the stages share the cores
        env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        # the spec (sources with their credentials, endpoints) goes through a pipe, not argv, which
        # every local user can read in the process list; argv only names the stage
        process.popen = subprocess.Popen([sys.executable, "-m", "posestream.stream.graph", process.spec["name"]],
                                         env=env, stdin=subprocess.PIPE)
        try:
            process.popen.stdin.write(json.dumps(process.spec).encode())
            process.popen.stdin.close()
        except OSError:  # the process died at once: its exit status tells the supervisor
            pass
        process.started, process.last_beat, process.beat = time.monotonic(), None, {}

    def _restart(self, process: _Process, why: str) -> bool:
        """Kill and start again; False when it has used up its restarts."""
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()
        if process.restarts >= self.config.graph.max_restarts:
            log.error("%s %s; no restarts left (%d)", process.spec["name"], why, process.restarts)
            return False
        process.restarts += 1
        log.warning("%s %s; restarting (%d of %d)", process.spec["name"], why, process.restarts,
                    self.config.graph.max_restarts)
        self._start(process)
        return True

    def pids(self) -> dict[str, int]:
        """Process id of each running stage (for tests and operators)."""
        return {p.spec["name"]: p.popen.pid for p in self.processes if p.popen and p.popen.poll() is None}

    def _on_signal(self, signum, _frame) -> None:
        if self.interrupted is not None:  # second signal: stop now
            for p in self.processes:
                if p.popen and p.popen.poll() is None:
                    p.popen.kill()
            raise KeyboardInterrupt
        self.interrupted = signum
        log.warning("stopping: the sources end, the results so far are flushed")
        for p in self.processes:
            if p.spec["stage"] == "capture" and p.popen and p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)

    def _poll_control(self, control: zmq.Socket, by_name: dict[str, _Process]) -> None:
        """Take the heartbeats that arrive within 0.1 s (malformed ones counted)."""
        if not control.poll(100):
            return
        while True:
            try:
                beat = decode(control.recv_multipart(zmq.NOBLOCK)).header
            except zmq.Again:
                return
            except WireError:
                self.malformed += 1
                continue
            process = by_name.get(beat.get("stage"))
            if process is not None and process.popen and beat.get("pid") == process.popen.pid:
                process.last_beat, process.beat = time.monotonic(), beat

    def _check(self, process: _Process, now: float) -> int | None:
        """Watch one stage; returns an exit status when the run must end because of it."""
        g = self.config.graph
        code = process.popen.poll()
        if process.finished:
            return None
        if code is not None:
            if code == 0 and process.spec["stage"] in ("capture", "sink"):
                process.finished = True
                return None
            if code == EXIT_BAD_SOURCE and process.spec["stage"] == "capture":
                return 2
            if code == EXIT_SOURCE_FAILED and process.spec["stage"] == "capture":
                process.finished, self.source_failed = True, True  # its EOS is on its way
                return None
            if self.interrupted is not None and process.spec["stage"] == "capture":
                process.finished = True
                return None
            return None if self._restart(process, f"exited with status {code}") else 1
        if process.last_beat is None:
            if now - process.started > g.startup_timeout:
                return None if self._restart(process, f"sent no heartbeat in {g.startup_timeout:.0f} s") else 1
            return None
        if now - process.last_beat > g.heartbeat_timeout:
            return None if self._restart(process, f"silent for {now - process.last_beat:.1f} s") else 1
        busy = process.beat.get("busy")
        if busy is not None and busy > g.hang_timeout:
            return None if self._restart(process, f"busy with one message for {busy:.0f} s") else 1
        return None

    def run(self) -> int:
        """Start everything and supervise until the sink has written every stream's results."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        context = zmq.Context()
        auth = start_authenticator(context, self.config.graph.curve_keys)
        control = context.socket(zmq.PULL)
        secure(control, self.endpoints["control"], True, self.config.graph.curve_keys)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status = None
        by_name = {p.spec["name"]: p for p in self.processes}
        try:
            # the sources start once every other stage has loaded its models: no stale backlog
            for process in self.processes:
                if process.spec["stage"] != "capture":
                    self._start(process)
            waiting = [p for p in self.processes if p.spec["stage"] != "capture"]
            started = time.monotonic()
            while any(p.beat.get("state") != "running" for p in waiting) and self.interrupted is None:
                if time.monotonic() - started > self.config.graph.startup_timeout or \
                        any(p.popen.poll() is not None for p in waiting):
                    break  # the watch loop below restarts or fails whatever is wrong
                self._poll_control(control, by_name)
            for process in self.processes:
                if process.spec["stage"] == "capture":
                    self._start(process)
            sink = by_name["sink"]
            deadline, last_memory, last_timeline = None, 0.0, time.monotonic()
            while status is None:
                self._poll_control(control, by_name)
                now = time.monotonic()
                for process in self.processes:
                    status = status or self._check(process, now)
                    if process.popen and process.popen.poll() is None and now - last_memory > 1.0:
                        process.peak_rss_mb = max(process.peak_rss_mb, rss_mb(process.popen.pid))
                if now - last_timeline >= 60:  # memory over time: bounded or growing?
                    last_timeline = now
                    self.rss_timeline.append(round(sum(rss_mb(p.popen.pid, "VmRSS") for p in self.processes
                                                       if p.popen and p.popen.poll() is None), 1))
                last_memory = last_memory if now - last_memory <= 1.0 else now
                if sink.finished:
                    status = 0
                if self.interrupted is not None:
                    deadline = deadline or now + 60
                    if now > deadline:
                        log.error("the graph did not flush within 60 s of the stop")
                        status = 1
            if status == 0 and self.interrupted is not None:
                status = 128 + int(self.interrupted)
            elif status == 0 and self.source_failed:
                status = 2
            return status
        except KeyboardInterrupt:
            return 130
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            self._stop_all()
            self._drain(control, by_name)
            self._write_metrics()
            if auth is not None:
                auth.stop()
            context.destroy(linger=0)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _drain(self, control: zmq.Socket, by_name: dict[str, _Process]) -> None:
        """Take the last heartbeats the stages sent as they stopped (their final counters)."""
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            self._poll_control(control, by_name)

    def _stop_all(self) -> None:
        for p in self.processes:
            if p.popen and p.popen.poll() is None:
                p.popen.terminate()
        end = time.monotonic() + 5
        for p in self.processes:
            if p.popen:
                try:
                    p.popen.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.popen.kill()
                    p.popen.wait()

    def _write_metrics(self) -> None:
        """Add every stage's counters and restarts to the sink's ``metrics.json``."""
        path = self.out_dir / "metrics.json"
        try:
            metrics = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            metrics = {}
        metrics["stages"] = {p.spec["name"]: {"restarts": p.restarts, "counters": p.beat.get("counters", {}),
                                              "peak_rss_mb": round(p.peak_rss_mb, 1)} for p in self.processes}
        metrics["peak_rss_mb_total"] = round(sum(p.peak_rss_mb for p in self.processes), 1)
        metrics["rss_mb_per_minute"] = self.rss_timeline
        metrics["control_malformed"] = self.malformed
        metrics["exit_interrupted"] = self.interrupted is not None
        try:
            write_json_atomic(path, metrics)
        except OSError:
            log.exception("could not write %s", path)


def check_sources(sources: list[str]) -> None:
    """Open each source once and close it, so that a missing file or camera is one error line
    before any stage process starts.

    Raises:
        posestream.stream.capture.files.SourceError: a source cannot be opened.
    """
    for spec in sources:
        open_any_source(spec).close()  # an RTSP camera only connects when read: it reconnects anyway


def run_live(sources: list[str], config: RunConfig, out_dir: str | Path, max_frames: int | None = None) -> int:
    """Run the live graph on ``sources`` until they end (files) or a signal stops it (cameras)."""
    return Supervisor(sources, config, out_dir, max_frames).run()

