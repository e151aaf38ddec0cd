"""The supervisor: starts the live graph's stages, watches their heartbeats, restarts a crashed or
hung stage (up to ``max_restarts`` times each), lets end-of-stream flush every result, and stops
cleanly on SIGINT/SIGTERM.

Recorded files are *lossless* streams: when a detector, the person stage or the sink fails (or
a frame goes missing for ``gap_timeout``), the supervisor stops the detectors, the person stage
and the captures, takes the sink's count of the frames it has written (after a sink crash, the
restarted sink takes up its ``.part`` files: :mod:`posestream.stream.sinks.resume`), and starts
them again with each file capture at the first frame not yet written (*replay*), track ids going
on above those used. So a run that survives its faults ends with every frame, in order, and the
video's timing intact. Live sources (cameras, RTSP) restart only the failed stage and count the
frames lost.

Security: every stage gets the run's random token and (tcp) CURVE keys through its spec pipe
(:mod:`posestream.stream.graph.wire`, :mod:`posestream.stream.graph.endpoints`); stages run in
their own sessions and die with the supervisor; the run folders of supervisors that were killed
are removed at the next start, and the ``.part`` files they left are recovered.

Exit status of :meth:`Supervisor.run`: 0 every stream finished; 2 a source could not be opened,
or failed part-way (its results so far are written, the other streams go on to their end), or
the sink cannot use its PUB endpoint or output folder; 1 a stage failed more often than
allowed (the frames not written are counted in ``metrics.json``); 130 / 143 stopped by SIGINT /
SIGTERM (after the results so far were flushed and written; a second signal stops at once,
still renaming what was written).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from posestream.stream.config import RunConfig
from posestream.stream.capture.cameras import is_live, open_any_source, source_name
from posestream.stream.sinks.files import write_json_atomic
from posestream.stream.graph.wire import WireError, decode
from posestream.stream.graph.endpoints import (clean_stale_run_dirs, curve_keys_for_run, endpoints, run_dir, secure,
                                               start_authenticator)
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
    beats: int = 0  # heartbeats received since the last start


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
        g = config.graph
        # lossless: recorded files read as fast as the graph goes (not paced and dropped like a camera)
        self.lossless = [s for s, src in zip(self.streams, sources) if not is_live(src) and not (g.realtime and g.drop_late)]
        for folder in clean_stale_run_dirs():
            log.warning("removed %s, left by a run that was killed", folder)
        self.run_dir = run_dir()
        self.token = secrets.token_bytes(16)  # seals every message inside the graph (wire.py)
        self.keys = curve_keys_for_run(g.curve_keys) if g.transport == "tcp" else None
        self.endpoints = endpoints(config.to_dict()["graph"], self.run_dir, self.streams)
        base = {"config": config.to_dict(), "endpoints": self.endpoints, "token": self.token.hex(), "curve": self.keys,
                "parent_pid": os.getpid(), "streams": self.streams}
        detect_threads, person_threads = stage_threads(config)
        self.processes = [_Process({**base, "stage": "sink", "name": "sink", "out": str(self.out_dir),
                                    "lossless": self.lossless, "threads": 1}),
                          _Process({**base, "stage": "person", "name": "person", "threads": person_threads})]
        self.processes += [_Process({**base, "stage": "detect", "name": f"detect{i}", "threads": detect_threads})
                           for i in range(config.graph.detect_workers)]
        self.processes += [_Process({**base, "stage": "capture", "name": f"capture-{s}", "stream": s, "source": src,
                                     "max_frames": max_frames}) for s, src in zip(self.streams, sources)]
        self.interrupted: int | None = None
        self.replayed_at = 0.0
        self.lost_before = 0  # frames lost by stage processes since restarted
        self.malformed = 0  # malformed or forged heartbeats
        self.source_failed = False
        self.rss_timeline: list[float] = []  # MiB of all stages, once a minute

    def _start(self, process: _Process) -> None:
        # one thread each for the BLAS and OpenMP pools a stage might touch: the stages share the cores
        env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        # the spec (sources with their credentials, endpoints) goes through a pipe, not argv, which
        # every local user can read in the process list; argv only names the stage
        # its own session: a signal to the supervisor's process group (a terminal's Ctrl-C, kill -TERM
        # -PGID) reaches only the supervisor, which stops the stages in order
        process.popen = subprocess.Popen([sys.executable, "-m", "posestream.stream.graph", process.spec["name"]],
                                         env=env, stdin=subprocess.PIPE, start_new_session=True)
        try:
            process.popen.stdin.write(json.dumps(process.spec).encode())
            process.popen.stdin.close()
        except OSError:  # the process died at once: its exit status tells the supervisor
            pass
        self.lost_before += process.beat.get("counters", {}).get("lost", 0)  # a restart keeps its count
        process.started, process.last_beat, process.beat, process.beats = time.monotonic(), None, {}, 0

    def _sink_written(self) -> tuple[dict, dict, set]:
        """The sink's last reported ``written`` (stream → last frame id written), ``max_track_id``
        and finished streams."""
        extra = self.by_name["sink"].beat.get("extra", {})
        return extra.get("written", {}), extra.get("max_track_id", {}), set(extra.get("finished", []))

    def _start_again(self, process: _Process) -> None:
        """Start a stage again where the run stands: a sink takes up its files (the streams the
        earlier one finished stay finished), a person stage gives track ids above those used, a
        file capture starts after the last frame written, a camera's ids and times go on."""
        written, max_ids, finished = self._sink_written()
        person = self.by_name["person"].beat.get("extra", {})
        stage = process.spec["stage"]
        if stage == "sink":
            process.spec.update(resume=True, earlier={"finished": sorted(finished), "written": written})
        elif stage == "person":
            process.spec["first_track_ids"] = {s: max(int(max_ids.get(s, 0)) + 1, int(person.get("next_track_id", {})
                                                                                         .get(s, 1)))
                                               for s in self.streams}
        elif stage == "capture":
            stream = process.spec["stream"]
            if stream in self.lossless:
                process.spec["start_frame"] = int(written.get(stream, 0)) + 1
            elif is_live(process.spec["source"]):
                last = max(int(written.get(stream, 0)), int(person.get("last_frame_id", {}).get(stream, 0)))
                pts = self.by_name["sink"].beat.get("extra", {}).get("written_pts", {}).get(stream)
                process.spec.update(start_frame=last + 1, start_pts=0.0 if pts is None else float(pts) + 1.0)
        process.finished = False
        self._start(process)

    def _kill(self, process: _Process) -> None:
        if process.popen is not None and process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()

    def _restart(self, process: _Process, why: str) -> bool:
        """Bring a failed stage back; False when it has used up its restarts. With a lossless
        stream still going, a failed detector, person stage or sink means a replay (:meth:`_replay`)."""
        self._kill(process)
        if process.restarts >= self.config.graph.max_restarts:
            log.error("%s %s; no restarts left (%d)", process.spec["name"], why, process.restarts)
            return False
        process.restarts += 1
        _, _, finished = self._sink_written()
        if process.spec["stage"] != "capture" and any(s not in finished for s in self.lossless):
            log.warning("%s %s; replaying the files from the last frame written (%d of %d)", process.spec["name"],
                        why, process.restarts, self.config.graph.max_restarts)
            return self._replay(process)
        log.warning("%s %s; restarting (%d of %d)", process.spec["name"], why, process.restarts,
                    self.config.graph.max_restarts)
        self._start_again(process)
        return True

    def _wait(self, processes: list[_Process], ready, timeout: float) -> bool:
        """Take heartbeats until ``ready(process)`` holds for each (False: a timeout, an exit or a stop)."""
        end = time.monotonic() + timeout
        while not all(ready(p) for p in processes):
            if time.monotonic() > end or self.interrupted is not None or \
                    any(p.popen.poll() is not None for p in processes):
                return False
            self._poll_control(self.control, self.by_name)
        return True

    def _replay(self, failed: _Process) -> bool:
        """Stop the detectors, the person stage and the captures (and start a failed sink again,
        taking up its files); once the sink's count of written frames holds still, start them
        again, each file capture at its first frame not written."""
        g = self.config.graph
        chain = [p for p in self.processes if p.spec["stage"] in ("detect", "person", "capture")]
        for process in chain:
            self._kill(process)
        sink = self.by_name["sink"]
        if failed is sink:
            self._start_again(sink)
        # the sink writes what reached it before the kills; its count is final when two beats
        # sent after the kills agree. No deadline while it beats: taking up a long video takes time
        killed_at, seen = time.monotonic(), []

        def settled(process: _Process) -> bool:
            extra = process.beat.get("extra", {})
            if process.beat.get("state") == "running" and process.beats and (process.last_beat or 0) > killed_at + 0.2 \
                    and (not seen or seen[-1][0] != process.beats):
                seen.append((process.beats, extra.get("written")))
            return len(seen) >= 2 and seen[-1][1] == seen[-2][1]

        while not self._wait([sink], settled, g.heartbeat_timeout):
            if sink.popen.poll() is not None or self.interrupted is not None:
                return True  # the sink ended (its status decides) or the run is stopping: the main loop goes on
            if sink.last_beat is None or time.monotonic() - sink.last_beat > g.heartbeat_timeout:
                log.error("the sink did not report what it had written")
                return False
        _, _, finished = self._sink_written()
        restart = [p for p in chain if p.spec["stage"] != "capture" or p.spec["stream"] not in finished]
        for process in chain:
            if process not in restart:
                process.finished = True  # its stream is written to the end
        for process in restart:
            if process.spec["stage"] != "capture":
                self._start_again(process)
        if not self._wait([p for p in restart if p.spec["stage"] != "capture"],
                          lambda p: p.beat.get("state") == "running", g.startup_timeout):
            return self.interrupted is not None or self._fail_startup(restart)
        if self.interrupted is not None:
            return True  # stopping: no source is started again
        for process in restart:
            if process.spec["stage"] == "capture":
                self._start_again(process)
        self.replayed_at = time.monotonic()
        return True

    def _fail_startup(self, processes: list[_Process]) -> bool:
        log.error("the stages started for the replay did not come up: %s",
                  ", ".join(p.spec["name"] for p in processes if p.beat.get("state") != "running"))
        return False

    def _missing_frames(self, now: float) -> _Process | None:
        """The person stage when a lossless stream has waited over ``gap_timeout`` for a frame
        (a lost message, a slow worker's overflow) in the person stage or the sink."""
        g = self.config.graph
        if now - self.replayed_at < g.gap_timeout:
            return None
        person, sink = self.by_name["person"], self.by_name["sink"]
        waits = [p.beat.get("extra", {}).get("gap_s", 0) or 0 for p in (person, sink)]
        return person if max(waits) > g.gap_timeout else None

    def pids(self) -> dict[str, int]:
        """Process id of each running stage (for tests and operators)."""
        return {p.spec["name"]: p.popen.pid for p in self.processes if p.popen and p.popen.poll() is None}

    def _on_signal(self, signum, _frame) -> None:
        if self.interrupted is not None:  # second signal: stop now (the sink still renames what it wrote)
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
                beat = decode(control.recv_multipart(zmq.NOBLOCK), self.token).header
            except zmq.Again:
                return
            except WireError:
                self.malformed += 1
                continue
            process = by_name.get(beat.get("stage"))
            if process is not None and process.popen and beat.get("pid") == process.popen.pid:
                process.last_beat, process.beat = time.monotonic(), beat
                process.beats += 1

    def _check(self, process: _Process, now: float) -> int | None:
        """Watch one stage; returns an exit status when the run must end because of it."""
        g = self.config.graph
        if process.finished or process.popen is None:  # ended, or never started (a stop before the sources)
            return None
        code = process.popen.poll()
        if code is not None:
            if code == 0 and process.spec["stage"] in ("capture", "sink"):
                process.finished = True
                return None
            if code == EXIT_BAD_SOURCE and process.spec["stage"] in ("capture", "sink"):
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
        self._recover_parts()
        context = zmq.Context()
        auth = start_authenticator(context, self.keys)
        control = self.control = context.socket(zmq.PULL)
        secure(control, self.endpoints["control"], True, self.keys)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status = None
        by_name = self.by_name = {p.spec["name"]: p for p in self.processes}
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
                if process.spec["stage"] == "capture" and self.interrupted is None:  # stopped while starting: no source
                    self._start(process)
            sink = by_name["sink"]
            drained = None
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
                stalled = None if status is not None or self.interrupted is not None else self._missing_frames(now)
                if stalled is not None:
                    status = None if self._restart(stalled, f"left a frame missing for over {self.config.graph.gap_timeout:.0f} s") else 1
                if sink.finished:
                    status = 0
                if self.interrupted is not None and status is None:
                    deadline = deadline or now + 60
                    sources = [p for p in self.processes if p.spec["stage"] == "capture"
                               and p.popen is not None and p.popen.poll() is None]
                    if not sources:  # every source has ended: what is in flight gets gap_timeout to arrive
                        drained = drained or now + self.config.graph.gap_timeout
                    if drained is not None and now > drained:
                        status = 128 + int(self.interrupted)  # the sink is stopped below: it renames what it wrote
                    elif now > deadline:
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

    def _recover_parts(self) -> None:
        """Turn the ``.part`` files a killed run left for these streams into ``*.recovered.*`` files."""
        from posestream.stream.sinks.resume import recover

        for stream in self.streams:
            try:
                recovered = recover(self.out_dir, stream)
            except Exception as exc:  # never block a new run on an old run's leftovers
                log.warning("could not recover the unfinished outputs of %s (%s)", stream, exc)
                continue
            if recovered is not None and not recovered[1]:
                print(f"posestream: warning: {self.out_dir} held unfinished outputs of {stream} from an interrupted "
                      "run, with no frame complete in all of them; removed", file=sys.stderr)
            elif recovered is not None:
                taken, paths = recovered
                print(f"posestream: warning: {self.out_dir} held the unfinished outputs of an interrupted run; "
                      f"recovered {taken.frames} frames of {stream} into {', '.join(p.name for p in paths)}",
                      file=sys.stderr)

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
        metrics["lossless_streams"] = self.lossless
        metrics["lost_frames"] = self.lost_before + sum(p.beat.get("counters", {}).get("lost", 0) for p in self.processes)
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

