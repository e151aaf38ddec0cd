"""Training pairs for the lifter: (normalised COCO-17 2D, root-relative H36M-17 3D) sequences.

Two sources:

* mocap (:mod:`posestream.offline.mocap`), seen through random virtual pinhole cameras (:func:`random_camera`)
  with bone-length scaling, mirroring, frame-rate changes and detector-like 2D noise
  (:class:`MocapSampler`);
* VideoPose3D-style npz files (:func:`load_npz_pairs`, written by :func:`save_npz_pairs`).

Camera space is H36M's: x right, y down, z forward, metres. 2D is normalised with
:func:`posestream.stream.lift.model.normalize_screen_coordinates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.engines.layouts import COCO17_FLIP_INDICES, COCO17_SIGMAS, H36M17_FLIP_INDICES, H36M17_PARENTS
from posestream.engines.files import write_npz_atomic
from posestream.stream.lift.model import normalize_screen_coordinates

from posestream.offline.export import custom_2d_metadata
from posestream.offline.mocap import MocapClip, coco17_points, face_points

#: Mocap trials kept out of training (tools/train_lifter.py --holdout): one of each kind of motion.
HOLDOUT = ("001_14", "002_05", "005_02", "006_10", "007_04", "bvh11_131_03")

#: Image sizes the virtual cameras use (width, height), pixels.
IMAGE_SIZES = ((1920, 1080), (1280, 720), (1000, 1000), (640, 480), (720, 1280))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``x_cam = rotation @ (x_world − position)``; pixels ``f · (x/z, y/z) + centre``.

    Attributes:
        rotation: (3, 3) float64, rows = camera right, down, forward in world coordinates.
        position: (3,) float64 metres, world.
        focal: focal length, pixels. width, height: image size, pixels.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: float
    width: int
    height: int

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres → (..., 3) camera metres."""
        return (np.asarray(points, np.float64) - self.position) @ self.rotation.T

    def project(self, camera_points: np.ndarray) -> np.ndarray:
        """(..., 3) camera metres (z > 0) → (..., 2) pixels, no distortion."""
        z = np.maximum(camera_points[..., 2:3], 1e-3)
        return self.focal * camera_points[..., :2] / z + np.array([self.width, self.height]) / 2


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of a camera at ``position`` looking at ``target`` with world Y up, image y down."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


@dataclass(frozen=True)
class CameraRange:
    """Where :func:`random_camera` may put a camera (the defaults are the shipped lifter's first training).

    Attributes:
        fov: (min, max) horizontal field of view, degrees.
        distance: (min, max) metres from the motion's centre, horizontally; drawn log-uniform
            (near cameras, whose perspective is strong, as often as far ones) when ``log_distance``,
            else uniform; never nearer than what keeps the motion inside 90 % of the view.
        height: (min, max) metres above the lowest foot.
        log_distance: see ``distance``.

    Raises:
        ValueError: a range is not ``0 < min <= max`` (finite), or the field of view reaches
            180° (no pinhole camera sees that wide).
    """

    fov: tuple = (40.0, 80.0)
    distance: tuple = (2.5, 8.0)
    height: tuple = (0.3, 2.5)
    log_distance: bool = False

    def __post_init__(self):
        for name in ("fov", "distance", "height"):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
                raise ValueError(f"camera {name} ({low:g}, {high:g}): need 0 < min <= max, finite")
        if self.fov[1] >= 180:
            raise ValueError(f"camera fov ({self.fov[0]:g}, {self.fov[1]:g}): a pinhole camera's field of view "
                             "is under 180 degrees")


#: Webcams on a monitor or a shelf and cameras mounted high in a room (CCTV): wide lenses, 1.5–4 m
#: away, 1.5–3.5 m up, looking down at people up to about 45° (for a motion that fits the view
#: from there: a long walk pushes the camera back, :func:`random_camera`). An evaluation range
#: (``tools/train_lifter.py``'s "near/high" rows) the default :class:`CameraRange` rarely draws.
NEAR_HIGH = CameraRange(fov=(60.0, 90.0), distance=(1.5, 4.0), height=(1.5, 3.5), log_distance=True)


def random_camera(rng: np.random.Generator, joints: np.ndarray, cameras: CameraRange = CameraRange()) -> Camera:
    """A camera that sees the whole of a world-space (T, 17, 3) motion (Y up, metres).

    Random (``cameras``, :class:`CameraRange`; by default): image size (:data:`IMAGE_SIZES`),
    horizontal field of view 40–80°, direction all round, height 0.3–2.5 m above the lowest foot,
    aimed at the motion's centre ± 0.3 m; the distance is the larger of 2.5–8 m (uniform, or
    log-uniform with ``log_distance``) and what keeps the motion's extent inside 90 % of the view.
    """
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    fov = np.radians(rng.uniform(*cameras.fov))
    focal = width / 2 / np.tan(fov / 2)
    floor = joints[..., 1].min()
    centre = joints.reshape(-1, 3).mean(axis=0)
    extent = np.ptp(joints.reshape(-1, 3), axis=0)
    reach = max(extent[0], extent[2]) / 2 + 0.5
    needed = max(reach, extent[1] / 2 + 0.2) * focal / (0.45 * min(width, height)) + reach
    near, far = cameras.distance
    drawn = np.exp(rng.uniform(np.log(near), np.log(far))) if cameras.log_distance else rng.uniform(near, far)
    distance = max(drawn, needed)
    yaw = rng.uniform(0, 2 * np.pi)
    position = centre + distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    position[1] = floor + rng.uniform(*cameras.height)
    target = centre + rng.uniform(-0.3, 0.3, 3)
    return Camera(look_at(position, target), position, float(focal), int(width), int(height))


def scale_bones(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scale each H36M-17 bone (joint − parent) by ``factors`` (17,), keeping the root's path.

    Args:
        joints: (T, 17, 3). factors: (17,) multipliers (entry 0, the root, unused).
    """
    out = joints.copy()
    for j, parent in enumerate(H36M17_PARENTS):
        if parent >= 0:
            out[:, j] = out[:, parent] + factors[j] * (joints[:, j] - joints[:, parent])
    return out


@dataclass(frozen=True)
class NoiseConfig:
    """Detector-like 2D noise, as fractions of the person's image height.

    Attributes:
        sigma: upper bound of the per-sequence Gaussian noise level (each sequence draws U(0, sigma));
            joints vary as COCO's OKS sigmas (wrists and ankles noisier than shoulders).
        outlier_rate: upper bound of the per-sequence probability that a keypoint lands elsewhere.
        outlier_sigma: spread of such outliers.
        hold_rate: probability that a frame repeats the previous frame's keypoints (a missed update).
    """

    sigma: float = 0.02
    outlier_rate: float = 0.02
    outlier_sigma: float = 0.15
    hold_rate: float = 0.02


def add_noise(rng: np.random.Generator, keypoints: np.ndarray, noise: NoiseConfig) -> np.ndarray:
    """Apply :class:`NoiseConfig` to (T, 17, 2) pixels; returns a new array."""
    t = len(keypoints)
    scale = np.ptp(keypoints[..., 1], axis=-1)[:, None, None]  # person height per frame, pixels
    weights = (COCO17_SIGMAS / COCO17_SIGMAS.mean())[None, :, None]
    out = keypoints + rng.normal(0, 1, keypoints.shape) * rng.uniform(0, noise.sigma) * scale * weights
    outliers = rng.random((t, 17)) < rng.uniform(0, noise.outlier_rate)
    out[outliers] += rng.normal(0, noise.outlier_sigma, (outliers.sum(), 2)) * np.repeat(scale[:, :, 0], 17, 1)[outliers][:, None]
    for i in np.flatnonzero(rng.random(t) < noise.hold_rate):
        if i > 0:
            out[i] = out[i - 1]
    return out


def view(joints_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 pixels and root-relative H36M-17 camera-space metres of a world-space motion.

    Args:
        joints_world: (T, 17, 3) H36M-17 world metres.

    Returns:
        ``(keypoints_2d (T, 17, 2) float64 pixels, joints_3d (T, 17, 3) float32 metres, root 0)``.
    """
    cam = camera.to_camera(joints_world)
    keypoints = camera.project(camera.to_camera(coco17_points(joints_world)))
    return keypoints, (cam - cam[:, :1]).astype(np.float32)


class MocapSampler:
    """Random training chunks from mocap clips seen by random cameras.

    Each chunk: a clip (chosen in proportion to its length), a frame step that brings it to 20–40
    fps, bone lengths × U(0.9, 1.1) each and body × U(0.85, 1.15), a mirror image half the time, a
    :func:`random_camera`, and :func:`add_noise` on the 2D.

    Args:
        clips: the mocap. frames: frames per chunk (receptive field − 1 + outputs).
        noise: 2D noise settings.
    """

    def __init__(self, clips: list[MocapClip], frames: int, noise: NoiseConfig = NoiseConfig(),
                 cameras: CameraRange = CameraRange()):
        self.clips, self.frames, self.noise, self.cameras = clips, frames, noise, cameras
        lengths = np.array([len(c.joints) for c in clips], np.float64)
        self.weights = lengths / lengths.sum()

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One chunk: ``(x (frames, 17, 2) float32 normalised, y (frames, 17, 3) float32 metres)``."""
        clip = self.clips[rng.choice(len(self.clips), p=self.weights)]
        step = max(1, int(round(clip.fps / rng.uniform(20, 40))))
        joints = clip.joints[::step]
        if len(joints) < self.frames:  # short clip: hold its last pose
            joints = np.concatenate([joints, np.repeat(joints[-1:], self.frames - len(joints), 0)])
        start = rng.integers(len(joints) - self.frames + 1)
        joints = joints[start:start + self.frames].astype(np.float64)
        factors = rng.uniform(0.9, 1.1, 17) * rng.uniform(0.85, 1.15)
        joints = scale_bones(joints, factors)
        if rng.random() < 0.5:
            joints = joints[:, list(H36M17_FLIP_INDICES)] * np.array([-1.0, 1.0, 1.0])
        camera = random_camera(rng, joints, self.cameras)
        keypoints, joints_3d = view(joints, camera)
        keypoints = add_noise(rng, keypoints, self.noise)
        return normalize_screen_coordinates(keypoints, camera.width, camera.height), joints_3d

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` chunks stacked: (B, frames, 17, 2) and (B, frames, 17, 3) float32."""
        xs, ys = zip(*(self.sample(rng) for _ in range(size)))
        return np.stack(xs), np.stack(ys)


def fixed_views(clips: list[MocapClip], cameras_per_clip: int, seed: int, fps: float = 30.0,
                noise: NoiseConfig | None = None,
                cameras: CameraRange = CameraRange()) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Evaluation sequences: each clip at about ``fps`` through ``cameras_per_clip`` seeded cameras
    (drawn from ``cameras``), no bone scaling or mirroring; ``noise`` None for exact projections.

    Returns:
        ``(name, x (T, 17, 2) normalised, y (T, 17, 3) metres root-relative)`` per clip and camera.
    """
    rng = np.random.default_rng(seed)
    out = []
    for clip in clips:
        joints = clip.joints[::max(1, int(round(clip.fps / fps)))].astype(np.float64)
        for k in range(cameras_per_clip):
            camera = random_camera(rng, joints, cameras)
            keypoints, joints_3d = view(joints, camera)
            if noise is not None:
                keypoints = add_noise(rng, keypoints, noise)
            out.append((f"{clip.name}/cam{k}", normalize_screen_coordinates(keypoints, camera.width, camera.height),
                        joints_3d))
    return out


def mirror_2d(x: np.ndarray) -> np.ndarray:
    """Mirror normalised COCO-17 2D (…, 17, 2) about the image's vertical centre line."""
    return x[..., list(COCO17_FLIP_INDICES), :] * np.array([-1, 1], x.dtype)


def save_npz_pairs(path_2d: str | Path, path_3d: str | Path, sequences: dict[str, list[tuple[np.ndarray, np.ndarray]]],
                   sizes: dict[str, tuple[int, int]]) -> None:
    """Write a paired dataset in VideoPose3D's layouts.

    ``path_2d``: ``positions_2d = {video: {'custom': [(T, 17, 2) pixels, ...]}}`` and ``metadata``
    (the custom 2D layout of DESIGN.md §3); ``path_3d``: ``positions_3d = {video: [(T, 17, 3)
    camera-space H36M-17 metres, ...]}``, one array per 2D array, same frames.

    Args:
        sequences: video → list of (2D pixels, 3D metres) per camera.
        sizes: video → (width, height) pixels.
    """
    positions_2d = {v: {"custom": [np.asarray(k2, np.float32) for k2, _ in seqs]} for v, seqs in sequences.items()}
    positions_3d = {v: [np.asarray(k3, np.float32) for _, k3 in seqs] for v, seqs in sequences.items()}
    write_npz_atomic(path_2d, positions_2d=positions_2d, metadata=custom_2d_metadata(sizes))
    write_npz_atomic(path_3d, positions_3d=positions_3d)


def load_npz_pairs(path_2d: str | Path, path_3d: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read a paired dataset (see :func:`save_npz_pairs`): ``(name, x normalised, y root-relative)``
    per sequence. These files hold pickled dicts (VideoPose3D's format), so load only files you made.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the two files do not describe the same videos and frame counts, or the 2D is
            not 17 COCO keypoints.
    """
    two = np.load(path_2d, allow_pickle=True)
    three = np.load(path_3d, allow_pickle=True)
    positions_2d, metadata = two["positions_2d"].item(), two["metadata"].item()
    positions_3d = three["positions_3d"].item()
    out = []
    for video, cams in positions_2d.items():
        arrays_2d = cams["custom"] if isinstance(cams, dict) else cams
        arrays_3d = positions_3d.get(video)
        if arrays_3d is None or len(arrays_3d) != len(arrays_2d):
            raise ValueError(f"{video}: {len(arrays_2d)} 2D sequences but "
                             f"{0 if arrays_3d is None else len(arrays_3d)} 3D ones")
        size = metadata["video_metadata"][video]
        for k, (k2, k3) in enumerate(zip(arrays_2d, arrays_3d)):
            if k2.shape[1:] != (17, 2) or k3.shape[1:] != (17, 3) or len(k2) != len(k3):
                raise ValueError(f"{video}[{k}]: 2D {k2.shape} and 3D {k3.shape} do not pair")
            k3 = np.asarray(k3, np.float32)
            out.append((f"{video}/{k}", normalize_screen_coordinates(k2, size["w"], size["h"]), k3 - k3[:, :1]))
    return out


def h36m_samples(folder: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The Human3.6M samples of mmpose's test data as single-frame (name, x, y) sequences.

    ``test_h36m_body3d.npz`` holds per image the H36M-17 2D (``part``, pixels) and 3D (``S``,
    camera space, metres); ``h36m_coco.json`` the image sizes. COCO-17's limbs are the H36M ones;
    its face points (which H36M lacks) are :func:`posestream.offline.mocap.face_points` of ``S`` projected
    with intrinsics fitted to the 17 2D–3D pairs (least squares, no distortion).

    Raises:
        FileNotFoundError: a file is missing.
    """
    import json

    folder = Path(folder)
    data = np.load(folder / "test_h36m_body3d.npz")  # plain arrays: no pickle
    sizes = {image["file_name"]: (image["width"], image["height"])
             for image in json.loads((folder / "h36m_coco.json").read_text())["images"]}
    out = []
    for name, part, joints in zip(data["imgname"], data["part"], data["S"]):
        uv, xyz = part[:, :2], joints[:, :3]
        ratio = xyz[:, :2] / xyz[:, 2:]
        intrinsics = [np.polyfit(ratio[:, a], uv[:, a], 1) for a in range(2)]  # focal, centre per axis
        face = face_points(xyz)
        face_uv = np.stack([np.polyval(intrinsics[a], face[:, a] / face[:, 2]) for a in range(2)], axis=-1)
        limbs = uv[[11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]]
        width, height = sizes[Path(str(name)).name]
        x = normalize_screen_coordinates(np.concatenate([face_uv, limbs])[None], width, height)
        y = (xyz - xyz[:1]).astype(np.float32)[None]
        out.append((Path(str(name)).stem, x, y))
    return out
