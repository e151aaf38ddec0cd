"""Posture and gesture accuracy of the default rules (with the lifter's depth, and 2D alone), the
reference (hafizas) rules and the hand-aware (hands) rules, side by side.

    python tools/eval_classify.py VIDEO LABELS.csv [VIDEO LABELS.csv ...]
    python tools/eval_classify.py --shared          # the labelled shared clips (tests/data/*.csv)
    python tools/eval_classify.py --shared --cv     # + leave-one-clip-out cross-validation
    python tools/eval_classify.py --shared --hands --cv   # hand keypoints on: the 'hands' rules read them
    python tools/eval_classify.py --shared --composite 150  # each clip's people 150 px tall in a 1080p screen recording
    python tools/eval_classify.py --negatives       # shared clips where nobody sits or gestures: what is read there
    python tools/eval_classify.py --shared --negatives --lift-checks  # + what the checks on the 3D pose measure

Runs the tracked and lifted pipeline once per video (with ``--composite``, on the video and then
on its screen recording; ``--cache DIR`` keeps its JSON lines for the next run), classifies the
same keypoints with each rule variant, and prints per-clip frame accuracy and pooled per-class
precision / recall / F1 (labels format: offline/classify_eval.py).

``--cv``: for each clip, the default rules' free settings (:data:`GRID`) are chosen on the
*other* clips (best mean of posture and gesture accuracy there) and scored on the held-out clip;
printed beside the fixed defaults and the reference rules on the same clip. Frame accuracy on
clips the settings were chosen on is not a result: read the held-out column.

``--negatives``: the shared clips of ``NEGATIVE_CLIPS`` (offline/classify_eval.py), where nobody
sits and nobody gestures, as filmed: per clip and rule variant, the share of the reported
person-frames read sitting, hello and stop (all of them errors) and unknown.

``--lift-checks``: per clip, what the default rules' checks on the lifter's 3D pose measure
(offline/classify_eval.py ``lift_checks``): percentiles of the knee error (torso lengths; the
3D pose reads the posture up to ``knee_error_3d``) and of the 3D rise of the arms 2D alone reads
raised (degrees; not raised under ``forearm_rise_3d``).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from posestream.offline.classify_eval import (LABELLED_CLIPS, KINDS, NEGATIVE_CLIPS, classify_frames,  # noqa: E402
                                              label_rates, lift_checks, load_labels, pairs, score)
from posestream.stream.classify.rules import GESTURES, ClassifierConfig  # noqa: E402
from posestream.stream.config import RunConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline, PoseStream  # noqa: E402
from posestream.stream.capture.files import open_source  # noqa: E402
from posestream.offline.composite import PLAYER, QUALITY, SCREEN, placement, screen_frames  # noqa: E402

#: Rule variants compared: name → overrides of the configured classifier settings.
VARIANTS = {"default": {"rules": "default", "posture_source": "2d+3d", "gesture_source": "2d+3d"},
            "default-2d": {"rules": "default", "posture_source": "2d", "gesture_source": "2d"},
            "default-3d": {"rules": "default", "posture_source": "3d"},
            "hafizas": {"rules": "hafizas"},
            "hands": {"rules": "hands", "posture_source": "2d+3d", "gesture_source": "2d+3d"}}
RULES = tuple(VARIANTS)
#: Settings of the default rules searched by --cv (each a few values around the default).
GRID = {"short_thigh": (0.35, 0.45, 0.55), "hands_apart": (0.4, 0.5, 0.6), "face_distance": (0.25, 0.35),
        "first_hold": (0.0, 0.1), "arm_keypoint_threshold": (0.3, 0.5), "posture_hold": (0.3, 0.15),
        "unknown_hold": (0.3, 0.6, 1.0)}
#: Settings of the hand-aware rules searched by --cv (waving window, slowest rate, swing; how low a stop palm may be).
HANDS_GRID = {"wave_window": (1.5, 3.0), "wave_min_hz": (0.25, 1.0), "wave_amplitude": (0.5, 1.0),
              "stop_below_shoulder": (0.3, 0.5)}


def shared_media() -> Path:
    """The shared media folder: ``$POSESTREAM_SHARED/media`` (default ``../shared/media``)."""
    return Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared")) / "media"


def print_lift_checks(name: str, results: list, config: ClassifierConfig) -> None:
    """One line: percentiles of :func:`lift_checks`' knee errors and rises on a clip."""
    import numpy as np

    errors, rises = lift_checks(results, config)
    line = f"  {name}: knee error (torso) "
    if len(errors):
        p = np.percentile(errors, [10, 50, 95, 99])
        line += (f"10/50/95/99th {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} / {p[3]:.2f} of {len(errors)}, "
                 f"{np.mean(errors > config.knee_error_3d):.2f} over {config.knee_error_3d:g}")
    else:
        line += "none measured"
    if len(rises):
        p = np.percentile(rises, [1, 50])
        line += (f"; arms 2D reads raised, 3D rise 1st/50th {p[0]:.0f} / {p[1]:.0f} deg of {len(rises)}, "
                 f"{np.mean(rises < config.forearm_rise_3d):.2f} under {config.forearm_rise_3d:g}")
    print(line)


def shared_pairs() -> list[tuple[Path, Path]]:
    return [(shared_media() / video, REPO / "tests" / "data" / labels) for labels, video in LABELLED_CLIPS.items()]


def print_negatives(make_stream, cache: Path | None, run_key: str, rule_configs: dict, checks: bool = False) -> None:
    """What each rule variant reads on the :data:`NEGATIVE_CLIPS` (nobody sits or gestures
    there): shares of the reported person-frames; with ``checks``, :func:`print_lift_checks`."""
    print("\nwhere nobody sits or gestures (NEGATIVE_CLIPS): share of the reported person-frames read")
    for video, what in NEGATIVE_CLIPS.items():
        print(f"  {Path(video).parent.name}: {what}")
    print(f"{'clip':34s} {'rules':10s} {'frames':>6s} {'sitting':>8s} {'hello':>7s} {'stop':>7s} {'unknown':>8s}")
    for video in NEGATIVE_CLIPS:
        path = shared_media() / video
        results = cached_results(make_stream, lambda: open_source(path), cache, f"{Path(video).stem}-{run_key}")
        for rules, config in rule_configs.items():
            n, shares = label_rates(classify_frames(results, config))
            print(f"{Path(video).parent.name:34s} {rules:10s} {n:6d} {shares['sitting']:8.3f} {shares['hello']:7.3f} "
                  f"{shares['stop']:7.3f} {shares['unknown']:8.3f}")
        if checks:
            print_lift_checks(Path(video).parent.name, results, rule_configs["default"])


def track_frames(stream: PoseStream, frames) -> list:
    """Tracked (and lifted) results of every frame of an iterable of
    :class:`~posestream.stream.capture.files.Frame` (no labels, no images kept)."""
    results = []
    for frame in frames:
        results += [r for _, r in stream.process(frame)]
    return results + [r for _, r in stream.flush()]


def cached_results(stream_factory, frames_factory, cache: Path | None, name: str) -> list:
    """:func:`track_frames` of ``frames_factory()``, read from / written to ``cache/<name>.jsonl``
    when a cache folder is given (``name`` carries a key of the settings and lifter the results
    were made with)."""
    import json

    from posestream.engines.files import atomic_output
    from posestream.stream.results import FrameResult

    path = cache / f"{name}.jsonl" if cache else None
    if path is not None and path.is_file():
        return [FrameResult.from_json(json.loads(line)) for line in path.read_text().splitlines() if line]
    results = track_frames(stream_factory(), frames_factory())
    if path is not None:
        with atomic_output(path) as tmp:
            Path(tmp).write_text("".join(json.dumps(r.to_json()) + "\n" for r in results))
    return results


def person_height(results: list) -> float:
    """Median height in pixels of the people's boxes over a clip's results.

    Raises:
        ValueError: no one was found in the clip."""
    import numpy as np

    heights = [h for r in results for h in (r.bboxes[:, 3] - r.bboxes[:, 1])]
    if not heights:
        raise ValueError("no person found in the clip: nothing to scale")
    return float(np.median(heights))


def accuracies(results: list, spans: list, config: ClassifierConfig) -> tuple[float, float]:
    """(posture, gesture) frame accuracy of one clip under ``config`` (NaN where nothing is labelled)."""
    labels = classify_frames(results, config)
    return tuple(score(*pairs(spans, results, labels, kind), ())[1] for kind in KINDS)


def cross_validate(clips: dict, base: ClassifierConfig, grid: dict | None = None) -> None:
    """Leave-one-clip-out choice of ``grid`` settings (default :data:`GRID`) of the ``base``
    rules (the best mean accuracy on the other clips; ties go to the setting nearest ``base``);
    prints held-out accuracies per clip beside the fixed ``base`` and the reference."""
    import itertools
    import math

    import numpy as np

    grid = GRID if grid is None else grid
    names = list(grid)
    candidates = [ClassifierConfig(**{**base.__dict__, **dict(zip(names, values))})
                  for values in itertools.product(*grid.values())]
    table = np.array([[accuracies(results, spans, c) for results, spans in clips.values()] for c in candidates])
    reference = [accuracies(r, s, ClassifierConfig(rules="hafizas")) for r, s in clips.values()]
    fixed = [accuracies(r, s, base) for r, s in clips.values()]
    print(f"\n{base.rules} rules: leave-one-clip-out over {len(candidates)} settings of {', '.join(names)}")
    print(f"{'held-out clip':28s} {'posture: cv':>11s} {base.rules:>8s} {'hafizas':>8s}   {'gesture: cv':>11s} "
          f"{base.rules:>8s} {'hafizas':>8s}   chosen on the other clips")
    held = []
    for j, clip in enumerate(clips):
        others = [i for i in range(len(clips)) if i != j]
        merit = np.nanmean(table[:, others, :].reshape(len(candidates), -1), axis=1)
        # among settings equally good on the other clips, the one closest to ``base`` (fewest
        # settings changed): a tie is no evidence for moving away from the defaults
        tied = np.flatnonzero(merit >= np.nanmax(merit) - 1e-9)
        best = int(min(tied, key=lambda i: sum(getattr(candidates[i], n) != getattr(base, n) for n in names)))
        held.append(table[best, j])
        chosen = ", ".join(f"{n}={getattr(candidates[best], n):g}" for n in names)
        cells = [table[best, j, 0], fixed[j][0], reference[j][0], table[best, j, 1], fixed[j][1], reference[j][1]]
        text = ["{:>11s}".format("-") if math.isnan(v) else f"{v:11.3f}" for v in cells[:1]]
        text += ["{:>8s}".format("-") if math.isnan(v) else f"{v:8.3f}" for v in cells[1:3]]
        text += ["  {:>11s}".format("-") if math.isnan(cells[3]) else f"  {cells[3]:11.3f}"]
        text += ["{:>8s}".format("-") if math.isnan(v) else f"{v:8.3f}" for v in cells[4:]]
        print(f"{clip:28s} " + " ".join(text) + f"   {chosen}")
    held = np.array(held)
    print(f"{'mean over clips':28s} {np.nanmean(held[:, 0]):11.3f} {np.nanmean([f[0] for f in fixed]):8.3f} "
          f"{np.nanmean([r[0] for r in reference]):8.3f}   {np.nanmean(held[:, 1]):11.3f} "
          f"{np.nanmean([f[1] for f in fixed]):8.3f} {np.nanmean([r[1] for r in reference]):8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="*", help="VIDEO LABELS.csv pairs")
    parser.add_argument("--shared", action="store_true", help="evaluate the labelled shared clips")
    parser.add_argument("--config", help="YAML settings (configs/run.yaml layout)")
    parser.add_argument("--detect-interval", type=int)
    parser.add_argument("--detect-tile", type=int, help="pipeline.detect_tile: tile side in pixels, 0 = no tiles")
    parser.add_argument("--cv", action="store_true",
                        help="leave-one-clip-out cross-validation of the default and of the hands rules' settings")
    parser.add_argument("--full-grid", action="store_true", help="--cv of the hands rules over GRID and HANDS_GRID together")
    parser.add_argument("--cache", type=Path, help="folder keeping each clip's tracked results (JSON lines)")
    parser.add_argument("--hands", action="store_true",
                        help="run the pipeline with hand keypoints (pipeline.hands), read by the 'hands' rules "
                             "(without them those rules fall back to the arms and the wrists' waving)")
    parser.add_argument("--negatives", action="store_true",
                        help="also read the shared clips where nobody sits or gestures (NEGATIVE_CLIPS)")
    parser.add_argument("--lift-checks", action="store_true",
                        help="per clip, percentiles of the knee error and forearm rise the checks on the 3D pose read")
    parser.add_argument("--composite", type=float, metavar="PX",
                        help="score each clip scaled into a 1920x1080 screen recording (a player beside a "
                             "terminal, JPEG-compressed; offline/composite.py), its people's boxes PX tall "
                             "(median), instead of the clip itself")
    args = parser.parse_args()
    if args.composite is not None and not (math.isfinite(args.composite) and args.composite > 0):
        parser.error(f"--composite is a height in pixels > 0, not {args.composite:g}")
    if len(args.pairs) % 2:
        parser.error("give VIDEO LABELS.csv pairs")
    clips = [(Path(a), Path(b)) for a, b in zip(args.pairs[::2], args.pairs[1::2])]
    if args.shared:
        clips += shared_pairs()
    if not clips and not args.negatives:
        parser.error("nothing to evaluate")
    if args.cv and len(clips) < 2:
        parser.error("--cv leaves one clip out: give at least two")
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(shared_media().parent / "models"))
    try:
        config = RunConfig.from_yaml(args.config, {"tracking": {"detect_interval": args.detect_interval},
                                                   "pipeline": {"hands": True if args.hands else None,
                                                                "detect_tile": args.detect_tile}})
    except (OSError, ValueError) as exc:  # a missing file or a bad value: one line
        parser.error(str(exc))
    pipeline = PosePipeline.from_config(config.pipeline)
    rule_configs = {name: ClassifierConfig(**{**config.classify.__dict__, **v}) for name, v in VARIANTS.items()}
    lifter = config.lift.load()
    # the cache holds tracked, lifted results: keyed by the settings and the lifter's weights
    import json

    settings = json.dumps([config.pipeline.__dict__, config.tracking.__dict__, config.lift.__dict__], sort_keys=True,
                          default=str)
    weights = config.lift.path.read_bytes() if config.lift.enabled else b""
    run_key = hashlib.sha256(settings.encode() + weights).hexdigest()[:12]

    def make_stream() -> PoseStream:  # a fresh stream (tracks, filters, lifter state) per video
        return PoseStream(pipeline, config.tracking, classify=None, lifter=lifter, lift_min_extent=config.lift.min_extent)

    if clips:
        evaluate_labelled(clips, args, make_stream, run_key, rule_configs)
    if args.negatives:
        print_negatives(make_stream, args.cache, run_key, rule_configs, args.lift_checks)


def evaluate_labelled(clips: list, args, make_stream, run_key: str, rule_configs: dict) -> None:
    """Per-clip and pooled accuracies of every rule variant on labelled ``clips`` ((video,
    labels) pairs), as filmed or in a screen recording (``args.composite``), and the
    cross-validations (``args.cv``)."""
    pooled = {(rules, kind): ([], []) for rules in RULES for kind in KINDS}
    kept = {}
    print(f"{'clip':28s} {'frames':>6s}  " + "  ".join(f"{kind} acc {r:10s}" for kind in KINDS for r in RULES))
    for video, labels_path in clips:
        spans = load_labels(labels_path)
        results = cached_results(make_stream, lambda: open_source(video), args.cache, f"{labels_path.stem}-{run_key}")
        if args.composite:  # the same clip scaled into a screen recording: its people args.composite px tall
            try:  # (their height measured on the clip as tracked with these settings)
                scale = args.composite / person_height(results)
                placement(results[0].width, results[0].height, scale)  # fits the player, or one line now
            except ValueError as exc:
                raise SystemExit(f"eval_classify: {labels_path.stem}: {exc}") from None
            print(f"{labels_path.stem}: scaled {scale:.3f} into the recording", file=sys.stderr)
            recording = hashlib.sha256(repr((SCREEN, PLAYER, QUALITY, round(scale, 9))).encode()).hexdigest()[:8]
            results = cached_results(make_stream, lambda: screen_frames(open_source(video), scale, QUALITY),
                                     args.cache, f"{labels_path.stem}-{run_key}-screen{recording}")
        kept[labels_path.stem] = (results, spans)
        cells = []
        for kind in KINDS:
            for rules in RULES:
                labels = classify_frames(results, rule_configs[rules])
                truth, predicted = pairs(spans, results, labels, kind)
                pooled[rules, kind][0].extend(truth)
                pooled[rules, kind][1].extend(predicted)
                _, accuracy = score(truth, predicted, ())
                cells.append(f"{accuracy:22.3f}" if truth else f"{'-':>22s}")
        print(f"{labels_path.stem:28s} {len(results):6d}  " + "  ".join(cells))

    for kind, classes in (("posture", ("standing", "sitting", "unknown")), ("gesture", GESTURES)):
        print(f"\n{kind}: pooled over {len(pooled['default', kind][0])} labelled person-frames")
        print(f"{'class':10s} {'support':>7s}  " + "  ".join(f"{r + ' P':>10s} {'R':>6s} {'F1':>6s}" for r in RULES))
        per_rules = {r: score(*pooled[r, kind], classes) for r in RULES}
        for cls in classes:
            row = [f"{per_rules[r][0][cls].precision:10.3f} {per_rules[r][0][cls].recall:6.3f} "
                   f"{per_rules[r][0][cls].f1:6.3f}" for r in RULES]
            print(f"{cls:10s} {per_rules['default'][0][cls].support:7d}  " + "  ".join(row))
        print(f"{'accuracy':10s} {'':7s}  " + "  ".join(f"{per_rules[r][1]:24.3f}" for r in RULES))
        if kind == "gesture":  # what a hand-aware reading should cut: hellos where there is no gesture
            false = {r: sum(t == "none" and p == "hello" for t, p in zip(*pooled[r, kind])) for r in RULES}
            print(f"{'false hello':10s} {'':7s}  " + "  ".join(f"{false[r]:24d}" for r in RULES)
                  + "   (person-frames labelled none, read hello)")
    if args.lift_checks:
        print("\nwhat the checks on the 3D pose measure (default rules):")
        for name, (results, _) in kept.items():
            print_lift_checks(name, results, rule_configs["default"])
    if args.cv:
        cross_validate(kept, rule_configs["default"])
        cross_validate(kept, rule_configs["hands"], {**GRID, **HANDS_GRID} if args.full_grid else HANDS_GRID)


if __name__ == "__main__":
    main()
