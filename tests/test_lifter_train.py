"""The shipped lifter against held-out ground truth, training, and fine-tuning from it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import REPO, shared_file
from posestream.offline.lifter_data import MocapSampler, fixed_views, h36m_samples, save_npz_pairs, view, random_camera
from posestream.offline.lifter_model import TemporalModel, read_lifter
from posestream.offline.lifter_train import TrainConfig, evaluate_lifter, train_lifter
from posestream.offline.mocap import load_bvh
from posestream.stream.lift.model import LifterArchitecture, StreamingTemporalModel, load_lifter
from posestream.stream.lift.stage import DEFAULT_LIFTER

sys.path.insert(0, str(REPO / "tools"))

#: Trials that tools/train_lifter.py holds out (never trained on).
HELD_OUT = ("cmu_iclone_bvh/All_BVH/subjects/007/007_04.bvh", "cmu_misc_bvh/bvh11_131_03.bvh")


def _mean_pose_mpjpe(sequences) -> float:
    """The error of always answering the average pose: what a lifter that learnt nothing scores."""
    targets = np.concatenate([y for _, _, y in sequences])
    return float(1000 * np.linalg.norm(targets - targets.mean(axis=0), axis=-1).mean())


@pytest.fixture(scope="module")
def held_out():
    return [load_bvh(shared_file("mocap/" + relative)) for relative in HELD_OUT]


def test_shipped_lifter_on_held_out_mocap(held_out):
    stream = StreamingTemporalModel(load_lifter(DEFAULT_LIFTER))  # the runtime's NumPy model
    sequences = fixed_views(held_out, cameras_per_clip=2, seed=7)
    metrics = evaluate_lifter(stream, sequences)
    baseline = _mean_pose_mpjpe(sequences)
    assert metrics["mpjpe"] < 90 and metrics["p_mpjpe"] < 70, metrics
    assert metrics["mpjpe"] < 0.5 * baseline, (metrics, baseline)
    # the same weights in the torch network, over a whole real sequence
    _, x, _ = sequences[0]
    assert np.abs(stream.lift_sequence(x) - read_lifter(DEFAULT_LIFTER).lift_sequence(x)).max() <= 1e-5


def test_shipped_lifter_on_human36m_samples():
    sequences = h36m_samples(shared_file("media/mmpose-testdata/h36m"))
    metrics = evaluate_lifter(StreamingTemporalModel(load_lifter(DEFAULT_LIFTER)), sequences)
    assert metrics["frames"] == 4
    assert metrics["mpjpe"] < 150 and metrics["p_mpjpe"] < 100, metrics


def test_training_reduces_the_error_on_held_out_motion(held_out):
    train = load_bvh(shared_file("mocap/cmu_iclone_bvh/All_BVH/subjects/007/007_02.bvh"))
    model = TemporalModel(LifterArchitecture(filter_widths=(3, 3), channels=64, causal=True))
    sequences = fixed_views(held_out[:1], cameras_per_clip=1, seed=3)
    before = evaluate_lifter(model, sequences)["mpjpe"]
    sampler = MocapSampler([train], frames=model.receptive_field - 1 + 16)
    history = train_lifter(model, sampler.batch, TrainConfig(steps=150, batch_size=32, outputs=16, eval_every=0,
                                                             decay_every=50), progress=False)
    after = evaluate_lifter(model, sequences)["mpjpe"]
    assert after < 0.5 * before, (before, after)
    assert history.train[-1][1] < 400


def test_fine_tuning_with_a_frozen_backbone(tmp_path, held_out):
    from train_lifter import main as train_main

    clip = held_out[0]
    rng = np.random.default_rng(0)
    pairs, sizes = {}, {}
    for k in range(2):
        camera = random_camera(rng, clip.joints.astype(np.float64))
        keypoints, joints_3d = view(clip.joints[::2].astype(np.float64), camera)
        pairs[f"walk{k}"] = [(keypoints, joints_3d)]
        sizes[f"walk{k}"] = (camera.width, camera.height)
    save_npz_pairs(tmp_path / "data_2d_custom_walk.npz", tmp_path / "data_3d_walk.npz", pairs, sizes)
    out = tmp_path / "finetuned.safetensors"
    assert train_main(["--resume", str(DEFAULT_LIFTER), "--no-mocap", "--npz-2d", str(tmp_path / "data_2d_custom_walk.npz"),
                       "--npz-3d", str(tmp_path / "data_3d_walk.npz"), "--lr", "3e-4", "--freeze", "backbone",
                       "--steps", "60", "--batch-size", "64", "--eval-every", "0", "--h36m", str(tmp_path / "none"),
                       "--out", str(out)]) == 0
    base, tuned = load_lifter(DEFAULT_LIFTER), load_lifter(out)
    assert tuned.architecture == base.architecture and set(tuned.weights) == set(base.weights)
    for name, value in base.weights.items():
        if name.startswith("shrink"):
            assert not np.array_equal(value, tuned.weights[name]), name
        else:  # frozen, batch-norm statistics included
            assert np.array_equal(value, tuned.weights[name]), name
    assert tuned.metadata["steps"] == 60 and "--freeze backbone" in tuned.metadata["command"]
    from posestream.offline.lifter_data import load_npz_pairs

    data = load_npz_pairs(tmp_path / "data_2d_custom_walk.npz", tmp_path / "data_3d_walk.npz")
    base_error = evaluate_lifter(StreamingTemporalModel(base), data)["mpjpe"]
    assert evaluate_lifter(StreamingTemporalModel(tuned), data)["mpjpe"] < base_error
    assert out.with_suffix(".png").stat().st_size > 1000 and out.with_suffix(".json").is_file()


@pytest.mark.parametrize("option, value, shown", [("--camera-distance", "3", "'3'"), ("--camera-distance", "a,b", "'a,b'"),
                                                  ("--camera-distance", "8,2", "distance (8, 2)"),
                                                  ("--camera-distance", "0,4", "distance (0, 4)"),
                                                  ("--camera-height", "1,inf", "height (1, inf)"),
                                                  ("--camera-fov", "40,200", "fov (40, 200)")])
def test_bad_camera_ranges_are_refused_in_one_line(tmp_path, capsys, option, value, shown):
    from train_lifter import main as train_main

    out = tmp_path / "x.safetensors"
    with pytest.raises(SystemExit) as stop:
        train_main([option, value, "--no-mocap", "--out", str(out)])
    assert stop.value.code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert "--camera-" in errors[-1] and shown in errors[-1]
    assert not out.exists()
