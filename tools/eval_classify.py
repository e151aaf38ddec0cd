"""Posture and gesture accuracy of the default rules (posture from 2D, and from the lifter's 3D) and the
reference (hafizas) rules, side by side.

    python tools/eval_classify.py VIDEO LABELS.csv [VIDEO LABELS.csv ...]
    python tools/eval_classify.py --shared          # the labelled shared clips (tests/data/*.csv)

Runs the tracked and lifted pipeline once per video, classifies the same keypoints with each rule
variant, and prints per-clip frame accuracy and pooled per-class precision / recall / F1
(labels format: offline/classify_eval.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from posestream.offline.classify_eval import LABELLED_CLIPS, KINDS, classify_frames, load_labels, pairs, score  # noqa: E402
from posestream.stream.classify.rules import GESTURES, ClassifierConfig  # noqa: E402
from posestream.stream.config import RunConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline, PoseStream  # noqa: E402
from posestream.stream.capture.files import open_source  # noqa: E402

#: Rule variants compared: name → overrides of the configured classifier settings.
VARIANTS = {"default": {"rules": "default", "posture_source": "2d"},
            "default-3d": {"rules": "default", "posture_source": "3d"},
            "hafizas": {"rules": "hafizas"}}
RULES = tuple(VARIANTS)


def shared_pairs() -> list[tuple[Path, Path]]:
    media = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared")) / "media"
    return [(media / video, REPO / "tests" / "data" / labels) for labels, video in LABELLED_CLIPS.items()]


def track_video(stream: PoseStream, video: Path) -> list:
    """Tracked (and lifted) results of every frame (no labels, no images kept)."""
    results = []
    for frame in open_source(video):
        results += [r for _, r in stream.process(frame)]
    return results + [r for _, r in stream.flush()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="*", help="VIDEO LABELS.csv pairs")
    parser.add_argument("--shared", action="store_true", help="evaluate the labelled shared clips")
    parser.add_argument("--config", help="YAML settings (configs/run.yaml layout)")
    parser.add_argument("--detect-interval", type=int)
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give VIDEO LABELS.csv pairs")
    clips = [(Path(a), Path(b)) for a, b in zip(args.pairs[::2], args.pairs[1::2])]
    if args.shared:
        clips += shared_pairs()
    if not clips:
        parser.error("nothing to evaluate")
    config = RunConfig.from_yaml(args.config, {"tracking": {"detect_interval": args.detect_interval}})
    pipeline = PosePipeline.from_config(config.pipeline)
    rule_configs = {name: ClassifierConfig(**{**config.classify.__dict__, **v}) for name, v in VARIANTS.items()}
    lifter = config.lift.load()

    pooled = {(rules, kind): ([], []) for rules in RULES for kind in KINDS}
    print(f"{'clip':28s} {'frames':>6s}  " + "  ".join(f"{kind} acc {r:10s}" for kind in KINDS for r in RULES))
    for video, labels_path in clips:
        spans = load_labels(labels_path)
        results = track_video(PoseStream(pipeline, config.tracking, classify=None, lifter=lifter), video)
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


if __name__ == "__main__":
    main()
