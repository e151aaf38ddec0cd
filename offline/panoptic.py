"""Real people's 3D poses seen through real cameras: CMU Panoptic Studio scenes.

A Panoptic scene folder (as in mmpose's test data, ``panoptic_body3d/<scene>/``) holds
``calibration_<scene>.json`` — the dome's cameras: ``K`` (3×3 pixels), ``distCoef`` (5, OpenCV's
k1 k2 p1 p2 k3), ``R`` (3×3) and ``t`` (3×1, centimetres), world → camera, ``resolution`` (width,
height) — and ``hdPose3d_stage1_coco19/body3DScene_<frame>.json``: per person ``id`` and
``joints19``, 19 × (x, y, z centimetres, confidence), world coordinates with y pointing **down**
(the floor is near y = 0), in the Panoptic toolbox's ``coco19`` order: 0 neck, 1 nose, 2 body
centre, 3–5 left shoulder / elbow / wrist, 6–8 left hip / knee / ankle, 9–11 right shoulder /
elbow / wrist, 12–14 right hip / knee / ankle, 15 left eye, 16 left ear, 17 right eye, 18 right
ear (H. Joo et al., "Panoptic Studio", ICCV 2015; the panoptic-toolbox README). A confidence of
−1, or a NaN position, marks a joint not reconstructed.

The scenes in the shared data (``160906_band1``, ``160906_band2``) are three musicians each, all
seated; :func:`views` puts each person in front of each of the dome's cameras (479 VGA and 31
HD, 0.7–3.4 m above the floor), so the posture rules meet real seated bodies (trunks upright or
leaning, feet tucked under the seat or forward, hands on instruments) from every height such a
room has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posestream.offline.classify_sweep import jitter

#: The scenes of mmpose's test data (``media/mmpose-testdata/panoptic_body3d/<scene>`` in the
#: shared folder).
SHARED_SCENES = ("160906_band1", "160906_band2")
#: COCO-17 joint k is Panoptic coco19 joint ``COCO17_FROM_COCO19[k]``.
COCO17_FROM_COCO19 = (1, 15, 17, 16, 18, 3, 9, 4, 10, 5, 11, 6, 12, 7, 13, 8, 14)
#: Joints a view must show for the posture rules: shoulders, hips, knees, ankles (COCO-17).
BODY_JOINTS = (5, 6, 11, 12, 13, 14, 15, 16)


@dataclass(frozen=True)
class PanopticCamera:
    """One calibrated camera of the dome: ``name`` (``panel_node``), ``kind`` (``vga``, ``hd``,
    ``kinect-color``), ``K`` (3, 3) float64 pixels, ``dist`` (5,) float64 OpenCV distortion,
    ``R`` (3, 3) float64 and ``t`` (3,) float64 metres (world → camera), ``size`` (width, height)
    int pixels."""

    name: str
    kind: str
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple

    @property
    def centre(self) -> np.ndarray:
        """(3,) the camera's position, world metres (y down)."""
        return -self.R.T @ self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world metres → (N, 2) float64 pixels (lens distortion applied, OpenCV's model);
        points behind the camera, or outside the field of view (beyond the image corners'
        undistorted radius, where a distortion polynomial can fold back into the image), come
        out NaN."""
        points = np.asarray(points, np.float64)
        pixels, _ = cv2.projectPoints(points.reshape(-1, 1, 3), cv2.Rodrigues(self.R)[0], self.t, self.K, self.dist)
        pixels = pixels.reshape(-1, 2)
        camera = points @ self.R.T + self.t
        with np.errstate(divide="ignore", invalid="ignore"):
            radius = np.hypot(camera[:, 0], camera[:, 1]) / camera[:, 2]
        w, h = self.size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64).reshape(-1, 1, 2)
        reach = np.linalg.norm(cv2.undistortPoints(corners, self.K, self.dist).reshape(-1, 2), axis=1).max()
        pixels[(camera[:, 2] <= 0) | ~(radius <= reach)] = np.nan
        return pixels


@dataclass(frozen=True)
class PanopticBody:
    """One person of one frame: ``id``, ``keypoints`` (17, 3) float64 COCO-17 world metres (y
    down; NaN where not reconstructed), ``confidence`` (17,) float64, the reconstruction's (−1:
    not reconstructed)."""

    id: int
    keypoints: np.ndarray
    confidence: np.ndarray

    def viewpoint(self, camera: PanopticCamera) -> tuple[float, float, float]:
        """Where ``camera`` sees this person from: ``(yaw, pitch, distance)`` — yaw in degrees
        around the vertical from the person's front (the normal of the shoulders' and hips'
        left-right line; 0: facing the camera, positive: the camera on their left, as
        :class:`~posestream.offline.classify_sweep.Camera`'s yaw), pitch in degrees the camera
        looks down at the chest (the mean of shoulders and hips), distance in metres from it.

        Raises:
            ValueError: shoulders or hips not reconstructed, their left-right line vertical, or
                the camera straight above or below the chest (no yaw).
        """
        k = self.keypoints
        chest = k[[5, 6, 11, 12]].mean(axis=0)
        across = (k[5] + k[11]) / 2 - (k[6] + k[12]) / 2  # right → left
        up = np.array([0.0, -1.0, 0.0])
        front = np.cross(across, up)
        front[1] = 0.0
        towards = camera.centre - chest
        flat = towards.copy()
        flat[1] = 0.0
        if not (np.isfinite(front).all() and np.linalg.norm(front) > 1e-9 and np.linalg.norm(flat) > 1e-9):
            raise ValueError(f"person {self.id}: no facing, or no yaw to camera {camera.name}")
        front /= np.linalg.norm(front)
        flat /= np.linalg.norm(flat)
        distance = float(np.linalg.norm(towards))
        pitch = float(np.degrees(np.arcsin(-towards[1] / distance)))
        yaw = float(np.degrees(np.arctan2(np.dot(np.cross(front, flat), up), np.dot(front, flat))))
        return yaw, pitch, distance


def load_cameras(scene: str | Path, kinds=("vga", "hd")) -> list[PanopticCamera]:
    """The cameras of ``kinds`` in a scene folder's ``calibration_*.json``.

    Raises:
        FileNotFoundError: no calibration file in ``scene``. KeyError: a camera lacks a field.
    """
    found = sorted(Path(scene).glob("calibration_*.json"))
    if not found:
        raise FileNotFoundError(f"no calibration_*.json in {scene}")
    cameras = []
    for c in json.loads(found[0].read_text())["cameras"]:
        if c["type"] in kinds:
            cameras.append(PanopticCamera(c["name"], c["type"], np.asarray(c["K"], np.float64),
                                          np.asarray(c["distCoef"], np.float64), np.asarray(c["R"], np.float64),
                                          np.asarray(c["t"], np.float64).reshape(3) / 100.0, tuple(c["resolution"])))
    return cameras


def load_bodies(path: str | Path) -> list[PanopticBody]:
    """The people of one ``body3DScene_*.json`` (coco19 → COCO-17, centimetres → metres).

    Raises:
        FileNotFoundError: no such file. KeyError / ValueError: not a coco19 body file
            (``joints19`` of 76 numbers per person).
    """
    bodies = []
    for b in json.loads(Path(path).read_text())["bodies"]:
        joints = np.asarray(b["joints19"], np.float64).reshape(19, 4)[list(COCO17_FROM_COCO19)]
        keypoints = joints[:, :3] / 100.0
        confidence = joints[:, 3].copy()
        keypoints[confidence < 0] = np.nan
        bodies.append(PanopticBody(int(b["id"]), keypoints, confidence))
    return bodies


def views(scene: str | Path, kinds=("vga", "hd")):
    """Every whole view of every person of a scene's first body file (sorted by name) through
    its cameras of ``kinds`` (``vga``, ``hd``, ``kinect-color``): yields ``(body, camera,
    keypoints)``, keypoints (17, 2) float64 pixels with NaN where the joint was not
    reconstructed or falls outside the image; a view counts only where :data:`BODY_JOINTS` are
    all inside it (a posture can be read). People without both shoulders and hips are left out.

    Raises:
        FileNotFoundError: no calibration or no body file in ``scene`` (at the first item: a
            generator).
    """
    scene = Path(scene)
    files = sorted((scene / "hdPose3d_stage1_coco19").glob("body3DScene_*.json"))
    if not files:
        raise FileNotFoundError(f"no hdPose3d_stage1_coco19/body3DScene_*.json in {scene}")
    cameras = load_cameras(scene, kinds)
    for body in load_bodies(files[0]):
        if not np.isfinite(body.keypoints[[5, 6, 11, 12]]).all():
            continue
        for camera in cameras:
            pixels = camera.project(np.nan_to_num(body.keypoints))
            w, h = camera.size
            inside = (np.isfinite(body.keypoints).all(axis=1) & np.isfinite(pixels).all(axis=1)
                      & (pixels[:, 0] >= 0) & (pixels[:, 0] < w) & (pixels[:, 1] >= 0) & (pixels[:, 1] < h))
            if inside[list(BODY_JOINTS)].all():
                pixels[~inside] = np.nan
                yield body, camera, pixels


def readings(scene: str | Path, classify, draws: int = 3, noise: float = 0.03, seed: int = 0,
             kinds=("vga", "hd")) -> list[dict]:
    """``classify(keypoints, keypoint_scores, size) → (posture, gesture)`` on every whole view of
    a scene (:func:`views`), ``draws`` times each with Gaussian noise of ``noise`` torso lengths
    per coordinate (the synthetic sweep's :func:`~posestream.offline.classify_sweep.jitter`); joints not seen are
    passed as (0, 0) with score 0, the others with score 1.

    Returns:
        one dict per reading: ``body`` (id), ``camera`` (name), ``yaw``, ``pitch`` (degrees,
        :meth:`PanopticBody.viewpoint`), ``distance`` (metres), ``height`` (the camera's,
        metres above the world origin: the floor), ``posture``, ``gesture``.

    Raises:
        FileNotFoundError: as :func:`views`.
    """
    rng = np.random.default_rng(seed)
    out = []
    for body, camera, pixels in views(scene, kinds):
        seen = np.isfinite(pixels).all(axis=1)
        yaw, pitch, distance = body.viewpoint(camera)
        for _ in range(draws):
            keypoints = np.where(seen[:, None], jitter(pixels, noise, rng), 0.0).astype(np.float32)
            posture, gesture = classify(keypoints, seen.astype(np.float32), camera.size)
            out.append({"body": body.id, "camera": camera.name, "yaw": yaw, "pitch": pitch, "distance": distance,
                        "height": float(-camera.centre[1]), "posture": posture, "gesture": gesture})
    return out
