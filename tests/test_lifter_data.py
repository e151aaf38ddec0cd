"""Training data for the lifter: mocap forward kinematics, virtual cameras, npz datasets."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engines.layouts import H36M17_NAMES, coco17_to_h36m17
from posestream.stream.lift.model import normalize_screen_coordinates
from posestream.offline.lifter_data import (NEAR_HIGH, Camera, CameraRange, MocapSampler, h36m_samples, load_npz_pairs,
                                           look_at, random_camera, save_npz_pairs, scale_bones, view)
from posestream.offline.mocap import coco17_points, face_points, load_bvh

from conftest import shared_file

LIMBS = [("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_hip", "left_knee"),
         ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow")]


def _bone(joints, a, b):
    return np.linalg.norm(joints[:, H36M17_NAMES.index(a)] - joints[:, H36M17_NAMES.index(b)], axis=-1)


@pytest.mark.parametrize("relative", ["mocap/cmu_iclone_bvh/All_BVH/subjects/002/002_01.bvh",
                                      "mocap/cmu_misc_bvh/bvh11_131_01.bvh"])
def test_forward_kinematics_gives_a_rigid_body_facing_where_it_walks(relative):
    clip = load_bvh(shared_file(relative))
    joints = clip.joints
    for a, b in LIMBS:  # a rigid skeleton: every bone keeps its length (mm), adult-sized
        lengths = _bone(joints, a, b)
        assert lengths.std() < 1e-3 and 0.15 < lengths.mean() < 0.6, (a, b, lengths.mean())
    # the nose (placed from the shoulders' left-right axis) points where the person walks:
    # a left/right swap in the joint map would turn the face backwards
    walked = joints[-1, 0] - joints[0, 0]
    walked[1] = 0
    face = face_points(joints)[:, 0] - joints[:, 9]
    facing = face.mean(axis=0)
    facing[1] = 0
    assert np.dot(walked, facing) / np.linalg.norm(walked) / np.linalg.norm(facing) > 0.7
    assert np.linalg.norm(walked) > 1.0  # metres: it is a walk


def test_look_at_and_projection_known_geometry():
    position, target = np.array([0.0, 1.5, 5.0]), np.array([0.0, 1.0, 0.0])
    camera = Camera(look_at(position, target), position, focal=1000.0, width=1280, height=720)
    on_axis = camera.to_camera(target[None])[0]
    np.testing.assert_allclose(on_axis, [0, 0, np.linalg.norm(target - position)], atol=1e-9)
    np.testing.assert_allclose(camera.project(on_axis[None])[0], [640, 360])
    # looking from +z towards -z (right-handed, Y up), world +x is on the image's right, world up is image up
    assert camera.project(camera.to_camera(np.array([[1.0, 1.0, 0.0]])))[0, 0] > 640
    assert camera.project(camera.to_camera(np.array([[0.0, 2.0, 0.0]])))[0, 1] < 360


def test_random_cameras_see_the_whole_motion_upright():
    clip = load_bvh(shared_file("mocap/cmu_iclone_bvh/All_BVH/subjects/002/002_01.bvh"))
    rng = np.random.default_rng(0)
    for _ in range(20):
        camera = random_camera(rng, clip.joints)
        keypoints, joints_3d = view(clip.joints, camera)
        assert (keypoints >= 0).all() and (keypoints[..., 0] <= camera.width).all() and (keypoints[..., 1] <= camera.height).all()
        assert (keypoints[:, 0, 1] < keypoints[:, 15, 1]).mean() > 0.95  # nose above ankle in the image
        np.testing.assert_array_equal(joints_3d[:, 0], 0)
        # the camera moves the body rigidly: bone lengths are the world ones
        np.testing.assert_allclose(_bone(joints_3d, "left_knee", "left_ankle"), _bone(clip.joints, "left_knee", "left_ankle"), atol=1e-5)


def test_camera_ranges_place_cameras_where_they_say():
    """Near, high cameras (NEAR_HIGH) stand where the range says, still see the whole motion, and
    look down at it; the field of view follows from the focal length (f = w / 2 / tan(fov / 2))."""
    clip = load_bvh(shared_file("mocap/cmu_misc_bvh/bvh11_131_01.bvh"))
    joints = clip.joints[:40].astype(np.float64)  # a third of a second: a long walk would push every camera back
    floor, centre = joints[..., 1].min(), joints.reshape(-1, 3).mean(axis=0)
    rng = np.random.default_rng(3)
    pitches, distances = [], []
    for _ in range(40):
        camera = random_camera(rng, joints, NEAR_HIGH)
        fov = np.degrees(2 * np.arctan(camera.width / 2 / camera.focal))
        assert NEAR_HIGH.fov[0] - 1e-6 <= fov <= NEAR_HIGH.fov[1] + 1e-6
        assert NEAR_HIGH.height[0] <= camera.position[1] - floor <= NEAR_HIGH.height[1]
        flat = np.hypot(*(camera.position - centre)[[0, 2]])
        assert flat >= NEAR_HIGH.distance[0] - 1e-9
        distances.append(flat)
        keypoints, _ = view(joints, camera)
        assert (keypoints >= 0).all() and (keypoints[..., 0] <= camera.width).all() and (keypoints[..., 1] <= camera.height).all()
        pitches.append(np.degrees(np.arcsin(-camera.rotation[2, 1])))  # degrees below level (forward's y, Y up)
    default = [random_camera(rng, joints) for _ in range(40)]
    default_flat = [np.hypot(*(c.position - centre)[[0, 2]]) for c in default]
    assert np.median(distances) < NEAR_HIGH.distance[1] < np.median(default_flat)  # near (1.5-4 m); the default 2.5-8 m
    assert np.percentile(pitches, 90) > 30 and min(pitches) > 0  # high: they look down, some steeply
    far = CameraRange(distance=(30.0, 30.0))
    assert np.hypot(*(random_camera(rng, joints, far).position - centre)[[0, 2]]) == pytest.approx(30.0)


def test_bone_scaling_and_the_coco_points():
    clip = load_bvh(shared_file("mocap/cmu_misc_bvh/bvh11_131_01.bvh"))
    factors = np.ones(17)
    factors[H36M17_NAMES.index("right_knee")] = 1.1  # the right thigh
    scaled = scale_bones(clip.joints.astype(np.float64), factors)
    np.testing.assert_allclose(_bone(scaled, "right_hip", "right_knee"), 1.1 * _bone(clip.joints, "right_hip", "right_knee"), rtol=1e-5)
    np.testing.assert_allclose(_bone(scaled, "right_knee", "right_ankle"), _bone(clip.joints, "right_knee", "right_ankle"), rtol=1e-5)
    coco = coco17_points(clip.joints)
    back = coco17_to_h36m17(coco)  # limbs survive the round trip exactly
    limbs = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16, 0]
    np.testing.assert_allclose(back[:, limbs], clip.joints[:, limbs], atol=1e-6)


def test_sampler_chunks(tmp_path):
    clip = load_bvh(shared_file("mocap/cmu_misc_bvh/bvh11_131_01.bvh"))
    sampler = MocapSampler([clip], frames=30)
    x, y = sampler.batch(np.random.default_rng(0), 8)
    assert x.shape == (8, 30, 17, 2) and y.shape == (8, 30, 17, 3)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_array_equal(y[:, :, 0], 0)
    assert np.abs(x[..., 0]).max() <= 1.2  # normalised: the image is [-1, 1] wide


def test_npz_pairs_round_trip_and_mismatch(tmp_path):
    rng = np.random.default_rng(0)
    k2, k3 = rng.uniform(0, 640, (20, 17, 2)), rng.normal(size=(20, 17, 3))
    save_npz_pairs(tmp_path / "d2.npz", tmp_path / "d3.npz", {"clip": [(k2, k3)]}, {"clip": (640, 480)})
    ((name, x, y),) = load_npz_pairs(tmp_path / "d2.npz", tmp_path / "d3.npz")
    assert name == "clip/0"
    np.testing.assert_allclose(x, normalize_screen_coordinates(k2, 640, 480), atol=1e-5)
    np.testing.assert_allclose(y, k3 - k3[:, :1], atol=1e-5)
    save_npz_pairs(tmp_path / "e2.npz", tmp_path / "e3.npz", {"clip": [(k2, k3[:10])]}, {"clip": (640, 480)})
    with pytest.raises(ValueError, match="do not pair"):
        load_npz_pairs(tmp_path / "e2.npz", tmp_path / "e3.npz")


def test_h36m_samples_intrinsics_reproduce_the_2d():
    folder = shared_file("media/mmpose-testdata/h36m")
    samples = h36m_samples(folder)
    assert len(samples) == 4
    data = np.load(folder / "test_h36m_body3d.npz")
    for (name, x, y), part, s in zip(samples, data["part"], data["S"]):
        np.testing.assert_allclose(y[0], s[:, :3] - s[:1, :3], atol=1e-6)
        # the fitted pinhole camera maps the 3D onto the given 2D within a few pixels
        ratio = s[:, :2] / s[:, 2:3]
        for axis in range(2):
            fit = np.polyfit(ratio[:, axis], part[:, axis], 1)
            assert np.abs(np.polyval(fit, ratio[:, axis]) - part[:, axis]).max() < 3.0, name
        assert np.abs(x).max() < 1.5
