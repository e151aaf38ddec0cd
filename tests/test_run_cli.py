"""`posestream run` end to end on real files: the outputs' layout and every bad input."""

import json
import shutil
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import MODELS, shared_file
from media import truncated_copy
from posestream.stream.cli import main


def _run(capsys, *argv):
    code = main(["run", *map(str, argv), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def wave_run(tmp_path_factory):
    """One run on the first 40 frames of har-wave/wave.mp4 (in a subprocess: the console command)."""
    video = shared_file("media/har-wave/wave.mp4")
    out = tmp_path_factory.mktemp("wave")
    env_models = {"POSESTREAM_MODEL_DIR": str(MODELS)}
    done = subprocess.run([sys.executable, "-m", "posestream.stream.cli", "run", str(video), "--out", str(out),
                           "--max-frames", "40", "--quiet", "--view-3d"], capture_output=True, text=True,
                          env={**__import__("os").environ, **env_models})
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_jsonl_has_one_line_per_frame_with_every_field(wave_run):
    out, stdout = wave_run
    lines = [json.loads(line) for line in (out / "wave.jsonl").read_text().splitlines()]
    assert [line["frame_id"] for line in lines] == list(range(1, 41))
    assert [line["pts"] for line in lines] == pytest.approx([i / 10 for i in range(40)])  # 10 fps
    assert {(line["width"], line["height"]) for line in lines} == {(420, 420)}
    people = [inst for line in lines for inst in line["instances"]]
    assert len(people) >= 40  # the waving man is in every frame
    for inst in people:
        assert len(inst["bbox"]) == 4 and len(inst["keypoints"]) == 17 and len(inst["keypoint_scores"]) == 17
        assert all(0 <= s <= 1 for s in inst["keypoint_scores"])
        assert len(inst["extra_keypoints"]) == 4  # heels and foot tips
        assert np.array(inst["keypoints_3d"]).shape == (17, 3)  # the default lifter ran
    # one man, one track from the first frame; standing and waving one arm in frames 1-44
    # (tests/data/har-wave.csv), reported once the hysteresis (3 of 5 frames) holds
    assert [inst["track_id"] for line in lines for inst in line["instances"]] == [1] * len(people)
    settled = [line["instances"][0] for line in lines[3:]]
    assert {inst["posture"] for inst in settled} == {"standing"}
    assert sum(inst["gesture"] == "hello" for inst in settled) >= 0.9 * len(settled)
    first_events = [(e["track_id"], e["kind"], e["previous"], e["label"]) for line in lines[:3] for e in line["events"]]
    assert sorted(first_events) == [(1, "gesture", "none", "hello"), (1, "posture", "unknown", "standing")]
    assert "40 frames" in stdout


def test_keypoints_3d_agree_with_the_2d_and_a_human_body(wave_run):
    out, _ = wave_run
    people = [inst for line in (out / "wave.jsonl").read_text().splitlines() for inst in json.loads(line)["instances"]]
    k3 = np.array([inst["keypoints_3d"] for inst in people])  # (N, 17, 3) H36M-17, metres, camera axes
    k2 = np.array([inst["keypoints"] for inst in people])  # (N, 17, 2) COCO-17 pixels
    np.testing.assert_array_equal(k3[:, 0], 0)  # root-relative
    # the man faces the camera: his left shoulder is on the image's right in 2D and on camera x+ in 3D
    assert ((k3[:, 11, 0] > k3[:, 14, 0]) == (k2[:, 5, 0] > k2[:, 6, 0])).mean() > 0.9
    # head above the hips (y down) and human bone lengths: thigh, shin, upper arm in 0.2-0.6 m
    assert (k3[:, 10, 1] < k3[:, 0, 1] - 0.3).all()
    for a, b in ((1, 2), (2, 3), (4, 5), (5, 6), (11, 12), (14, 15)):
        length = np.linalg.norm(k3[:, a] - k3[:, b], axis=-1).mean()
        assert 0.2 < length < 0.6, (a, b, length)


def test_3d_view_video_is_the_frame_beside_its_skeletons(wave_run):
    out, _ = wave_run
    with av.open(str(out / "wave_3d.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 40
    assert frames[0].shape[0] == 420 and frames[0].shape[1] > 420 + 300  # a panel as tall as the frame
    panel = frames[-1][:, 440:]
    assert (panel.std(axis=(0, 1)) > 5).all()  # something drawn there, not a blank panel


def test_export_npz_of_the_run(wave_run, tmp_path, capsys):
    out, _ = wave_run
    assert main(["export-npz", str(out / "wave.jsonl"), "--out", str(tmp_path), "--track", "1"]) == 0
    data = np.load(tmp_path / "data_2d_custom_wave.npz", allow_pickle=True)
    (keypoints,) = data["positions_2d"].item()["wave"]["custom"]
    lines = [json.loads(line) for line in (out / "wave.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(keypoints, [line["instances"][0]["keypoints"] for line in lines], atol=1e-3)
    assert np.load(tmp_path / "wave_3d.npz")["positions_3d"].shape == (40, 17, 3)
    assert main(["export-npz", str(out / "wave.jsonl"), "--out", str(tmp_path), "--track", "99"]) == 2
    assert "track 99" in capsys.readouterr().err


def test_mmpose_predictions_layout(wave_run):
    out, _ = wave_run
    data = json.loads((out / "results_wave.json").read_text())
    assert data["meta_info"]["num_keypoints"] == 17
    assert data["meta_info"]["keypoint_id2name"]["9"] == "left_wrist"
    frames = data["instance_info"]
    assert frames[0]["frame_id"] == 1 and len(frames) == 40
    inst = frames[0]["instances"][0]
    assert set(inst) == {"keypoints", "keypoint_scores", "bbox", "bbox_score", "track_id"}
    assert len(inst["bbox"]) == 1 and len(inst["bbox"][0]) == 4


def test_annotated_video_keeps_rate_and_frame_count(wave_run):
    out, _ = wave_run
    with av.open(str(out / "wave.mp4")) as container:
        stream = container.streams.video[0]
        assert Fraction(stream.average_rate) == 10
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 40
    assert frames[0].shape == (420, 420, 3)
    assert not list(out.glob("*.part"))


def test_the_video_draws_what_the_jsonl_says_not_the_float_noise_below_it():
    """Two runs whose floats differ below the JSON lines' rounding (posestream batch against
    posestream run, 1e-5 apart) write the same file, so they must draw the same frame: a score of
    0.29996 or 0.30004 is 0.3 in the file, at the 0.3 threshold, and the limb is drawn both times;
    a keypoint at x 60.4999 or 60.5001 is 60.5 there, and is drawn at the same pixel."""
    from posestream.stream.results import FrameResult
    from posestream.stream.sinks.annotate import SkeletonAnnotator

    keypoints = np.tile(np.array([[130.5, 60.0]], np.float32), (17, 1))
    keypoints[5:] += np.arange(12, dtype=np.float32)[:, None] * [2, 9]  # a body down the middle ...
    keypoints[7], keypoints[9] = (60.5, 100.0), (60.5, 150.0)  # ... the left forearm hanging apart
    drawn = []
    for noise in (-4e-5, 4e-5):
        scores = np.full(17, 0.9, np.float32)
        scores[[7, 9]] = 0.3 + noise  # the left elbow and wrist: the forearm's line
        result = FrameResult(1, 0.0, 200, 200, np.array([[50, 50, 170, 170]], np.float32), np.array([0.745 + noise]),
                             (keypoints + np.float32(noise * 2.5))[None], scores[None])
        assert json.dumps(result.instances()) == json.dumps(FrameResult(
            1, 0.0, 200, 200, result.bboxes, np.array([0.745]), keypoints[None],
            np.where(np.arange(17) == 7, 0.3, np.where(np.arange(17) == 9, 0.3, 0.9))[None].astype(np.float32)
        ).instances())  # the same lines in the file
        drawn.append(SkeletonAnnotator().annotate(np.zeros((200, 200, 3), np.uint8), result))
    assert np.array_equal(drawn[0], drawn[1])
    # and the forearm is there: pixels of its colour (left limbs orange) between elbow and wrist
    elbow, wrist = keypoints[7], keypoints[9]
    middle = ((elbow + wrist) / 2).round().astype(int)
    assert drawn[0][middle[1], middle[0]].tolist() == [0, 128, 255]


_ENCODE = """
import sys
from posestream.offline.video_io import VideoWriter
from posestream.stream.capture.files import VideoFileSource
from posestream.stream.sinks.files import VideoSink

class Plain:
    def annotate(self, image, result):
        return image

source = VideoFileSource(sys.argv[1])
if sys.argv[3] == "sink":
    sink = VideoSink(sys.argv[2], source.fps, Plain())
    write = lambda frame: sink.write_annotated(frame.image, frame.pts)
else:
    sink = VideoWriter(sys.argv[2], float(source.fps))
    write = lambda frame: sink.write(frame.image)
for frame in source:
    if frame.frame_id > 30:
        break
    write(frame)
sink.close()
"""


@pytest.mark.parametrize("writer", ["sink", "offline"])
def test_the_same_frames_encode_to_the_same_file_whatever_the_heap_held(tmp_path, writer):
    """The video of the same frames is the same file whatever memory the process held before
    (posestream batch, whose worker encodes a 420 px video after a 720 px one, against posestream
    run), from the run's VideoSink and from the offline module's VideoWriter. glibc's
    MALLOC_PERTURB_ fills freshly allocated heap memory with a byte of our choosing (and the mmap
    threshold keeps every buffer on that heap): an encoder that reads memory it never wrote gives
    different files for different bytes. x264's macroblock-tree look-ahead did at a width of
    420 px (three different files for three bytes)."""
    video = shared_file("media/har-wave/wave.mp4")
    files = set()
    for fill in ("1", "77", "200"):
        out = tmp_path / f"fill{fill}.mp4"
        env = {**__import__("os").environ, "MALLOC_PERTURB_": fill, "MALLOC_MMAP_THRESHOLD_": str(1 << 30)}
        done = subprocess.run([sys.executable, "-c", _ENCODE, str(video), str(out), writer], capture_output=True,
                              text=True, env=env)
        assert done.returncode == 0, done.stderr
        files.add(out.read_bytes())
    assert len(files) == 1


def test_image_folder_input(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("000000000785.jpg", "000000196141.jpg"):
        shutil.copy(shared_file(f"media/mmpose-testdata/coco/{name}"), folder)
    code, _, err = _run(capsys, folder, "--out", tmp_path / "out")
    assert code == 0, err
    lines = [json.loads(line) for line in (tmp_path / "out" / "images.jsonl").read_text().splitlines()]
    assert [line["image"] for line in lines] == ["000000000785.jpg", "000000196141.jpg"]
    assert len(lines[0]["instances"]) >= 1
    assert sorted(p.name for p in (tmp_path / "out" / "images_annotated").iterdir()) == \
        ["000000000785.jpg", "000000196141.jpg"]


def test_missing_file_is_one_clear_line(tmp_path, capsys):
    code, _, err = _run(capsys, tmp_path / "nothing.mp4", "--out", tmp_path / "out")
    assert code == 2
    assert err.strip().splitlines() == [f"posestream: error: no such file: {tmp_path / 'nothing.mp4'}"]


def test_a_file_that_is_not_a_video(tmp_path, capsys):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is text, not video")
    code, _, err = _run(capsys, fake, "--out", tmp_path / "out")
    assert code == 2
    assert "is not a readable video" in err and len(err.strip().splitlines()) == 1


def test_truncated_video_keeps_the_frames_before_the_error(tmp_path, capsys):
    truncated = truncated_copy(shared_file("media/har-stand/stand.mp4"), tmp_path)
    code, _, err = _run(capsys, truncated, "--out", tmp_path / "out")
    assert code == 2
    assert "truncated or corrupt" in err and len(err.strip().splitlines()) == 1
    lines = (tmp_path / "out" / "cut.jsonl").read_text().splitlines()
    assert 10 < len(lines) < 106
    assert json.loads(lines[-1])["frame_id"] == len(lines)
    with av.open(str(tmp_path / "out" / "cut.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(lines)
    assert len(json.loads((tmp_path / "out" / "results_cut.json").read_text())["instance_info"]) == len(lines)


def test_unreadable_model(tmp_path, capsys):
    video = shared_file("media/har-wave/wave.mp4")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    code, _, err = _run(capsys, video, "--out", tmp_path / "out", "--det", junk)
    assert code == 2
    assert "junk.onnx: not a loadable ONNX model" in err


def test_model_with_wrong_hash(tmp_path, capsys, monkeypatch):
    video = shared_file("media/har-wave/wave.mp4")
    models = tmp_path / "models"
    models.mkdir()
    damaged = bytearray(shared_file("models/yolox_nano.onnx").read_bytes())
    damaged[-1] ^= 0xFF
    (models / "yolox_nano.onnx").write_bytes(bytes(damaged))
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(models))
    code, _, err = _run(capsys, video, "--out", tmp_path / "out", "--det", "yolox-nano")
    assert code == 2
    assert "yolox-nano" in err and "sha256" in err


def test_model_with_wrong_input_shape(tmp_path, capsys):
    """The BlazePose model given as the detector: refused, naming what it expected and what it got."""
    video = shared_file("media/har-wave/wave.mp4")
    code, _, err = _run(capsys, video, "--out", tmp_path / "out", "--det", shared_file("models/blazepose_landmark_full.onnx"))
    assert code == 2
    assert "not a person detector" in err and "input_1[" in err and "256,256,3]" in err


def test_config_file_with_a_typo_is_refused(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("pipeline:\n  detecter: yolox-nano\n")
    code, _, err = _run(capsys, shared_file("media/har-wave/wave.mp4"), "--out", tmp_path / "out", "--config", config)
    assert code == 2 and "unknown pipeline settings: detecter" in err


def test_shipped_config_loads():
    from pathlib import Path

    from posestream.stream.config import RunConfig

    config = RunConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / "run.yaml")
    assert config == RunConfig()
    text = (Path(__file__).resolve().parents[1] / "configs" / "run.yaml").read_text()
    # every key is written out, these too
    for key in ("stretched_leg_shank: 1.3", "legs_only_tilt: 30.0", "knee_error_3d_ambiguous: 1.0",
                "reid_appearance: 0.6"):
        assert f"\n  {key}" in text


def test_decoder_error_part_way_is_raised_after_the_good_frames(tmp_path):
    """A cut inside a frame's data makes the decoder fail (not just end early): frames before it
    come out, then one SourceError naming the frame."""
    from posestream.stream.capture.files import SourceError, VideoFileSource

    path = tmp_path / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(60):
            image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    seen = []
    with pytest.raises(SourceError, match=r"truncated or corrupt"):
        for frame in VideoFileSource(path):
            seen.append(frame.frame_id)
    assert 5 < len(seen) < 60 and seen == list(range(1, len(seen) + 1))


def test_models_lists_the_zoo_and_fetch_finds_a_local_file(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in ("yolox-nano", "rtmdet-nano", "rtmpose-m", "blazepose-full"):
        assert name in listing
    shared_file("models/yolox_nano.onnx")
    assert main(["models", "--fetch", "yolox-nano"]) == 0
    assert capsys.readouterr().out.strip() == str(MODELS / "yolox_nano.onnx")


def test_config_with_an_unknown_section_or_bad_value_is_refused(tmp_path):
    from posestream.stream.config import RunConfig

    config = tmp_path / "run.yaml"
    config.write_text("tracker:\n  detect_interval: 3\n")
    with pytest.raises(ValueError, match="unknown sections tracker"):
        RunConfig.from_yaml(config)
    config.write_text("tracking:\n  detect_interval: 0\n")
    with pytest.raises(ValueError, match="detect_interval"):
        RunConfig.from_yaml(config)
    config.write_text("classify:\n  rules: mine\n")
    with pytest.raises(ValueError, match="rules"):
        RunConfig.from_yaml(config)
    assert RunConfig.from_yaml(None, {"tracking": {"detect_interval": 5}}).tracking.detect_interval == 5


def test_a_sink_failing_near_the_end_fails_the_run_and_leaves_no_gap(tmp_path, real_pipeline, monkeypatch):
    """The writer thread runs a few frames behind: an error there must still end the run with
    that error, and the files must hold exactly the frames before it (nothing written after)."""
    from posestream.stream.run import run_source
    from posestream.stream.sinks.files import JsonLinesSink

    original = JsonLinesSink.write_record

    def failing(self, record):
        if record["frame_id"] == 17:
            raise OSError(28, "No space left on device")
        original(self, record)

    monkeypatch.setattr(JsonLinesSink, "write_record", failing)
    video = shared_file("media/har-wave/wave.mp4")
    with pytest.raises(OSError, match="No space left"):
        run_source(video, tmp_path, real_pipeline, max_frames=20, write_video=False, progress=False)
    frame_ids = [json.loads(line)["frame_id"] for line in (tmp_path / "wave.jsonl").read_text().splitlines()]
    assert frame_ids == list(range(1, 17))
    assert not list(tmp_path.glob("*.part"))


def test_view_3d_without_matplotlib_leaves_nothing_behind(tmp_path, real_pipeline, monkeypatch):
    from posestream.stream.run import run_source
    from posestream.stream.sinks import annotate

    def missing(self, *args, **kwargs):
        raise ImportError("the 3D view needs matplotlib: pip install 'posestream[view]'")

    monkeypatch.setattr(annotate.Pose3DAnnotator, "__init__", missing)
    with pytest.raises(ImportError, match="posestream\\[view\\]"):
        run_source(shared_file("media/har-wave/wave.mp4"), tmp_path, real_pipeline, lifter=object(), view_3d=True,
                   max_frames=3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_oversized_and_corrupt_images_in_a_folder_are_skipped_and_named(tmp_path, capsys):
    """One unreadable image and one over --max-image-pixels in a folder are skipped, reported
    and counted; the others are processed. A single oversized image is refused in one line."""
    import cv2

    from posestream.stream.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    frames = []
    from posestream.offline.video_io import read_frames

    frames, _, _ = read_frames(shared_file("media/har-wave/wave.mp4"), max_frames=2)
    cv2.imwrite(str(folder / "a.jpg"), frames[0])
    cv2.imwrite(str(folder / "b.jpg"), frames[1])
    (folder / "c.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    cv2.imwrite(str(folder / "d.png"), np.zeros((1000, 1000, 3), np.uint8))  # 1 MP
    out = tmp_path / "out"
    code = main(["run", str(folder), "--out", str(out), "--max-image-pixels", "500000", "--no-video", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 frames, 2 images skipped" in captured.out
    assert "skipped c.jpg" in captured.err and "skipped d.png" in captured.err and "1000x1000" in captured.err
    lines = (out / "images.jsonl").read_text().splitlines()
    assert [json.loads(line)["image"] for line in lines] == ["a.jpg", "b.jpg"]
    code = main(["run", str(folder / "d.png"), "--out", str(out), "--max-image-pixels", "500000", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "over the limit of 500000" in err
