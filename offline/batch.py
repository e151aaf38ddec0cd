"""``posestream batch``: ``posestream run`` over many recordings, resumably, on Ray.

Inputs are files, folders (searched recursively for ``--ext``) or text files listing paths one per
line. Each video goes to a worker that loaded the models once (a Ray actor; in-process for
``--workers 1`` without Ray) and writes exactly what ``posestream run`` writes for it, with the
same settings, into ``DIR/<path relative to its input folder>/`` (so byte-identical files: the
same code, :func:`posestream.stream.run.run_source`, the same ONNX Runtime thread count).

``DIR/batch.jsonl`` is the manifest, rewritten atomically after every video: one line per video
(absolute paths: ``input``, ``sha256``, ``status`` ok/failed/skipped, ``frames``, ``persons``, ``seconds``,
``error``, ``outputs`` with their sha256). ``--resume`` skips videos whose manifest line is ok
for the same input sha256 and whose outputs still exist with their recorded sha256. A video that
fails is recorded and the batch goes on; a worker that dies (killed, out of memory) is replaced
and its video retried once; Ctrl-C stops after writing the manifest of what finished.

Ray (``pip install "posestream[batch]"``): a local instance for the run (``num_cpus`` =
workers, bound to 127.0.0.1, Ray's token authentication on), shut down after; ``--address``
joins an existing cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from posestream.engines.download import sha256_of
from posestream.stream.capture.files import safe_name

log = logging.getLogger(__name__)

#: Video file extensions searched in folders by default.
DEFAULT_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
MANIFEST = "batch.jsonl"
#: Attempts per video when the worker running it dies.
ATTEMPTS = 2
RAY_MISSING = ("posestream batch with more than one worker (or --address) needs Ray: "
               "pip install 'posestream[batch]' (--workers 1 runs without it)")


@dataclass(frozen=True)
class Job:
    """One video: its path and the output folder it gets (``DIR/<relative folder>``)."""

    path: Path
    out_dir: Path


def collect_jobs(inputs: list[str], out: Path, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS) -> list[Job]:
    """The videos named by ``inputs`` (files; folders, recursively; ``.txt``/``.lst`` lists of
    paths, one per line, ``#`` comments), each with its output folder.

    Raises:
        FileNotFoundError: an input that does not exist. ValueError: no video at all, or two
            videos that would write the same output names.
    """
    jobs: list[Job] = []
    out = out.resolve()
    for item in inputs:
        path = Path(item).resolve()
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            for video in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions):
                jobs.append(Job(video, out / video.parent.relative_to(path)))
        elif path.suffix.lower() in (".txt", ".lst"):
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line) if Path(line).is_absolute() else path.parent / line
                    jobs.append(Job(listed.resolve(), out))
        else:
            jobs.append(Job(path, out))
    if not jobs:
        raise ValueError(f"no video found in {', '.join(inputs)} (extensions {', '.join(extensions)})")
    seen: dict[tuple[Path, str], Path] = {}
    for job in jobs:
        key = (job.out_dir, safe_name(job.path.stem))
        if key in seen and seen[key] != job.path:
            raise ValueError(f"{seen[key]} and {job.path} would both write {job.out_dir / key[1]}.*: "
                             "put them in different folders")
        seen[key] = job.path
    return list(dict.fromkeys(jobs))


class VideoWorker:
    """Loads the models once and runs :func:`~posestream.stream.run.run_source` on video after video.

    Args:
        config: a :class:`posestream.stream.config.RunConfig` as a dict (``to_dict``) — the same
            settings ``posestream run --config`` would use.
        options: {"write_video", "skeleton", "export_npz", "no_track"}.
    """

    def __init__(self, config: dict, options: dict):
        from posestream.stream.config import RunConfig
        from posestream.stream.pipeline import PosePipeline

        self.config = RunConfig.from_dict(config)
        self.options = options
        self.pipeline = PosePipeline.from_config(self.config.pipeline)
        self.lifter = self.config.lift.load() if self.config.lift.enabled else None

    def process(self, path: str, out_dir: str) -> dict:
        """Run one video; never raises for a bad video: returns its manifest fields."""
        from posestream.stream.run import run_source

        start = time.perf_counter()
        record = {"input": str(path), "status": "failed", "frames": 0, "persons": 0, "error": None, "outputs": {}}
        try:
            record["sha256"] = sha256_of(Path(path))
            summary = run_source(path, out_dir, self.pipeline,
                                 tracking=None if self.options.get("no_track") else self.config.tracking,
                                 classify=self.config.classify, lifter=self.lifter,
                                 lift_min_extent=self.config.lift.min_extent,
                                 write_video=self.options.get("write_video", True), progress=False)
            outputs = list(summary.outputs)
            record.update(frames=summary.frames, persons=summary.people)
            jsonl = next((p for p in outputs if p.suffix == ".jsonl"), None)
            if jsonl is not None and self.options.get("skeleton"):
                outputs += self._skeleton(jsonl, out_dir)
            if jsonl is not None and self.options.get("export_npz"):
                from posestream.offline.export import export_npz

                outputs += list(export_npz(jsonl, out_dir))
            record["outputs"] = {str(p): sha256_of(p) for p in outputs if Path(p).is_file()}
            record["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 -- a bad video is recorded, the batch goes on
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["seconds"] = round(time.perf_counter() - start, 3)
        return record

    @staticmethod
    def _skeleton(jsonl: Path, out_dir: str) -> list[Path]:
        from posestream.offline.skeleton import rate_from_pts, read_results, write_skeleton_video

        results = read_results(jsonl)
        if not results:
            return []
        summary = write_skeleton_video(results, rate_from_pts([r.pts for r in results]), out_dir, jsonl.stem,
                                       progress=False)
        return list(summary.outputs)


class Manifest:
    """``DIR/batch.jsonl``: the latest record of each input, rewritten atomically on every change."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[record["input"]] = record

    def done(self, job: Job) -> bool:
        """Whether ``--resume`` may skip ``job``: ok before, same input bytes, outputs intact."""
        record = self.records.get(str(job.path))
        if not record or record.get("status") not in ("ok", "skipped") or not job.path.is_file():
            return False
        if record.get("sha256") != sha256_of(job.path):
            return False
        outputs = record.get("outputs") or {}
        return bool(outputs) and all(Path(p).is_file() and sha256_of(Path(p)) == h for p, h in outputs.items())

    def put(self, record: dict) -> None:
        """Record (or replace) ``record["input"]``'s line and rewrite the manifest atomically."""
        from posestream.engines.files import atomic_output

        self.records[record["input"]] = record
        with atomic_output(self.path) as tmp:
            Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in self.records.values()))


def _init_ray(address: str | None, workers: int):
    if address:
        # Ray's token authentication (the default of `ray start` since Ray 2.5x): a driver joining
        # by an explicit address uses it only when asked, before Ray is imported;
        # RAY_AUTH_MODE=disabled opts out
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_MISSING) from exc
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 _node_ip_address="127.0.0.1")
    return ray


def run_batch(jobs: list[Job], config, out: Path, workers: int = 1, address: str | None = None,
              resume: bool = False, options: dict | None = None, progress: bool = True, use_ray: bool | None = None,
              gpus_per_worker: float | None = None) -> dict:
    """Process ``jobs``; returns {"ok", "failed", "skipped", "frames", "seconds", "manifest"}.

    Args:
        jobs: :func:`collect_jobs`. config: a :class:`~posestream.stream.config.RunConfig`.
        workers: parallel workers; each gets ``cores / workers`` ONNX Runtime threads unless the
            config sets ``pipeline.threads``. address: a Ray cluster to join (None: local).
        resume: skip the videos :meth:`Manifest.done` accepts. options: see :class:`VideoWorker`.
        use_ray: None: Ray for more than one worker or an address; True: Ray even for one
            (to measure its overhead).
        gpus_per_worker: GPUs each Ray actor asks for (default: 1 / workers on a CUDA or
            TensorRT device, else 0).
    """
    from tqdm import tqdm

    options = options or {}
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out / MANIFEST)
    todo = []
    skipped = 0
    for job in jobs:
        if resume and manifest.done(job):
            skipped += 1
        else:
            todo.append(job)
    config_dict = config.to_dict()
    if not config_dict["pipeline"].get("threads"):
        config_dict["pipeline"]["threads"] = max(1, (os.cpu_count() or 1) // max(1, workers))
    counts = {"ok": 0, "failed": 0, "skipped": skipped, "frames": 0}
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", desc="batch", disable=not progress)

    def record(result: dict) -> None:
        manifest.put(result)
        counts["ok" if result["status"] == "ok" else "failed"] += 1
        counts["frames"] += result.get("frames", 0)
        bar.update(1)
        bar.set_postfix(failed=counts["failed"])

    try:
        if not (use_ray or (use_ray is None and (workers > 1 or address))):
            worker = VideoWorker(config_dict, options) if todo else None
            for job in todo:
                record(worker.process(str(job.path), str(job.out_dir)))
        elif todo:
            _run_ray(todo, config_dict, options, workers, address, record, gpus_per_worker)
    finally:
        bar.close()
    counts["seconds"] = time.perf_counter() - start
    counts["manifest"] = manifest.path
    return counts


def _run_ray(todo: list[Job], config_dict: dict, options: dict, workers: int, address: str | None, record,
             gpus_per_worker: float | None = None) -> None:
    """Schedule ``todo`` over ``workers`` Ray actors; a dead actor is replaced and its video retried once.
    Each actor asks Ray for one CPU and, on a CUDA/TensorRT device, ``gpus_per_worker`` GPUs
    (default: one GPU shared by all workers)."""
    ray = _init_ray(address, workers)
    try:
        import ray.exceptions as rex

        # a worker gone: killed, out of memory (Ray's memory monitor), its node or process lost
        gone = tuple(getattr(rex, name) for name in ("RayActorError", "OutOfMemoryError", "NodeDiedError",
                                                      "WorkerCrashedError", "ObjectLostError") if hasattr(rex, name))

        device = str(config_dict["pipeline"].get("device", "cpu"))
        gpus = gpus_per_worker if gpus_per_worker is not None else (
            1.0 / workers if device.startswith(("cuda", "tensorrt")) else 0.0)
        if gpus > 0 and ray.cluster_resources().get("GPU", 0) < gpus:
            raise ValueError(f"the Ray cluster has no GPU for device {device!r} (each worker asks {gpus:g}): "
                             "use --device cpu or a cluster with GPUs")
        Actor = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(VideoWorker)
        actors = [Actor.remote(config_dict, options) for _ in range(min(workers, len(todo)))]
        queue = [(job, 1) for job in todo]
        running = {}
        idle = list(actors)
        while queue or running:
            while queue and idle:
                job, attempt = queue.pop(0)
                actor = idle.pop()
                running[actor.process.remote(str(job.path), str(job.out_dir))] = (actor, job, attempt)
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            actor, job, attempt = running.pop(ref)
            try:
                result = ray.get(ref)
                idle.append(actor)
            except gone as exc:  # the worker died: replace it, retry the video once
                log.warning("worker died on %s: %s", job.path, str(exc).splitlines()[0])
                idle.append(Actor.remote(config_dict, options))
                if attempt < ATTEMPTS:
                    queue.append((job, attempt + 1))
                    continue
                result = {"input": str(job.path), "status": "failed", "frames": 0, "persons": 0, "seconds": 0.0,
                          "error": f"the worker died twice on this video ({str(exc).splitlines()[0]})", "outputs": {}}
            record(result)
    finally:
        ray.shutdown()


def _batch(args: argparse.Namespace) -> int:
    from posestream.stream.config import RunConfig

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    extensions = tuple(e if e.startswith(".") else "." + e for e in args.ext.lower().split(",") if e)
    out = Path(args.out)
    jobs = collect_jobs(args.inputs, out, extensions)
    config = RunConfig.from_yaml(args.config, {"lift": {"enabled": False if args.no_lift else None},
                                               "pipeline": {"device": args.device}})
    config.check_models()
    options = {"write_video": not args.no_video, "skeleton": args.skeleton, "export_npz": args.export_npz,
               "no_track": args.no_track}
    if (args.workers > 1 or args.address) and importlib.util.find_spec("ray") is None:
        raise ImportError(RAY_MISSING)  # before any output folder or model
    try:
        counts = run_batch(jobs, config, out, workers=args.workers, address=args.address, resume=args.resume,
                           options=options, progress=not args.quiet, gpus_per_worker=args.gpus_per_worker)
    except KeyboardInterrupt:
        print(f"posestream: interrupted; {out / MANIFEST} lists what finished", file=sys.stderr)
        return 130
    seconds = max(counts["seconds"], 1e-9)
    done = counts["ok"] + counts["failed"]
    print(f"{len(jobs)} videos: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; "
          f"{done / seconds:.2f} videos/s, {counts['frames'] / seconds:.1f} frames/s over {seconds:.1f} s")
    these = {str(job.path) for job in jobs}
    failed = [r for r in Manifest(out / MANIFEST).records.values() if r["status"] == "failed" and r["input"] in these]
    for r in failed:
        print(f"  failed {r['input']}: {r['error']}", file=sys.stderr)
    print(f"  wrote {counts['manifest']}")
    return 1 if failed else 0


def batch_command(sub) -> None:
    """Add ``posestream batch INPUTS… --out DIR [--workers N] [--address A] [--resume] …`` to ``sub``."""
    parser = sub.add_parser(
        "batch", parents=[sub.parent_parser], help="posestream run over many videos, resumably, on Ray",
        description="Run the pipeline on every video of INPUTS (files, folders searched recursively, or text "
                    "files listing paths) with the outputs of 'posestream run' for each, in DIR mirroring the "
                    "input folders, and a manifest DIR/batch.jsonl. Workers load the models once; with more "
                    "than one, they are Ray actors (pip install 'posestream[batch]').")
    parser.add_argument("inputs", nargs="+", help="video files, folders, or .txt lists of paths")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel workers (default 1: in-process, no Ray)")
    parser.add_argument("--address", help="join a Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: local)")
    parser.add_argument("--resume", action="store_true", help="skip videos whose outputs exist and match the manifest")
    parser.add_argument("--ext", default=",".join(DEFAULT_EXTENSIONS), help="extensions searched in folders")
    parser.add_argument("--config", help="YAML settings (configs/run.yaml layout), as posestream run --config")
    parser.add_argument("--no-video", action="store_true", help="no annotated videos")
    parser.add_argument("--no-track", action="store_true", help="no tracking")
    parser.add_argument("--no-lift", action="store_true", help="no 3D lifting")
    parser.add_argument("--skeleton", action="store_true", help="also a skeleton video per input (posestream skeleton)")
    parser.add_argument("--export-npz", action="store_true", help="also VideoPose3D npz files per input")
    parser.add_argument("--device", help="cpu, cuda, tensorrt (default: the config's)")
    parser.add_argument("--gpus-per-worker", type=float,
                        help="GPUs each Ray actor asks for (default: 1/workers on cuda/tensorrt, else 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_batch)
