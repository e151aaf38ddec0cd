"""Free motion capture → H36M-17 joint positions, for training the lifter without Human3.6M.

Forward kinematics by ``bvhio`` (a BVH library); joints mapped to H36M-17 with the tables of
``shared/mocap/joint_maps_h36m17.json`` (restated below per rig). COCO-17 face points, which no
source has, are placed on the head by :func:`face_points`. Positions are world space, metres,
Y up, at the file's frame rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.engines.layouts import H36M17_NAMES

#: Per rig: H36M-17 joint → one BVH joint, or a tuple of joints whose midpoint it is. ``neck_nose``
#: and ``head`` are approximations (see the joint-map file); ``head`` None is placed by FK below.
_CC_RIG = {
    "hip": ("CC_Base_L_Thigh", "CC_Base_R_Thigh"), "right_hip": "CC_Base_R_Thigh", "right_knee": "CC_Base_R_Calf",
    "right_ankle": "CC_Base_R_Foot", "left_hip": "CC_Base_L_Thigh", "left_knee": "CC_Base_L_Calf",
    "left_ankle": "CC_Base_L_Foot", "spine": "CC_Base_Spine01", "thorax": "CC_Base_NeckTwist01",
    "neck_nose": ("CC_Base_L_Eye", "CC_Base_R_Eye"), "head": None, "left_shoulder": "CC_Base_L_Upperarm",
    "left_elbow": "CC_Base_L_Forearm", "left_wrist": "CC_Base_L_Hand", "right_shoulder": "CC_Base_R_Upperarm",
    "right_elbow": "CC_Base_R_Forearm", "right_wrist": "CC_Base_R_Hand",
}
_CMU_MOTIONBUILDER = {
    "hip": ("LeftUpLeg", "RightUpLeg"), "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "spine": "Spine", "thorax": "Spine1",
    "neck_nose": "Neck1", "head": "Head", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm",
    "left_wrist": "LeftHand", "right_shoulder": "RightArm", "right_elbow": "RightForeArm", "right_wrist": "RightHand",
}
_CMU_3DSMAX = {
    "hip": ("LeftHip", "RightHip"), "right_hip": "RightHip", "right_knee": "RightKnee", "right_ankle": "RightAnkle",
    "left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle", "spine": "Chest", "thorax": "Chest2",
    "neck_nose": "Neck", "head": "Head", "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow",
    "left_wrist": "LeftWrist", "right_shoulder": "RightShoulder", "right_elbow": "RightElbow", "right_wrist": "RightWrist",
}
#: CMU ASF length unit in metres (the mocap README: ×56.444 → mm).
CMU_UNIT_M = 0.056444


@dataclass
class MocapClip:
    """One mocap trial.

    Attributes:
        name: trial id (e.g. ``001_08``, ``bvh11_131_01``).
        description: what happens in it.
        fps: frames per second of ``joints``.
        joints: (T, 17, 3) float32 metres, world space, Y up, H36M-17 order.
    """

    name: str
    description: str
    fps: float
    joints: np.ndarray


#: Rigs by a joint only they have: (table, metres per BVH unit, first frame is a T-pose).
_RIGS = (("CC_Base_Hip", _CC_RIG, 0.01, True), ("LeftUpLeg", _CMU_MOTIONBUILDER, CMU_UNIT_M, False),
         ("LeftHip", _CMU_3DSMAX, CMU_UNIT_M, False))


def load_bvh(path: str | Path, name: str | None = None, description: str = "") -> MocapClip:
    """Forward kinematics of one BVH file of a known rig (CC_Base, or CMU's MotionBuilder or
    3dsMax naming) → H36M-17 world metres. A CC-rig file's first frame (a T-pose) is dropped.

    Raises:
        ValueError: not one of the known rigs.
    """
    import bvhio  # training-time dependency

    path = Path(path)
    container = bvhio.readAsBvh(str(path))
    root = bvhio.convertBvhToHierarchy(container.Root)
    joints = {joint.Name: joint for joint, _, _ in root.layout()}
    rig = next((r for r in _RIGS if r[0] in joints), None)
    if rig is None:
        raise ValueError(f"{path}: unknown skeleton (none of {[r[0] for r in _RIGS]} among its joints)")
    _, table, scale, skip_first = rig
    needed = sorted({n for v in table.values() if v for n in ((v,) if isinstance(v, str) else v)}
                    | ({"CC_Base_Head", "CC_Base_NeckTwist01"} if table["head"] is None else set()))
    missing = [n for n in needed if n not in joints]
    if missing:
        raise ValueError(f"{path}: joints {missing} not in the BVH hierarchy")
    frames = len(root.Keyframes)
    positions = np.empty((frames, len(needed), 3), np.float32)
    for f in range(frames):
        root.loadPose(f)
        for j, joint in enumerate(needed):
            p = joints[joint].PositionWorld
            positions[f, j] = (p.x, p.y, p.z)
    positions *= scale
    index = {n: i for i, n in enumerate(needed)}
    out = np.empty((frames, 17, 3), np.float32)
    for j, joint in enumerate(H36M17_NAMES):
        source = table[joint]
        if source is None:  # CC rig head: ~10 cm above the head joint along the neck → head direction
            head, neck = positions[:, index["CC_Base_Head"]], positions[:, index["CC_Base_NeckTwist01"]]
            up = head - neck
            out[:, j] = head + 0.10 * up / np.linalg.norm(up, axis=-1, keepdims=True)
        elif isinstance(source, str):
            out[:, j] = positions[:, index[source]]
        else:
            out[:, j] = positions[:, [index[n] for n in source]].mean(axis=1)
    return MocapClip(name or path.stem, description, 1.0 / float(container.FrameTime), out[1:] if skip_first else out)


def load_mocap(mocap_dir: str | Path) -> list[MocapClip]:
    """Every BVH trial under ``mocap_dir`` (``cmu_iclone_bvh/`` and ``cmu_misc_bvh/``) as H36M-17.
    DeepMimic's quaternion clips are not read.

    Raises:
        FileNotFoundError: ``mocap_dir`` has neither folder.
        ValueError: a file of an unknown rig, or lacking a joint its rig's table names.
    """
    mocap_dir = Path(mocap_dir)
    clips = []
    index_file = mocap_dir / "cmu_iclone_bvh" / "file_index.json"
    if index_file.is_file():
        for entry in json.loads(index_file.read_text()):
            clips.append(load_bvh(mocap_dir / entry["file"], entry["cmu_trial"], entry["description"]))
    misc = mocap_dir / "cmu_misc_bvh"
    for path in sorted(misc.glob("*.bvh")) if misc.is_dir() else []:
        clips.append(load_bvh(path, description="CMU " + path.stem.split("_", 1)[1]))
    if not clips:
        raise FileNotFoundError(f"no mocap under {mocap_dir} (expected cmu_iclone_bvh/ or cmu_misc_bvh/)")
    return clips


def face_points(joints: np.ndarray) -> np.ndarray:
    """COCO-17 nose, eyes and ears placed on an H36M-17 head, for sources that have no face.

    The head frame: up from the thorax to the head joint, left from the right to the left shoulder
    (made orthogonal to up), forward = left × up (right-handed axes). Offsets from the neck/nose
    joint, metres, are rough adult proportions (nose 7 cm forward; eyes 4 cm up, 5 cm forward,
    3 cm aside; ears 3 cm up, 3 cm back, 7.5 cm aside).

    Args:
        joints: (..., 17, 3) H36M-17 positions, metres, any right-handed frame.

    Returns:
        (..., 5, 3) float32: nose, left eye, right eye, left ear, right ear.
    """
    joints = np.asarray(joints, np.float32)
    up = joints[..., 10, :] - joints[..., 8, :]
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    left = joints[..., 11, :] - joints[..., 14, :]
    left -= (left * up).sum(-1, keepdims=True) * up
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    forward = np.cross(left, up)
    base = joints[..., 9, :]
    offsets = np.array([[0.07, 0.0, 0.0], [0.05, 0.04, 0.03], [0.05, 0.04, -0.03],
                        [-0.03, 0.03, 0.075], [-0.03, 0.03, -0.075]], np.float32)  # forward, up, left
    return (base[..., None, :] + offsets[:, 0, None] * forward[..., None, :] + offsets[:, 1, None] * up[..., None, :]
            + offsets[:, 2, None] * left[..., None, :]).astype(np.float32)


def coco17_points(joints: np.ndarray) -> np.ndarray:
    """COCO-17 positions from H36M-17 ones: limbs one to one, the face from :func:`face_points`.

    Args:
        joints: (..., 17, 3) H36M-17, metres.

    Returns:
        (..., 17, 3) float32 COCO-17.
    """
    joints = np.asarray(joints, np.float32)
    limbs = [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]  # COCO 5..16 from H36M
    return np.concatenate([face_points(joints), joints[..., limbs, :]], axis=-2)


def load_mocap_cached(mocap_dir: str | Path, cache_dir: str | Path | None) -> list[MocapClip]:
    """:func:`load_mocap`, kept as an npz in ``cache_dir`` (keyed by the files' names, sizes and
    times) so that forward kinematics runs once; ``cache_dir`` None: no cache."""
    import hashlib

    from posestream.engines.files import write_npz_atomic

    mocap_dir = Path(mocap_dir)
    if cache_dir is None:
        return load_mocap(mocap_dir)
    files = sorted(p for p in mocap_dir.rglob("*") if p.suffix in (".bvh", ".json"))
    key = hashlib.sha256("".join(f"{p.relative_to(mocap_dir)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                 for p in files).encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"mocap_h36m17_{key}.npz"
    if cache.is_file():
        data = np.load(cache)  # plain arrays only
        return [MocapClip(str(n), str(d), float(f), data[f"joints_{i}"])
                for i, (n, d, f) in enumerate(zip(data["names"], data["descriptions"], data["fps"]))]
    clips = load_mocap(mocap_dir)
    write_npz_atomic(cache, names=np.array([c.name for c in clips]), descriptions=np.array([c.description for c in clips]),
                     fps=np.array([c.fps for c in clips]), **{f"joints_{i}": c.joints for i, c in enumerate(clips)})
    return clips
