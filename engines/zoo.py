"""The model zoo: every known model, and where to find its file.

Resolution order for a model (:func:`resolve_model`):

1. an explicit path to an ``.onnx`` file or an MMDeploy SDK ``.zip``;
2. the folders named in ``POSESTREAM_MODEL_DIR`` (``os.pathsep``-separated);
3. the user cache, ``$POSESTREAM_HOME`` or ``~/.cache/posestream``;
4. a download into the cache (progress bar, resume, sha256 check, atomic rename).

Hashes: where the publisher's file has a known sha256 it is checked on every load. OpenMMLab
file names carry 8 hex digits, but those are the prefix of the *PyTorch checkpoint's* sha256,
not of the ONNX SDK zip (e.g. ``rtmpose-t_…-026a1439_20230504.zip`` has sha256 ``937003a7…``),
so that prefix is only checked on ``.pth`` files (:func:`name_hash_prefix`). A file with no
known hash is trusted on first download and its digest recorded beside it (``.sha256``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .download import check_sha256, download, sha256_of
from .errors import ModelError, ModelHashError, ModelNotFoundError

_OPENMMLAB = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk"
_YOLOX = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0"


@dataclass(frozen=True)
class ModelSpec:
    """One known model.

    Attributes:
        name: zoo key, e.g. ``"rtmpose-m"``.
        family: wrapper class family: ``yolox``, ``rtmdet``, ``rtmpose`` or ``blazepose``.
        role: ``detector`` or ``pose``.
        filename: the publisher's file name (also what is looked for in model folders).
        url: official download address, or None where none serves this exact file.
        sha256: accepted sha256 digests of ``filename`` (empty: unknown).
        member: for MMDeploy SDK zips, the ONNX file inside (``end2end.onnx``).
        member_sha256: accepted digests of that member (empty: unknown).
        input_size: network input (width, height) in pixels.
        licence: SPDX id of the weights' licence.
        notes: provenance and published accuracy.
    """

    name: str
    family: str
    role: str
    filename: str
    url: str | None
    input_size: tuple[int, int]
    licence: str
    notes: str
    sha256: frozenset[str] = field(default_factory=frozenset)
    member: str | None = None
    member_sha256: frozenset[str] = field(default_factory=frozenset)


def _rtmpose(size: str, tag: str, ap: float, zip_sha: str = "", onnx_sha: str = "") -> ModelSpec:
    return ModelSpec(
        name=f"rtmpose-{size}", family="rtmpose", role="pose",
        filename=f"rtmpose-{size}_simcc-body7_pt-body7_420e-256x192-{tag}.zip",
        url=f"{_OPENMMLAB}/rtmpose-{size}_simcc-body7_pt-body7_420e-256x192-{tag}.zip",
        input_size=(192, 256), licence="Apache-2.0",
        notes=f"RTMPose-{size} body7, MMDeploy ONNX SDK; COCO val AP {ap} (mmpose model zoo)",
        sha256=frozenset({zip_sha} - {""}), member="end2end.onnx", member_sha256=frozenset({onnx_sha} - {""}),
    )


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        "yolox-nano", "yolox", "detector", "yolox_nano.onnx", f"{_YOLOX}/yolox_nano.onnx", (416, 416),
        "Apache-2.0", "YOLOX-Nano COCO-80, 0.91 M params, COCO mAP 25.8 (Megvii YOLOX README)",
        sha256=frozenset({
            "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d",  # release 0.1.1rc0, 3,659,407 B
            "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a",  # same weights, re-exported (shared/models)
        }),
    ),
    ModelSpec("yolox-tiny", "yolox", "detector", "yolox_tiny.onnx", f"{_YOLOX}/yolox_tiny.onnx", (416, 416),
              "Apache-2.0", "YOLOX-Tiny COCO-80, 5.06 M params, COCO mAP 32.8 (Megvii YOLOX README)"),
    ModelSpec("yolox-s", "yolox", "detector", "yolox_s.onnx", f"{_YOLOX}/yolox_s.onnx", (640, 640),
              "Apache-2.0", "YOLOX-S COCO-80, 9.0 M params, COCO mAP 40.5 (Megvii YOLOX README)"),
    ModelSpec(
        "rtmdet-nano", "rtmdet", "detector", "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip",
        f"{_OPENMMLAB}/rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip", (320, 320), "Apache-2.0",
        "RTMDet-nano person (COCO+Objects365), person AP 40.3 (mmpose RTMPose README)", member="end2end.onnx",
        member_sha256=frozenset({"8297e829ccc5590c8e2d32d5a211f322a0585fb7467eec85eb12c9525b0b95d6"}),
    ),
    ModelSpec(
        "rtmdet-m", "rtmdet", "detector", "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.zip",
        f"{_OPENMMLAB}/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.zip", (640, 640), "Apache-2.0",
        "RTMDet-m person (COCO+Objects365), person AP 62.5 (mmpose RTMPose README)", member="end2end.onnx",
    ),
    _rtmpose("t", "026a1439_20230504", 68.5,
             zip_sha="937003a70832d9cc34ea16927f504792f3133e92dda1b9c626236bbbe9e805cb",
             onnx_sha="a6c2f6a3896a4d51131d14d7a80a3d08b50f559af5a58a45d5b098aef510a70f"),
    _rtmpose("s", "acd4a1ef_20230504", 72.2,
             onnx_sha="9aeb635b83f86aea45cf45d85798f7eba1a162de8e0d721c44e54fe5eebaf47d"),
    _rtmpose("m", "e48f03d0_20230504", 75.8),
    _rtmpose("l", "4dba18fc_20230504", 76.5),
    ModelSpec(
        "blazepose-full", "blazepose", "pose", "blazepose_landmark_full.onnx", None, (256, 256), "Apache-2.0",
        "MediaPipe 0.10.14 pose_landmark_full.tflite converted with tf2onnx (opset 17); the original is at "
        "https://storage.googleapis.com/mediapipe-assets/pose_landmark_full.tflite — convert it with "
        "`python -m tf2onnx.convert --tflite pose_landmark_full.tflite --output blazepose_landmark_full.onnx --opset 17`",
        sha256=frozenset({"ac729ddc46532440124a822b093ea803139e8e635bb8c6233c09d6faa36b8382"}),
    ),
)}

_NAME_HASH = re.compile(r"-([0-9a-f]{8})(?:_\d{8})?\.pth$")


def name_hash_prefix(path: str | Path) -> str | None:
    """Return the 8-hex sha256 prefix a checkpoint's file name carries (torch.hub convention).

    ``rtmdet_nano_…-05d8511e.pth`` → ``"05d8511e"``; None for names without one, and for
    zips and ONNX files, whose names reuse their checkpoint's prefix.
    """
    match = _NAME_HASH.search(Path(path).name)
    return match.group(1) if match else None


def verify_name_hash(path: str | Path) -> None:
    """Check a ``.pth`` checkpoint against the hash prefix in its own name.

    Raises:
        ModelHashError: the file's sha256 does not start with the prefix.
    """
    prefix = name_hash_prefix(path)
    if prefix is not None:
        digest = sha256_of(path)
        if not digest.startswith(prefix):
            raise ModelHashError(f"{Path(path).name}: sha256 starts {digest[:8]}, the file name says {prefix}")


def model_dirs() -> list[Path]:
    """Folders named in ``POSESTREAM_MODEL_DIR``, in order."""
    value = os.environ.get("POSESTREAM_MODEL_DIR", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def cache_dir() -> Path:
    """The user cache: ``$POSESTREAM_HOME`` or ``~/.cache/posestream``."""
    return Path(os.environ.get("POSESTREAM_HOME") or Path.home() / ".cache" / "posestream").expanduser()


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready to load: the ONNX path and, when known, its zoo entry."""

    onnx_path: Path
    spec: ModelSpec | None


def _recorded_hash(path: Path) -> frozenset[str]:
    sidecar = path.with_name(path.name + ".sha256")
    return frozenset({sidecar.read_text().strip()}) if sidecar.is_file() else frozenset()


def _extract_member(archive: Path, member: str, accepted: frozenset[str], what: str) -> Path:
    """Extract ``member`` of an MMDeploy SDK zip into the cache (atomically) and verify it."""
    digest = sha256_of(archive)[:16]
    target = cache_dir() / "extracted" / f"{archive.stem}-{digest}" / member
    if not target.is_file():
        try:
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
                if not names:
                    raise ModelError(f"{what}: {archive.name} holds no {member} (has {', '.join(zf.namelist()[:6])})")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(names[0]) as src, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                    shutil.copyfileobj(src, tmp)
                os.replace(tmp.name, target)
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{what}: {archive} is not a valid zip ({exc})") from exc
    check_sha256(target, accepted, what)
    return target


def _finish(path: Path, spec: ModelSpec | None) -> ResolvedModel:
    """Verify ``path`` against ``spec`` and extract the ONNX member of a zip."""
    what = spec.name if spec else path.name
    if spec is not None:
        check_sha256(path, spec.sha256 or _recorded_hash(path), what)
    if path.suffix == ".zip":
        member = spec.member if spec and spec.member else "end2end.onnx"
        accepted = spec.member_sha256 if spec else frozenset()
        return ResolvedModel(_extract_member(path, member, accepted, what), spec)
    return ResolvedModel(path, spec)


def resolve_model(name_or_path: str | Path, download_missing: bool = True, progress: bool = True) -> ResolvedModel:
    """Find (or download) a model by zoo name or path; see the module docstring for the order.

    Args:
        name_or_path: a key of :data:`MODELS` or a path to an ``.onnx``/``.zip`` file.
        download_missing: download zoo models found nowhere locally.
        progress: progress bar for downloads.

    Returns:
        The ONNX file to load and its :class:`ModelSpec` (None for an unknown file).

    Raises:
        ModelNotFoundError: not a zoo name and no such file, or not found and not downloadable.
        ModelHashError: a file whose sha256 is not the expected one.
        ModelError: a zip without its ONNX member.
    """
    text = str(name_or_path)
    spec = MODELS.get(text)
    if spec is None:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"model {text!r} is neither a file nor a known model ({', '.join(MODELS)})"
            )
        known = next((s for s in MODELS.values() if s.filename == path.name), None)
        verify_name_hash(path)
        return _finish(path, known)

    for folder in [*model_dirs(), cache_dir()]:
        candidate = folder / spec.filename
        if candidate.is_file():
            return _finish(candidate, spec)
    if not download_missing or spec.url is None:
        where = ", ".join(str(d) for d in [*model_dirs(), cache_dir()])
        how = "downloads are off" if spec.url else "it has no download address: " + spec.notes
        raise ModelNotFoundError(f"{spec.name}: {spec.filename} not found in {where}; {how}")
    path = download(spec.url, cache_dir() / spec.filename, spec.sha256, progress=progress)
    return _finish(path, spec)
