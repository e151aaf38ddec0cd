"""The classifier on the labelled shared clips (tests/data/*.csv, made by looking at the frames):
the default rules must be right on most person-frames of every clip and beat the reference."""

import numpy as np
import pytest

from conftest import REPO, shared_file
from posestream.offline.classify_eval import (LABELLED_CLIPS, NEGATIVE_CLIPS, classify_frames, label_rates, load_labels,
                                              pairs, score)
from posestream.stream.classify.rules import ClassifierConfig, classify_instance
from posestream.stream.pipeline import PoseStream
from posestream.stream.capture.files import open_source
from posestream.stream.lift.stage import LiftConfig
from posestream.stream.track.tracker import TrackerConfig


@pytest.fixture(scope="module")
def clip_scores(real_pipeline):
    """clip → {(rules, kind): (truth, predicted)} over the labelled person-frames."""
    out = {}
    lifter = LiftConfig().load()  # the shipped causal lifter: the default posture reads its depth
    for labels_name, video in LABELLED_CLIPS.items():
        path = shared_file(f"media/{video}")
        stream = PoseStream(real_pipeline, TrackerConfig(), classify=None, lifter=lifter)  # as `run` does
        results = [stream(frame) for frame in open_source(path)]
        spans = load_labels(REPO / "tests" / "data" / labels_name)
        out[labels_name] = {}
        for rules in ("default", "hafizas"):
            labels = classify_frames(results, ClassifierConfig(rules=rules))
            for kind in ("posture", "gesture"):
                out[labels_name][rules, kind] = pairs(spans, results, labels, kind)
    return out


@pytest.mark.parametrize("kind, per_clip", [("posture", 0.8), ("gesture", 0.9)])
def test_default_rules_are_right_on_every_clip(clip_scores, kind, per_clip):
    for clip, scores in clip_scores.items():
        truth, predicted = scores["default", kind]
        _, accuracy = score(truth, predicted, ())
        assert accuracy >= per_clip, f"{clip}: {kind} accuracy {accuracy:.3f}"


@pytest.mark.parametrize("kind, pooled", [("posture", 0.9), ("gesture", 0.95)])
def test_default_rules_beat_the_reference(clip_scores, kind, pooled):
    both = {}
    for rules in ("default", "hafizas"):
        truth = sum((s[rules, kind][0] for s in clip_scores.values()), [])
        predicted = sum((s[rules, kind][1] for s in clip_scores.values()), [])
        both[rules] = score(truth, predicted, ())[1]
    assert both["default"] >= pooled
    assert both["default"] > both["hafizas"] + 0.05


@pytest.mark.parametrize("kind", ["posture", "gesture"])
def test_default_rules_at_least_the_reference_on_every_clip(clip_scores, kind):
    """Issue 14's bar, per clip: the default rules score at least the reference's frame accuracy
    (within one person-frame, for the model's numerics on another machine)."""
    for clip, scores in clip_scores.items():
        accuracy = {rules: score(*scores[rules, kind], ())[1] for rules in ("default", "hafizas")}
        one_frame = 1 / len(scores["default", kind][0])
        assert accuracy["default"] >= accuracy["hafizas"] - one_frame - 1e-9, f"{clip}: {kind} {accuracy}"


def test_partial_view_is_unknown_not_guessed(clip_scores):
    """mediapipe-hand-reach shows no legs: the default abstains where the reference guesses."""
    truth, predicted = clip_scores["mediapipe-hand-reach.csv"]["default", "posture"]
    assert np.mean(np.array(predicted) == "unknown") >= 0.85
    _, guessed = clip_scores["mediapipe-hand-reach.csv"]["hafizas", "posture"]
    assert np.mean(np.array(guessed) != "unknown") > 0.5  # the reference always answers


def test_a_person_150_px_tall_in_a_screen_recording_is_one_person_read_right(real_pipeline):
    """har-wave (hello, then stop) shrunk into a 1920×1080 screen recording, its man about 150 px
    tall as the people of issue 14's held-out office video: the tiles find him in ≥ 90 % of the
    frames (from a few frames in), never as two people, and his gestures and posture are read
    as labelled."""
    from posestream.offline.composite import screen_frames

    path = shared_file("media/har-wave/wave.mp4")
    stream = PoseStream(real_pipeline, TrackerConfig(), classify=None, lifter=LiftConfig().load())
    scale = 150 / 393  # the man's box is 393 px tall in the 420 × 420 clip (median over its frames)
    results = [stream(frame) for frame in screen_frames(open_source(path), scale)]
    assert results[0].width == 1920 and max(len(r) for r in results) == 1
    found = [len(r) == 1 for r in results]
    assert np.mean(found) >= 0.9
    spans = load_labels(REPO / "tests" / "data" / "har-wave.csv")
    labels = classify_frames(results, ClassifierConfig())
    for kind in ("posture", "gesture"):
        _, accuracy = score(*pairs(spans, results, labels, kind), ())
        assert accuracy >= 0.9, f"{kind} accuracy {accuracy:.3f}"


@pytest.mark.parametrize("video", list(NEGATIVE_CLIPS), ids=[v.split("/")[0] for v in NEGATIVE_CLIPS])
def test_nobody_is_read_sitting_or_gesturing_where_nobody_does(real_pipeline, video):
    """Pedestrians seen from a raised camera (opencv-vtest) and readers standing at a table with
    their backs to one above them (intel-one-by-one-person): the lifter once read a quarter of the
    pedestrians' frames sitting and the readers' hands on the table raised; the default rules
    read ≤ 1 % of the person-frames sitting and ≤ 5 % hello or stop, no more than the reference."""
    stream = PoseStream(real_pipeline, TrackerConfig(), classify=None, lifter=LiftConfig().load())
    results = [stream(frame) for frame in open_source(shared_file(f"media/{video}"))]
    rates = {rules: label_rates(classify_frames(results, ClassifierConfig(rules=rules)))
             for rules in ("default", "hafizas")}
    n, default = rates["default"]
    _, reference = rates["hafizas"]
    assert n >= 500  # people were found
    assert default["sitting"] <= 0.01 and default["sitting"] <= reference["sitting"], rates
    assert default["hello"] + default["stop"] <= 0.05, rates
    assert default["hello"] + default["stop"] <= reference["hello"] + reference["stop"], rates


def test_labels_file_errors_name_the_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("person,start,end,posture,gesture\n1,1,5,standing,none\n1,9,3,standing,none\n")
    with pytest.raises(ValueError, match="row 3: end 3 before start 9"):
        load_labels(bad)
    bad.write_text("person,start,end,posture,gesture\n1,1,5,lying,none\n")
    with pytest.raises(ValueError, match="unknown label 'lying'"):
        load_labels(bad)
    bad.write_text("who,start,end\n")
    with pytest.raises(ValueError, match="header"):
        load_labels(bad)
    good = tmp_path / "good.csv"
    good.write_text("# comment\nperson,start,end,posture,gesture\ntrack:4,2,3,ignore,stop\n")
    span = load_labels(good)[0]
    assert (span.track_id, span.person, span.start, span.end, span.posture, span.gesture) == (4, None, 2, 3, "ignore", "stop")


def test_people_in_still_photographs_by_cocos_own_keypoints():
    """The shared COCO images' people labelled by eye (tests/data/coco-mini-postures.csv: 37
    standing, 5 sitting: sports, kitchens, crowds, spectators) read through COCO's keypoints by the
    2D default rules: every seated person sitting, at most one standing person sitting (the
    reference reads 7 so), and the standing people whose shoulders are out of the picture
    standing from their legs alone (unknown without legs_only_tilt)."""
    from posestream.offline.classify_eval import load_coco_postures

    shared_file("media/coco-mini/annotations/person_keypoints_val2017.json")
    people = load_coco_postures(REPO / "tests" / "data" / "coco-mini-postures.csv", shared_file("media"))
    assert [p["posture"] for p in people].count("sitting") == 5 and len(people) == 42
    flat = ClassifierConfig(posture_source="2d", gesture_source="2d")

    def read(config, who):
        return [classify_instance(p["keypoints"], p["keypoint_scores"], None, config)[0] for p in who]

    sitting = [p for p in people if p["posture"] == "sitting"]
    standing = [p for p in people if p["posture"] == "standing"]
    assert read(flat, sitting) == ["sitting"] * 5
    assert read(flat, standing).count("sitting") <= 1
    assert read(ClassifierConfig(rules="hafizas"), standing).count("sitting") >= 5
    legs_only = [p for p in standing if not p["keypoint_scores"][[5, 6]].any()]
    assert len(legs_only) == 5
    assert read(flat, legs_only).count("standing") >= 4
    from posestream.stream.classify.rules import torso_length  # no torso: "unknown" before legs_only_posture
    assert all(torso_length(p["keypoints"], p["keypoint_scores"] > 0) is None for p in legs_only)
