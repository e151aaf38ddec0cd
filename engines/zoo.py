"""The model zoo: every known model, and where to find its file.

Resolution order for a model (:func:`resolve_model`):

1. an explicit path to an ``.onnx`` file, an MMDeploy SDK ``.zip`` or a ``.tflite`` file;
2. the folders named in ``POSESTREAM_MODEL_DIR`` (``os.pathsep``-separated);
3. the user cache, ``$POSESTREAM_HOME`` or ``~/.cache/posestream``;
4. for a model with an *alternate* form (:class:`AlternateFile`: the same weights in another
   format, run on another runtime), that file in the folders of 2 and 3;
5. a download into the cache (progress bar, resume, deadline, sha256 check, atomic rename) of
   the primary file, or of the alternate one where only it has a public address.

``blazepose-full`` is the case of 4: its ONNX file (``blazepose_landmark_full.onnx``, made with
tf2onnx) is served nowhere, so where no folder holds it, MediaPipe's original
``pose_landmark_full.tflite`` is used (found locally, else downloaded) and runs on LiteRT
(:mod:`posestream.engines.litert`). :class:`ResolvedModel` says which runtime loads the file.

Hashes: where the publisher's file has a known sha256 it is checked on every load. OpenMMLab
file names carry 8 hex digits, but those are the prefix of the *PyTorch checkpoint's* sha256,
not of the ONNX SDK zip (e.g. ``rtmpose-t_…-026a1439_20230504.zip`` has sha256 ``937003a7…``),
so that prefix is only checked on ``.pth`` files (:func:`name_hash_prefix`). A file with no
known hash is trusted on first download and its digest recorded beside it (``.sha256``).
Every resolution hashes the file again before it is used (~20 ms for 10 MB).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from posestream.engines.download import check_sha256, download, sha256_of
from posestream.engines.errors import CacheError, ModelError, ModelHashError, ModelNotFoundError

_OPENMMLAB = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk"
_YOLOX = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0"
_MEDIAPIPE = "https://storage.googleapis.com/mediapipe-assets"

#: Runtime names of :attr:`ResolvedModel.runtime` (as :data:`posestream.engines.backend.RUNTIMES`).
ONNXRUNTIME, LITERT = "onnxruntime", "litert"


@dataclass(frozen=True)
class AlternateFile:
    """The same weights as a zoo entry's primary file, in another format.

    Attributes:
        filename: the publisher's file name (looked for in model folders and the cache, and
            the name a download is stored under).
        url: official download address, or None.
        sha256: accepted sha256 digests (lowercase hex); empty: unknown.
        runtime: what loads it: ``"litert"`` for ``.tflite``.
        aliases: other file names it is looked for under in model folders (never downloaded
            under them), e.g. the name this workplace's shared folder gives it.
        keep_outputs: the outputs the model's wrapper reads; the runtime computes only these
            (:attr:`ResolvedModel.keep_outputs`); empty: all.
    """

    filename: str
    url: str | None
    sha256: frozenset[str]
    runtime: str
    aliases: tuple[str, ...] = ()
    keep_outputs: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """``filename`` and then ``aliases``."""
        return (self.filename, *self.aliases)


@dataclass(frozen=True)
class ModelSpec:
    """One known model.

    Attributes:
        name: zoo key, e.g. ``"rtmpose-m"``.
        family: wrapper class family: ``yolox``, ``rtmdet``, ``rtmpose``, ``blazepose``, ``hand`` or ``palm``.
        role: ``detector``, ``pose``, ``hand`` or ``palm``.
        filename: the publisher's file name (also what is looked for in model folders).
        url: official download address, or None where none serves this exact file.
        sha256: accepted sha256 digests of ``filename`` (empty: unknown).
        member: for MMDeploy SDK zips, the ONNX file inside (``end2end.onnx``).
        member_sha256: accepted digests of that member (empty: unknown).
        input_size: network input (width, height) in pixels.
        licence: SPDX id of the weights' licence.
        notes: provenance and published accuracy.
        alternate: the same weights in another format, used where ``filename`` is found
            nowhere locally (:class:`AlternateFile`); None for most models.
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
    alternate: AlternateFile | None = None


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
        "MediaPipe BlazePose GHUM full landmarks, 33 keypoints. The ONNX file is MediaPipe 0.10.14's "
        "pose_landmark_full.tflite converted with tf2onnx (opset 17) and is served nowhere; where no model "
        "folder holds it, that .tflite itself runs on LiteRT (ai-edge-litert), downloaded from "
        f"{_MEDIAPIPE}/pose_landmark_full.tflite. Its sha256 is that of MediaPipe 0.10.14's file, the one "
        "MediaPipe's own build pins (google-ai-edge/mediapipe third_party/external_files.bzl, object generation "
        "1661875894245786). For the ONNX form (GPU), convert it: `python -m tf2onnx.convert --tflite "
        "pose_landmark_full.tflite --output blazepose_landmark_full.onnx --opset 17`",
        sha256=frozenset({"ac729ddc46532440124a822b093ea803139e8e635bb8c6233c09d6faa36b8382"}),
        alternate=AlternateFile(
            "pose_landmark_full.tflite", f"{_MEDIAPIPE}/pose_landmark_full.tflite",
            # MediaPipe 0.10.14's pose_landmark_full.tflite, 6,440,512 B
            frozenset({"e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"}),
            LITERT, aliases=("blazepose_landmark_full.tflite",),
            # landmarks, pose flag, world landmarks: what batched_blazepose_graph keeps of the ONNX file
            keep_outputs=("Identity", "Identity_1", "Identity_4"),
        ),
    ),
    ModelSpec(
        "hand-full", "hand", "hand", "hand_landmark_full.onnx", None, (224, 224), "Apache-2.0",
        "MediaPipe hand landmarks (full), 21 keypoints per hand crop (posestream run --hands). The ONNX file "
        "is MediaPipe 0.10.14's modules/hand_landmark/hand_landmark_full.tflite converted with tf2onnx "
        "(opset 17) and is served nowhere; where no model folder holds it, that .tflite runs on LiteRT, "
        f"downloaded from {_MEDIAPIPE}/hand_landmark_full.tflite. Convert it for the GPU: `python -m "
        "tf2onnx.convert --tflite hand_landmark_full.tflite --output hand_landmark_full.onnx --opset 17`",
        sha256=frozenset({"c66e09544dea366bc9ae1f9b7d33dd9f799bf03d0adce5e74d38efb31a56a7a1"}),
        alternate=AlternateFile(
            "hand_landmark_full.tflite", f"{_MEDIAPIPE}/hand_landmark_full.tflite",
            # the file of MediaPipe 0.10.14's wheel, 5,478,917 B
            frozenset({"11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"}), LITERT,
            keep_outputs=("Identity", "Identity_1", "Identity_2"),
        ),
    ),
    ModelSpec(
        "palm-full", "palm", "palm", "palm_detection_full.onnx", None, (192, 192), "Apache-2.0",
        "MediaPipe palm detector (full), SSD with 2016 anchors, a box and 7 palm keypoints per palm: finds "
        "the hands the body pose does not show (pipeline.palm_detection). The ONNX file is MediaPipe 0.10.14's "
        "modules/palm_detection/palm_detection_full.tflite converted with tf2onnx (opset 17) and is served "
        "nowhere; where no model folder holds it, that .tflite runs on LiteRT, downloaded from "
        f"{_MEDIAPIPE}/palm_detection_full.tflite. Convert it for the GPU: `python -m tf2onnx.convert --tflite "
        "palm_detection_full.tflite --output palm_detection_full.onnx --opset 17`",
        sha256=frozenset({"c7bcf5162e7bdead6f8ce3ebfd79527ba3f8ebd82bde24456b734cb96a683d22"}),
        alternate=AlternateFile(
            "palm_detection_full.tflite", f"{_MEDIAPIPE}/palm_detection_full.tflite",
            # the file of MediaPipe 0.10.14's wheel, 2,339,846 B
            frozenset({"1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"}), LITERT,
            keep_outputs=("Identity", "Identity_1"),
        ),
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


def cache_folder(*parts: str) -> Path:
    """A folder of the user cache (:func:`cache_dir`, or its sub-folder ``parts``), created
    and checked writable before anything is downloaded or unpacked into it.

    Raises:
        CacheError: it cannot be made or written in (``POSESTREAM_HOME`` names a file, a
            read-only or missing place, no permission); the message names the variable.
    """
    folder = cache_dir().joinpath(*parts)
    where = (f"POSESTREAM_HOME={os.environ['POSESTREAM_HOME']}" if os.environ.get("POSESTREAM_HOME")
             else f"the model cache {cache_dir()}")
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".posestream-check-"):
            pass
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CacheError(f"{where}: cannot use {folder} as the model cache ({why}); "
                         "set POSESTREAM_HOME to a writable folder") from exc
    return folder


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready to load, the runtime that loads it and, when known, its zoo entry.

    Attributes:
        path: the file to load: an ``.onnx`` file (also the member extracted from an SDK zip)
            or a ``.tflite`` file; its sha256 was checked when the zoo knows it.
        spec: the zoo entry, or None for a file the zoo does not know.
        runtime: ``"onnxruntime"`` or ``"litert"`` (:data:`posestream.engines.backend.RUNTIMES`).
        keep_outputs: the only outputs the runtime needs to compute (empty: all); set for a
            zoo model's alternate file (:attr:`AlternateFile.keep_outputs`), passed to
            :func:`posestream.engines.backend.open_backend`.
    """

    path: Path
    spec: ModelSpec | None
    runtime: str = ONNXRUNTIME
    keep_outputs: tuple[str, ...] = ()

    @property
    def onnx_path(self) -> Path:
        """The ONNX file (older name of :attr:`path`).

        Raises:
            ModelError: the model resolved to a file of another runtime (use :attr:`path` and
                :attr:`runtime`).
        """
        if self.runtime != ONNXRUNTIME:
            raise ModelError(f"{self.path.name} is not an ONNX model (it runs on {self.runtime}); "
                             f"put {self.spec.filename if self.spec else 'its .onnx file'} in a folder "
                             "named by POSESTREAM_MODEL_DIR for the ONNX form")
        return self.path


def _recorded_hash(path: Path) -> frozenset[str]:
    sidecar = path.with_name(path.name + ".sha256")
    return frozenset({sidecar.read_text().strip()}) if sidecar.is_file() else frozenset()


def _extract_member(archive: Path, member: str, accepted: frozenset[str], what: str) -> Path:
    """Extract ``member`` of an MMDeploy SDK zip into the cache (atomically) and verify it."""
    digest = sha256_of(archive)[:16]
    folder = ("extracted", f"{archive.stem}-{digest}")
    target = cache_dir().joinpath(*folder, member)
    if not target.is_file():
        try:
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
                if not names:
                    raise ModelError(f"{what}: {archive.name} holds no {member} (has {', '.join(zf.namelist()[:6])})")
                cache_folder(*folder)
                target.parent.mkdir(parents=True, exist_ok=True)  # a member in a sub-folder
                with zf.open(names[0]) as src, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                    shutil.copyfileobj(src, tmp)
                os.replace(tmp.name, target)
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{what}: {archive} is not a valid zip ({exc})") from exc
    check_sha256(target, accepted, what)
    return target


def _finish(path: Path, spec: ModelSpec | None) -> ResolvedModel:
    """Verify ``path`` against ``spec`` and extract the ONNX member of a zip.

    Raises:
        ModelHashError: the file (or the zip's member) has another sha256.
        ModelError: a zip without its ONNX member.
    """
    what = spec.name if spec else path.name
    if spec is not None:
        check_sha256(path, spec.sha256 or _recorded_hash(path), what)
    if path.suffix == ".zip":
        member = spec.member if spec and spec.member else "end2end.onnx"
        accepted = spec.member_sha256 if spec else frozenset()
        return ResolvedModel(_extract_member(path, member, accepted, what), spec)
    return ResolvedModel(path, spec, LITERT if path.suffix == ".tflite" else ONNXRUNTIME)


def _finish_alternate(path: Path, spec: ModelSpec) -> ResolvedModel:
    """Verify ``path``, a copy of ``spec.alternate``.

    Raises:
        ModelHashError: it has another sha256.
    """
    alternate = spec.alternate
    check_sha256(path, alternate.sha256 or _recorded_hash(path), spec.name)
    return ResolvedModel(path, spec, alternate.runtime, alternate.keep_outputs)


def _search_dirs() -> list[Path]:
    return [*model_dirs(), cache_dir()]


def _locate(spec: ModelSpec) -> tuple[Path, bool] | None:
    """Where ``spec``'s file is found locally: (path, whether it is the alternate file), or None.

    Order: the primary file in every folder (model folders, then the cache), then the
    alternate file under each of its names in every folder. Nothing is hashed here.
    """
    for folder in _search_dirs():
        if (folder / spec.filename).is_file():
            return folder / spec.filename, False
    if spec.alternate is not None:
        for folder in _search_dirs():
            for name in spec.alternate.names:
                if (folder / name).is_file():
                    return folder / name, True
    return None


def _runtime_installed(runtime: str) -> bool:
    if runtime == LITERT:
        from posestream.engines.litert import litert_available

        return litert_available()
    return True


def _download_plan(spec: ModelSpec) -> tuple[str, str, frozenset[str], bool] | None:
    """What a download of ``spec`` fetches: (url, file name, accepted sha256, is alternate), or
    None where neither the primary nor an alternate file whose runtime is installed has an address."""
    if spec.url is not None:
        return spec.url, spec.filename, spec.sha256, False
    alternate = spec.alternate
    if alternate is not None and alternate.url is not None and _runtime_installed(alternate.runtime):
        return alternate.url, alternate.filename, alternate.sha256, True
    return None


def _known_path(path: Path) -> tuple[ModelSpec | None, bool]:
    """The zoo entry whose primary (False) or alternate (True) file name ``path`` carries."""
    for spec in MODELS.values():
        if spec.filename == path.name:
            return spec, False
        if spec.alternate is not None and path.name in spec.alternate.names:
            return spec, True
    return None, False


def resolve_model(name_or_path: str | Path, download_missing: bool = True, progress: bool = True) -> ResolvedModel:
    """Find (or download) a model by zoo name or path; see the module docstring for the order.

    Args:
        name_or_path: a key of :data:`MODELS` or a path to an ``.onnx``/``.zip``/``.tflite`` file.
        download_missing: download zoo models found nowhere locally.
        progress: progress bar for downloads.

    Returns:
        The file to load, the runtime that loads it (``.tflite``: LiteRT, else ONNX Runtime) and
        its :class:`ModelSpec` (None for a file the zoo does not know by name). A file whose name
        is a zoo file name is checked against that entry's sha256.

    Raises:
        ModelNotFoundError: not a zoo name and no such file; not found and not downloadable
            (the message says where it was looked for and how to get it); the download failed
            (offline, HTTP error, broken off, deadline).
        ModelHashError: a file whose sha256 is not the expected one.
        CacheError: a download or a zip's member must go to a cache folder that cannot be made
            or written in (:func:`cache_folder`).
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
        known, is_alternate = _known_path(path)
        verify_name_hash(path)
        return _finish_alternate(path, known) if is_alternate else _finish(path, known)

    found = _locate(spec)
    if found is not None:
        path, is_alternate = found
        return _finish_alternate(path, spec) if is_alternate else _finish(path, spec)
    plan = _download_plan(spec)
    if not download_missing or plan is None:
        raise ModelNotFoundError(f"{spec.name}: {_missing_reason(spec, download_missing)}")
    url, filename, accepted, is_alternate = plan
    path = download(url, cache_folder() / filename, accepted, progress=progress)
    return _finish_alternate(path, spec) if is_alternate else _finish(path, spec)


def _missing_reason(spec: ModelSpec, download_missing: bool = True) -> str:
    """Why ``spec`` can be neither found nor downloaded, and what to do, in one line."""
    names = [spec.filename, *(spec.alternate.names if spec.alternate else ())]
    where = ", ".join(str(d) for d in _search_dirs())
    alternate = spec.alternate
    if not download_missing:
        how = "downloads are off"
    elif alternate is not None and alternate.url is not None and not _runtime_installed(alternate.runtime):
        how = (f"{alternate.filename} can be downloaded but needs LiteRT (pip install ai-edge-litert), "
               f"or put {spec.filename} in a folder named by POSESTREAM_MODEL_DIR")
    else:
        how = "it has no download address: " + spec.notes
    return f"{' or '.join(names)} not found in {where}; {how}"


def describe_models(check_hashes: bool = True) -> list[str]:
    """One line per zoo model for ``posestream models``: what it is and where its file is.

    Each line: name, role, licence, input size, then one of

    * ``found <path> (<runtime>)`` — used as it is (with ``, sha256 MISMATCH: will be refused``
      when ``check_hashes`` and its digest is not an accepted one);
    * ``will be downloaded from <url> into <cache> (<runtime>)`` on first use;
    * ``missing: …`` — found nowhere and not downloadable, with what to do.

    Args:
        check_hashes: hash every file found (about 0.3 s per 100 MB).

    Returns:
        The lines, in :data:`MODELS` order, without trailing newlines.
    """
    lines = []
    for spec in MODELS.values():
        head = f"{spec.name:15s} {spec.role:8s} {spec.licence:11s} {spec.input_size[0]}x{spec.input_size[1]}  "
        found = _locate(spec)
        if found is not None:
            path, is_alternate = found
            runtime = spec.alternate.runtime if is_alternate else (LITERT if path.suffix == ".tflite" else ONNXRUNTIME)
            status = f"found {path} ({runtime})"
            if check_hashes:
                accepted = (spec.alternate.sha256 if is_alternate else spec.sha256) or _recorded_hash(path)
                if accepted and sha256_of(path) not in accepted:
                    status += ", sha256 MISMATCH: will be refused (delete it to download again)"
            lines.append(head + status)
            continue
        plan = _download_plan(spec)
        if plan is not None:
            url, filename, _, is_alternate = plan
            runtime = spec.alternate.runtime if is_alternate else ONNXRUNTIME
            lines.append(head + f"will be downloaded from {url} into {cache_dir() / filename} ({runtime})")
        else:
            lines.append(head + "missing: " + _missing_reason(spec))
    return lines
