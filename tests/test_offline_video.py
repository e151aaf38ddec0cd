"""Skeleton videos, superimposing and side-by-side comparison (posestream skeleton / superimpose /
compare), and the space and time alignment under them.

References are independent of the code under test: colours are FOLLOW_YOUR_POSE.md §5's decoded
RGB values written out here, keypoints come from the pipeline's JSON lines, frame counts and
rates are read back with PyAV / PIL, and synthetic clips carry their frame index as a bar length.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import shared_file
from posestream.offline.align import ResizeCrop
from posestream.offline.video_io import read_frames, write_video
from posestream.stream.cli import main
from posestream.stream.results import FrameResult

# FOLLOW_YOUR_POSE.md §5, decoded RGB
GREEN_RGB, AZURE_RGB, ORANGE_RGB = (0, 255, 0), (0, 128, 255), (255, 153, 51)
BAR_STEP = 3  # synthetic clips: frame k shows a white bar BAR_STEP·(k+1) pixels long
BAR_ROWS = slice(40, 56)


def _probe(path: Path) -> tuple[int, float]:
    """(decoded frame count, average rate) of a video, read with PyAV directly."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        count = sum(1 for _ in container.decode(stream))
    return count, rate


def _rgb(frame_bgr: np.ndarray, xy) -> np.ndarray:
    x, y = int(round(xy[0])), int(round(xy[1]))
    return frame_bgr[y, x, ::-1].astype(int)


def _close(colour, reference, tolerance=45) -> bool:
    return bool(np.all(np.abs(np.asarray(colour, int) - np.asarray(reference, int)) <= tolerance))


def _segment_distance(p, a, b) -> float:
    p, a, b = (np.asarray(v, float) for v in (p, a, b))
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0, 1)
    return float(np.linalg.norm(p - (a + t * ab)))


# mmpose's 19 COCO links (written out here, not imported)
LINKS = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
         (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]


def _clear_points(keypoints, scores, link, margin):
    """Points along ``link`` (fractions 0.3…0.7) farther than ``margin`` px from every other drawn link."""
    a, b = link
    others = [(i, j) for i, j in LINKS if {i, j} != {a, b} and scores[i] >= 0.3 and scores[j] >= 0.3]
    points = []
    for t in np.linspace(0.3, 0.7, 9):
        p = keypoints[a] + t * (keypoints[b] - keypoints[a])
        if all(_segment_distance(p, keypoints[i], keypoints[j]) > margin for i, j in others):
            points.append(p)
    return points


def _bar_clip(count: int, size=(384, 96), background=0) -> list[np.ndarray]:
    """``count`` BGR frames; frame k has a white bar of BAR_STEP·(k+1) px in rows BAR_ROWS."""
    frames = []
    for k in range(count):
        frame = np.full((size[1], size[0], 3), background, np.uint8)
        frame[BAR_ROWS, : BAR_STEP * (k + 1)] = 255
        frames.append(frame)
    return frames


def _bar_index(frame: np.ndarray, x0: int = 0, threshold: int = 150) -> int:
    """The k of a bar frame (from the bar's length on the middle bar row, starting at column x0)."""
    row = frame[(BAR_ROWS.start + BAR_ROWS.stop) // 2, x0:].max(axis=1) > threshold
    length = int(np.argmin(row)) if not row.all() else len(row)
    return round(length / BAR_STEP) - 1


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_clean_error(code: int, err: str, *paths: Path) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("posestream: error: "), err
    for path in paths:
        assert not path.exists(), f"{path} left behind"
        assert not path.with_name(path.name + ".part").exists(), f"{path}.part left behind"
    return lines[0]


# ---------------------------------------------------------------------------------------------
# skeleton video of a real clip


@pytest.fixture(scope="module")
def wave_skeleton(tmp_path_factory):
    """``posestream skeleton`` on the first 12 frames of the shared waving clip (pipeline run)."""
    source = shared_file("media/har-wave/wave.mp4")
    shared_file("models/yolox_nano.onnx")
    shared_file("models/blazepose_landmark_full.onnx")
    out = tmp_path_factory.mktemp("skeleton")
    with pytest.MonkeyPatch.context() as patch:  # module scope: conftest's per-test settings are not there yet
        patch.setenv("POSESTREAM_HOME", str(tmp_path_factory.mktemp("posestream-home")))
        patch.setenv("POSESTREAM_MODEL_DIR", str(shared_file("models")))
        code = main(["skeleton", str(source), "--out", str(out), "--max-frames", "12", "--quiet", "--frames-dir"])
    assert code == 0
    return source, out


def test_skeleton_video_matches_source_and_style(wave_skeleton):
    source, out = wave_skeleton
    video = out / "wave_skeleton.mp4"
    records = [json.loads(line) for line in (out / "wave.jsonl").read_text().splitlines()]
    count, rate = _probe(video)
    with av.open(str(source)) as container:
        source_rate = float(container.streams.video[0].average_rate)
    assert count == len(records) == 12
    assert rate == pytest.approx(source_rate, rel=1e-3)
    assert len(list((out / "wave_skeleton_frames").glob("*.png"))) == 12
    frames, _, _ = read_frames(video)
    assert frames[0].shape[:2] == (records[0]["height"], records[0]["width"])
    thickness = max(1, round(6 * min(frames[0].shape[:2]) / 512))

    checked = {"left": 0, "right": 0, "centre": 0}
    for frame, record in zip(frames, records):
        if len(record["instances"]) != 1:
            continue
        person = record["instances"][0]
        keypoints, scores = np.array(person["keypoints"]), np.array(person["keypoint_scores"])
        for side, link, colour, other in (("left", (7, 9), GREEN_RGB, AZURE_RGB), ("right", (8, 10), AZURE_RGB, GREEN_RGB),
                                          ("centre", (5, 6), ORANGE_RGB, GREEN_RGB)):
            if min(scores[list(link)]) < 0.5 or np.linalg.norm(keypoints[link[0]] - keypoints[link[1]]) < 20:
                continue
            for point in _clear_points(keypoints, scores, link, margin=thickness + 3):
                pixel = _rgb(frame, point)
                assert _close(pixel, colour), f"{side} forearm at {point}: {pixel}, expected {colour}"
                assert not _close(pixel, other), f"{side} forearm drawn in the other side's colour"
                checked[side] += 1
        # background: black well away from the person's keypoints
        visible = keypoints[scores >= 0.3]
        x0, y0 = np.floor(visible.min(axis=0) - 4 * thickness).astype(int)
        x1, y1 = np.ceil(visible.max(axis=0) + 4 * thickness).astype(int)
        outside = np.ones(frame.shape[:2], bool)
        outside[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = False
        assert frame[outside].max() <= 24
        assert (frame.max(axis=2) <= 24).mean() > 0.9
    assert min(checked.values()) >= 5, checked


def test_skeleton_from_jsonl_square_crop(wave_skeleton, tmp_path, capsys):
    _, out = wave_skeleton
    code, stdout, _ = _cli(capsys, "skeleton", out / "wave.jsonl", "--out", tmp_path, "--size", 256, "--quiet",
                           "--stride", 5)
    assert code == 0
    assert "12 frames" in stdout and "up to 3 frames at stride 5" in stdout
    info = json.loads((tmp_path / "wave_skeleton.json").read_text())
    assert (info["width"], info["height"], info["size"], info["source_frames"]) == (420, 420, 256, 12)
    assert info["source_fps"] == pytest.approx(10.0)
    frames, fps, _ = read_frames(tmp_path / "wave_skeleton.mp4")
    assert len(frames) == 12 and fps == pytest.approx(10.0) and frames[0].shape == (256, 256, 3)
    # the right forearm, mapped by the transform, is azure on the small canvas
    record = json.loads((out / "wave.jsonl").read_text().splitlines()[10])
    keypoints = np.array(record["instances"][0]["keypoints"])
    middle = (keypoints[8] + keypoints[10]) / 2 * 256 / 420
    assert _close(_rgb(frames[10], middle), AZURE_RGB, 70)


def test_skeleton_of_video_without_people_is_black(tmp_path, capsys):
    shared_file("models/yolox_nano.onnx")
    clip = tmp_path / "empty.mp4"
    write_video(clip, [np.full((96, 128, 3), 90, np.uint8)] * 4, 5)
    code, stdout, err = _cli(capsys, "skeleton", clip, "--out", tmp_path / "out", "--quiet")
    assert code == 0
    assert "warning" in err and "no person" in err
    frames, fps, _ = read_frames(tmp_path / "out" / "empty_skeleton.mp4")
    assert len(frames) == 4 and fps == pytest.approx(5) and max(f.max() for f in frames) <= 8


# ---------------------------------------------------------------------------------------------
# space


def test_resize_crop_round_trip_and_image():
    transform = ResizeCrop(1280, 720, 512)
    points = np.array([[640.0, 360.0], [300.5, 100.25], [999.0, 700.0]])
    mapped = transform.forward(points)
    # independent reference: scale 512/720, crop (1280·512/720 − 512)/2 px off the left
    scale = 512 / 720
    expected = np.stack([points[:, 0] * scale - (1280 * scale - 512) / 2, points[:, 1] * scale], axis=1)
    np.testing.assert_allclose(mapped, expected, atol=1e-3)
    np.testing.assert_allclose(transform.inverse(mapped), points, atol=1.0)
    np.testing.assert_allclose(cv2.transform(points[None], transform.matrix())[0], mapped, atol=1e-3)

    frame = np.zeros((720, 1280, 3), np.uint8)
    dot = np.array([820.0, 250.0])
    cv2.circle(frame, (820, 250), 6, (255, 255, 255), -1)
    small = transform.image(frame)
    assert small.shape == (512, 512, 3)
    ys, xs = np.nonzero(small[..., 0] > 127)
    centre = np.array([xs.mean(), ys.mean()])
    assert np.all(np.abs(centre - transform.forward(dot)) <= 1.0), (centre, transform.forward(dot))


def _jsonl(path: Path, width: int, height: int, frames: int, fps: float, a, b):
    """JSON lines of one person whose only confident keypoints are the right elbow a and wrist b."""
    keypoints = np.zeros((1, 17, 2), np.float32)
    keypoints[0, 8], keypoints[0, 10] = a, b
    scores = np.zeros((1, 17), np.float32)
    scores[0, [8, 10]] = 0.9
    with open(path, "w") as handle:
        for i in range(frames):
            result = FrameResult(i + 1, i / fps, width, height, np.zeros((1, 4), np.float32), np.ones(1, np.float32),
                                 keypoints, scores)
            handle.write(json.dumps(result.to_json()) + "\n")
    return path


def test_superimpose_maps_space_both_ways(tmp_path, capsys):
    a, b = (600.0, 300.0), (700.0, 340.0)
    middle = (np.array(a) + np.array(b)) / 2
    jsonl = _jsonl(tmp_path / "person.jsonl", 1280, 720, 3, 10, a, b)
    transform = ResizeCrop(1280, 720, 512)

    # a 1280×720 input's keypoints on a 512×512 "generated" clip
    generated = write_video(tmp_path / "generated.mp4", [np.full((512, 512, 3), 60, np.uint8)] * 3, 10)
    code, _, _ = _cli(capsys, "superimpose", "--skeleton", jsonl, "--on", generated, "--out", tmp_path / "on512.mp4",
                      "--alpha", 1, "--quiet")
    assert code == 0
    frames, _, _ = read_frames(tmp_path / "on512.mp4")
    assert len(frames) == 3
    target = middle * 512 / 720 - [(1280 * 512 / 720 - 512) / 2, 0]
    assert _close(_rgb(frames[1], target), AZURE_RGB)
    assert _close(_rgb(frames[1], target + [0, 25]), (60, 60, 60), 12)

    # and back: a 512×512 skeleton video (with its transform JSON) on the 1280×720 input
    code, _, _ = _cli(capsys, "skeleton", jsonl, "--out", tmp_path / "sk", "--size", 512, "--quiet")
    assert code == 0
    assert ResizeCrop.load(tmp_path / "sk" / "person_skeleton.json") == transform
    source = write_video(tmp_path / "input.mp4", [np.full((720, 1280, 3), 60, np.uint8)] * 3, 10)
    code, _, _ = _cli(capsys, "superimpose", "--skeleton", tmp_path / "sk" / "person_skeleton.mp4", "--on", source,
                      "--out", tmp_path / "on720.mp4", "--alpha", 1, "--quiet")
    assert code == 0
    frames, _, _ = read_frames(tmp_path / "on720.mp4")
    assert _close(_rgb(frames[2], middle), AZURE_RGB, 60)
    assert _close(_rgb(frames[2], middle + [0, 30]), (60, 60, 60), 12)


# ---------------------------------------------------------------------------------------------
# time


@pytest.fixture()
def bar_skeleton(tmp_path):
    """A 120-frame skeleton video at 25 fps whose frame k shows a bar of 3·(k+1) px."""
    return write_video(tmp_path / "bars_skeleton.mp4", _bar_clip(120), 25)


def test_superimpose_generated_clip_at_stride(tmp_path, bar_skeleton, capsys):
    generated = write_video(tmp_path / "generated.mp4", [np.full((96, 384, 3), 50, np.uint8)] * 24, 8)
    out = tmp_path / "over.mp4"
    code, stdout, _ = _cli(capsys, "superimpose", "--skeleton", bar_skeleton, "--on", generated, "--out", out,
                           "--stride", 5, "--quiet")
    assert code == 0 and f"wrote {out}" in stdout
    frames, fps, _ = read_frames(out)
    assert len(frames) == 24 and fps == pytest.approx(8)
    assert [_bar_index(f) for f in frames] == list(range(0, 120, 5))


def test_superimpose_by_time(tmp_path, capsys):
    skeleton = write_video(tmp_path / "s.mp4", _bar_clip(40), 10)
    video = write_video(tmp_path / "v.mp4", [np.full((96, 384, 3), 50, np.uint8)] * 30, 5)
    out = tmp_path / "over.gif"
    assert _cli(capsys, "superimpose", "--skeleton", skeleton, "--on", video, "--out", out, "--quiet")[0] == 0
    frames, _, _ = read_frames(out)
    assert len(frames) == 30
    # 5 fps on 10 fps: frame i at 2i; past the skeleton's 4 s, no skeleton
    assert [_bar_index(f) for f in frames[:20]] == list(range(0, 40, 2))
    assert all(f[BAR_ROWS].max() < 100 for f in frames[21:])


def test_compare_gif_stride_captions_and_heights(tmp_path, bar_skeleton, capsys):
    wave = shared_file("media/har-wave/wave.mp4")  # 420×420: resized to the panel height
    generated = write_video(tmp_path / "generated.mp4", _bar_clip(24, background=30), 8)
    out = tmp_path / "side.gif"
    code, stdout, _ = _cli(capsys, "compare", wave, bar_skeleton, generated, "--captions", "input", "skeleton",
                           "generated", "--out", out, "--stride", 5, "--height", 96, "--fps", 10, "--quiet")
    assert code == 0
    with Image.open(out) as gif:
        # wave.mp4 has 125 frames: ⌈125/5⌉ = 25 ≥ 24; the bars 120: 24 — so 24 frames
        assert gif.n_frames == 24
        assert gif.info["loop"] == 0
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [100] * 24
        width, height = gif.size
    frames, _, _ = read_frames(out)
    bar = height - 96
    assert bar > 10 and width == 96 + 384 + 384  # panels of one height, widths by aspect ratio
    for x0, x1 in ((0, 96), (96, 480), (480, 864)):  # captions: white text in each caption bar
        caption = frames[0][:bar, x0:x1]
        assert (caption.max(axis=2) > 128).sum() > 20
    for i, frame in enumerate(frames):
        body = frame[bar:]
        assert _bar_index(body, x0=96) == 5 * i  # the skeleton panel: frames 0, 5, 10, …
        assert _bar_index(body, x0=480) == i  # the generated clip: frame i
    assert np.abs(frames[3][bar:, :96].astype(int) - 0).mean() > 20  # the input video is there


def test_compare_mp4_by_time_defaults(tmp_path, capsys):
    a = write_video(tmp_path / "a.mp4", _bar_clip(20), 10)
    b = write_video(tmp_path / "b.mp4", _bar_clip(6), 4)  # 0…1.25 s (+ half a frame): a's first 14 frames
    out = tmp_path / "ab.mp4"
    assert _cli(capsys, "compare", a, b, "--captions", "ten", "five", "--out", out, "--height", 96, "--quiet")[0] == 0
    count, rate = _probe(out)
    assert rate == pytest.approx(10)
    frames, _, _ = read_frames(out)
    assert count == len(frames) == 14
    bar = frames[0].shape[0] - 96
    assert [_bar_index(f[bar:]) for f in frames] == list(range(14))
    # a's frame i at 0.1·i s beside b's nearest frame (4 fps): round(0.4·i), no ties
    assert [_bar_index(f[bar:], x0=384) for f in frames] == [int(np.floor(0.4 * i + 0.5)) for i in range(14)]


# ---------------------------------------------------------------------------------------------
# frame folders and bad input


def test_read_frames_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(_bar_clip(12)):
        cv2.imwrite(str(folder / f"f{k:03d}.png"), frame)
    frames, fps, pts = read_frames(folder)
    assert fps is None and len(frames) == 12 and list(pts) == list(range(12))
    assert [_bar_index(f) for f in frames] == list(range(12))
    (folder / "f005.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="f005.png"):
        read_frames(folder)


def test_bad_inputs_exit_2_and_leave_nothing(tmp_path, bar_skeleton, capsys):
    generated = write_video(tmp_path / "gen.mp4", [np.full((96, 384, 3), 50, np.uint8)] * 24, 8)
    out_mp4, out_gif = tmp_path / "o.mp4", tmp_path / "o.gif"

    line = _assert_clean_error(*_cli(capsys, "skeleton", tmp_path / "missing.mp4", "--out", tmp_path / "d")[::2],
                               tmp_path / "d")
    assert "missing.mp4" in line
    line = _assert_clean_error(*_cli(capsys, "superimpose", "--skeleton", tmp_path / "nope.jsonl", "--on", generated,
                                     "--out", out_mp4)[::2], out_mp4)
    assert "nope.jsonl" in line
    line = _assert_clean_error(*_cli(capsys, "compare", generated, tmp_path / "gone.mp4", "--captions", "a", "b",
                                     "--out", out_gif)[::2], out_gif)
    assert "gone.mp4" in line

    # a skeleton too short for the clip at stride 5: 100 frames drive at most 20, not 24
    short = write_video(tmp_path / "short.mp4", _bar_clip(100), 25)
    line = _assert_clean_error(*_cli(capsys, "superimpose", "--skeleton", short, "--on", generated, "--out", out_mp4,
                                     "--stride", 5, "--quiet")[::2], out_mp4)
    assert "100 frames" in line and "at most 20 frames" in line

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), _bar_clip(1)[0])
    (folder / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    line = _assert_clean_error(*_cli(capsys, "compare", folder, generated, "--captions", "a", "b", "--out",
                                     out_gif, "--quiet")[::2], out_gif)
    assert "001.png" in line

    empty = tmp_path / "empty"
    empty.mkdir()
    line = _assert_clean_error(*_cli(capsys, "superimpose", "--skeleton", bar_skeleton, "--on", empty, "--out",
                                     out_mp4, "--quiet")[::2], out_mp4)
    assert "no frames" in line

    line = _assert_clean_error(*_cli(capsys, "compare", generated, bar_skeleton, "--captions", "only one", "--out",
                                     out_gif, "--quiet")[::2], out_gif)
    assert "1 captions for 2 inputs" in line

    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"frame_id": 1}\n')
    line = _assert_clean_error(*_cli(capsys, "skeleton", bad_jsonl, "--out", tmp_path / "d2")[::2],
                               tmp_path / "d2" / "bad_skeleton.mp4")
    assert "bad.jsonl:1" in line
