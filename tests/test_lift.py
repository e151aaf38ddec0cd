"""The lift stage in the stream (per-track states, delay, no torch), its config, and the npz export of a run."""

from __future__ import annotations

import configparser
import fnmatch
import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
import torch

from conftest import REPO
from posestream.engines.errors import ModelError, ModelNotFoundError, ModelSignatureError
from posestream.offline.export import export_npz, read_person
from posestream.offline.lifter_model import TemporalModel, numpy_lifter, save_lifter
from posestream.stream.lift.model import LifterArchitecture, normalize_screen_coordinates
from posestream.stream.lift.stage import DEFAULT_LIFTER, LiftConfig, LiftStage
from posestream.stream.results import FrameResult

W, H = 640, 480


def _model(causal: bool) -> TemporalModel:
    torch.manual_seed(0)
    model = TemporalModel(LifterArchitecture(filter_widths=(3, 3), channels=32, causal=causal))
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _paths(frames: int, people: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    start = rng.uniform(100, 400, (people, 1, 17, 2))
    return (start + np.cumsum(rng.normal(0, 3, (people, frames, 17, 2)), axis=1)).astype(np.float32)


def _result(frame_id: int, keypoints: np.ndarray, track_ids) -> FrameResult:
    n = len(keypoints)
    return FrameResult(frame_id=frame_id, pts=frame_id / 30, width=W, height=H,
                       bboxes=np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)), bbox_scores=np.ones(n, np.float32),
                       keypoints=keypoints.reshape(n, 17, 2), keypoint_scores=np.ones((n, 17), np.float32),
                       track_ids=None if track_ids is None else np.asarray(track_ids, np.int64))


def _expected(model: TemporalModel, keypoints: np.ndarray) -> np.ndarray:
    """The whole-sequence reference (torch): VideoPose3D padding, root made 0."""
    out = model.lift_sequence(normalize_screen_coordinates(keypoints, W, H))
    return out - out[:, :1]


@pytest.mark.parametrize("causal", [True, False])
def test_tracks_are_lifted_as_their_own_sequences_in_order(causal):
    model = _model(causal)
    stage = LiftStage(numpy_lifter(model))
    frames = 30
    paths = _paths(frames, 2)
    # track 7 is in every frame; track 9 leaves after frame 12 and comes back at frame 20
    present_9 = [t < 12 or t >= 20 for t in range(frames)]
    out = []
    for t in range(frames):
        ids = [7] + ([9] if present_9[t] else [])
        keypoints = np.stack([paths[0, t]] + ([paths[1, t]] if present_9[t] else []))
        out += stage.push(_result(t + 1, keypoints, ids), payload=t)
        if causal:
            assert len(out) == t + 1  # no delay
    out += stage.flush()
    assert [payload for _, payload in out] == list(range(frames))
    assert [r.frame_id for r, _ in out] == list(range(1, frames + 1))
    lifted_7 = np.stack([r.keypoints_3d[0] for r, _ in out])
    np.testing.assert_allclose(lifted_7, _expected(model, paths[0]), atol=2e-5)
    # track 9 is two sequences: frames 0-11 (ended, flushed by repeating its last frame) and 20-29
    first = np.stack([r.keypoints_3d[1] for r, _ in out[:12]])
    again = np.stack([r.keypoints_3d[1] for r, _ in out[20:]])
    np.testing.assert_allclose(first, _expected(model, paths[1, :12]), atol=2e-5)
    np.testing.assert_allclose(again, _expected(model, paths[1, 20:]), atol=2e-5)
    assert all(np.isfinite(r.keypoints_3d).all() for r, _ in out)
    assert all((r.keypoints_3d[:, 0] == 0).all() for r, _ in out)
    assert stage.delay == (0 if causal else 4)


def test_untracked_people_are_lifted_as_stills():
    model = _model(causal=False)
    stage = LiftStage(numpy_lifter(model))
    keypoints = _paths(1, 3)[:, 0]
    ((result, _),) = stage.push(_result(1, keypoints, None))  # no delay without tracks
    for i in range(3):
        still = np.repeat(keypoints[i][None], 5, axis=0)
        np.testing.assert_allclose(result.keypoints_3d[i], _expected(model, still)[0], atol=2e-5)


def _pose_at(extent: float, frames: int, seed: int = 0) -> np.ndarray:
    """(frames, 17, 2) keypoints of one person whose keypoint box's larger side is ``extent`` of
    the frame's width in every frame, trunk centre fixed at (200, 260) px, limbs moving."""
    rng = np.random.default_rng(seed)
    shape = rng.uniform(-0.5, 0.5, (1, 17, 2)) + np.cumsum(rng.normal(0, 0.02, (frames, 17, 2)), axis=0)
    shape -= shape[:, [5, 6, 11, 12]].mean(axis=1, keepdims=True)
    shape /= np.ptp(shape, axis=1).max(axis=-1)[:, None, None]
    return (shape * extent * W + [200, 260]).astype(np.float32)


@pytest.mark.parametrize("tracked", [True, False])
def test_a_small_person_is_lifted_as_a_longer_lens_would_see_them(tracked):
    """A person 0.075 of the frame wide is lifted exactly as the same motion 0.3 wide about the
    same trunk centre (a lens four times longer: the picture scaled about that point), with
    min_extent 0.3; without it, differently. A person at least min_extent wide is untouched."""
    model = _model(causal=True)
    frames = 12
    small, large = _pose_at(0.075, frames), _pose_at(0.3, frames)

    def lifted(stage, keypoints):
        out = []
        for t in range(frames):
            out += stage.push(_result(t + 1, keypoints[t][None], [3] if tracked else None))
        return np.stack([r.keypoints_3d[0] for r, _ in out + stage.flush()])

    reference = _expected(model, large) if tracked else np.stack([_expected(model, large[t][None])[0] for t in range(frames)])
    np.testing.assert_allclose(lifted(LiftStage(numpy_lifter(model), min_extent=0.3), small), reference, atol=2e-5)
    np.testing.assert_allclose(lifted(LiftStage(numpy_lifter(model), min_extent=0.3), large), reference, atol=2e-5)
    plain = lifted(LiftStage(numpy_lifter(model), min_extent=0.0), small)
    assert np.abs(plain - reference).max() > 0.01  # the small input alone is lifted otherwise


def test_the_enlargement_follows_a_tracks_smoothed_extent(monkeypatch):
    """One frame in which the keypoints' box jumps to twice its size (an arm flung out, a
    misplaced wrist) moves the track's extent by 1 − exp(−dt / extent_seconds) of the jump, not
    all of it: the zoom applied to that frame is 0.3 / (0.1 · (1 + 0.0645)) with 30 fps frames
    and 0.5 s, not 0.3 / 0.2."""
    model = _model(causal=True)
    stage = LiftStage(numpy_lifter(model), min_extent=0.3, extent_seconds=0.5)
    poses = _pose_at(0.1, 6)
    poses[5, 9] = poses[5, 5] + [0.2 * W, 0]  # the left wrist flung out: the box is 0.2 wide
    seen = []
    monkeypatch.setattr("posestream.stream.lift.stage.normalize_screen_coordinates",
                        lambda k, w, h: (seen.append(np.array(k)), normalize_screen_coordinates(k, w, h))[1])
    for t in range(6):
        stage.push(_result(t + 1, poses[t][None], [1]))
    centre = poses[5, [5, 6, 11, 12]].mean(axis=0)
    extent = np.ptp(poses[5], axis=0).max() / W
    smoothed = 0.1 + (1 - np.exp(-(1 / 30) / 0.5)) * (extent - 0.1)
    np.testing.assert_allclose(seen[5][0], (poses[5] - centre) * (0.3 / smoothed) + centre, rtol=1e-5, atol=1e-3)


def test_lift_min_extent_reaches_the_stage_and_is_range_checked():
    from posestream.stream.config import RunConfig
    from posestream.stream.pipeline import PoseStream

    config = RunConfig.from_dict({"lift": {"min_extent": 0.0}})
    assert config.lift.min_extent == 0.0 and RunConfig().lift.min_extent == 0.3
    stream = PoseStream(None, lifter=numpy_lifter(_model(causal=True)), lift_min_extent=config.lift.min_extent)
    assert stream.lift.min_extent == 0.0
    with pytest.raises(ValueError, match="lift.min_extent"):
        RunConfig.from_dict({"lift": {"min_extent": 1.5}})


def test_empty_frames_pass_through():
    stage = LiftStage(numpy_lifter(_model(causal=True)))
    ((result, _),) = stage.push(_result(1, np.zeros((0, 17, 2), np.float32), []))
    assert result.keypoints_3d.shape == (0, 17, 3)


def test_stage_refuses_other_joint_sets():
    model = TemporalModel(LifterArchitecture(joints_in=21, filter_widths=(3,), channels=8))
    with pytest.raises(ValueError, match="COCO-17"):
        LiftStage(numpy_lifter(model))


def test_default_lifter_is_shipped_causal_and_loads():
    assert DEFAULT_LIFTER.is_file() and DEFAULT_LIFTER.suffix == ".safetensors"
    lifter = LiftConfig().load()
    assert lifter.architecture.causal and lifter.architecture.joints_in == 17 and lifter.architecture.joints_out == 17
    assert LiftConfig().check() == lifter.architecture
    assert set(lifter.metadata) == {"metrics", "command", "steps"}


def test_default_lifter_is_package_data():
    # found through the package (not the source tree), so a wheel that carries package_data has it
    assert DEFAULT_LIFTER == resources.files("posestream.engines") / "weights" / DEFAULT_LIFTER.name
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["posestream.engines"].split(",")]
    assert any(fnmatch.fnmatch(f"weights/{DEFAULT_LIFTER.name}", p) for p in patterns), patterns


def test_lift_config_check_and_load_errors(tmp_path):
    with pytest.raises(ModelNotFoundError):
        LiftConfig(checkpoint=str(tmp_path / "absent.safetensors")).check()
    torch.save({"model_pos": _model(True).state_dict()}, tmp_path / "old.pt")
    for call in (LiftConfig.check, LiftConfig.load):
        with pytest.raises(ModelError, match="PyTorch checkpoint.*posestream convert-lifter"):
            call(LiftConfig(checkpoint=str(tmp_path / "old.pt")))
    save_lifter(tmp_path / "feet.safetensors", TemporalModel(LifterArchitecture(joints_in=21, filter_widths=(3,), channels=8)))
    for call in (LiftConfig.check, LiftConfig.load):
        with pytest.raises(ModelSignatureError, match="COCO-17 → H36M-17"):
            call(LiftConfig(checkpoint=str(tmp_path / "feet.safetensors")))
    save_lifter(tmp_path / "mine.safetensors", _model(False))
    assert LiftConfig(checkpoint=str(tmp_path / "mine.safetensors")).check().delay == 4


_NO_TORCH = """
import sys
import numpy as np
import posestream.stream.pipeline, posestream.stream.run, posestream.stream.graph.stages
from posestream.stream.config import RunConfig
from posestream.stream.lift.stage import LiftConfig, LiftStage
from posestream.stream.results import FrameResult

RunConfig().lift.check()
stage = LiftStage(LiftConfig().load())
rng = np.random.default_rng(0)
for t in range(30):
    k = rng.uniform(100, 400, (2, 17, 2)).astype(np.float32)
    r = FrameResult(frame_id=t + 1, pts=t / 30, width=640, height=480, bboxes=np.zeros((2, 4), np.float32),
                    bbox_scores=np.ones(2, np.float32), keypoints=k, keypoint_scores=np.ones((2, 17), np.float32),
                    track_ids=np.array([1, 2]))
    ((done, _),) = stage.push(r)
    assert np.isfinite(done.keypoints_3d).all()
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
print("no torch")
"""


def test_live_and_run_paths_do_not_import_torch():
    done = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no torch"


def _write_jsonl(path, frames):
    with open(path, "w") as handle:
        for record in frames:
            handle.write(json.dumps(record) + "\n")


def _instance(x: float, score: float, track_id=None, lifted=True):
    return {"keypoints": [[x, 2 * x]] * 17, "keypoint_scores": [score] * 17, "track_id": track_id,
            "keypoints_3d": [[x / 100, 0, 0]] * 17 if lifted else None}


def test_export_npz_interpolates_missing_frames(tmp_path):
    frames = [{"frame_id": 1, "width": 640, "height": 480, "instances": [_instance(10, 0.9, 1), _instance(500, 0.5, 2)]},
              {"frame_id": 2, "width": 640, "height": 480, "instances": [_instance(500, 0.5, 2)]},
              {"frame_id": 3, "width": 640, "height": 480, "instances": [_instance(30, 0.9, 1), _instance(500, 0.95, 2)]}]
    _write_jsonl(tmp_path / "clip.jsonl", frames)
    person = read_person(tmp_path / "clip.jsonl", track_id=1)
    np.testing.assert_array_equal(person.found, [True, False, True])
    np.testing.assert_allclose(person.keypoints[:, 0], [[10, 20], [20, 40], [30, 60]])  # midpoint filled in
    np.testing.assert_allclose(person.keypoints_3d[:, 0, 0], [0.1, 0.2, 0.3], atol=1e-6)
    best = read_person(tmp_path / "clip.jsonl")  # best-scoring person per frame
    np.testing.assert_allclose(best.keypoints[:, 0, 0], [10, 500, 500])
    written = export_npz(tmp_path / "clip.jsonl", tmp_path / "out", track_id=1)
    assert [p.name for p in written] == ["data_2d_custom_clip.npz", "clip_3d.npz"]
    data = np.load(written[0], allow_pickle=True)  # VideoPose3D's loader reads it this way
    metadata = data["metadata"].item()
    assert metadata["layout_name"] == "coco" and metadata["video_metadata"]["clip"] == {"w": 640, "h": 480}
    assert metadata["keypoints_symmetry"] == [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]
    (sequence,) = data["positions_2d"].item()["clip"]["custom"]
    assert sequence.shape == (3, 17, 2) and sequence.dtype == np.float32
    assert np.load(written[1])["positions_3d"].shape == (3, 17, 3)


def test_export_npz_errors(tmp_path):
    _write_jsonl(tmp_path / "a.jsonl", [{"frame_id": 1, "width": 64, "height": 48, "instances": [_instance(1, 1, 1, lifted=False)]}])
    with pytest.raises(ValueError, match="track 5"):
        read_person(tmp_path / "a.jsonl", track_id=5)
    assert read_person(tmp_path / "a.jsonl").keypoints_3d is None
    (tmp_path / "b.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="b.jsonl:1"):
        read_person(tmp_path / "b.jsonl")
    with pytest.raises(FileNotFoundError):
        read_person(tmp_path / "absent.jsonl")
