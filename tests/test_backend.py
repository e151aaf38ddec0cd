"""The ONNX Runtime backend: provider choice and input checks."""

import numpy as np
import onnxruntime as ort
import pytest

from posestream.engines.backend import OnnxRuntimeBackend
from posestream.engines.errors import ModelError, ModelSignatureError
from onnx_builders import rtmpose_like


@pytest.fixture(scope="module")
def model_bytes():
    return rtmpose_like(np.zeros(17, int), np.zeros(17, int), np.ones(17), np.ones(17))


def test_cpu_provider_is_reported(model_bytes):
    backend = OnnxRuntimeBackend(model_bytes, device="cpu")
    assert backend.provider == "CPUExecutionProvider"
    assert [s.describe() for s in backend.inputs] == ["input[?,3,256,192] float32"]


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_an_error_not_a_silent_fallback(model_bytes):
    with pytest.raises(ModelError, match="needs CUDAExecutionProvider"):
        OnnxRuntimeBackend(model_bytes, device="cuda")


def test_feeds_are_checked_with_one_message_naming_every_problem(model_bytes):
    backend = OnnxRuntimeBackend(model_bytes, device="cpu")
    with pytest.raises(ModelSignatureError) as err:
        backend.run({"input": np.zeros((2, 3, 224, 224), np.float64)})
    message = str(err.value)
    assert "dtype float64 but the model wants float32" in message
    assert "shape [2, 3, 224, 224] but the model wants input[?,3,256,192]" in message
    with pytest.raises(ModelSignatureError, match="missing input input"):
        backend.run({"image": np.zeros((1, 3, 256, 192), np.float32)})
    out = backend.run({"input": np.zeros((2, 3, 256, 192), np.float32)})
    assert [o.shape for o in out] == [(2, 17, 384), (2, 17, 512)]


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx")


# --- LiteRT (.tflite) -------------------------------------------------------------------------

from conftest import shared_file  # noqa: E402

from posestream.engines import litert  # noqa: E402
from posestream.engines.backend import open_backend  # noqa: E402

needs_litert = pytest.mark.skipif(not litert.litert_available(),
                                  reason="ai-edge-litert is not installed (pip install ai-edge-litert)")

#: A person box (x1, y1, x2, y2 pixels) in pose.jpg, as YOLOX-Nano finds it.
POSE_JPG_BOX = np.array([242.5, 236.66, 764.38, 645.9], np.float32)


def _real_crops(count: int) -> np.ndarray:
    """``count`` BlazePose input crops of pose.jpg: [count,256,256,3] float32 RGB in [0, 1],
    shifted and turned a little from one to the next."""
    import cv2

    from posestream.engines.transforms import crop_warp_matrix

    image = cv2.imread(str(shared_file("media/tfjs-pose-testdata/pose.jpg")))
    center = (POSE_JPG_BOX[:2] + POSE_JPG_BOX[2:]) / 2
    side = float((POSE_JPG_BOX[2:] - POSE_JPG_BOX[:2]).max() * 1.25)
    matrices = [crop_warp_matrix(center + [5 * i, -3 * i], (side, side), 0.2 * i, (256, 256)) for i in range(count)]
    crops = np.stack([cv2.warpAffine(image, m, (256, 256)) for m in matrices])[..., ::-1]
    return np.ascontiguousarray(crops, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def blazepose_pair():
    """(LiteRT backend on the .tflite, ONNX Runtime backend on the tf2onnx .onnx), both 2 threads."""
    tflite = shared_file("models/blazepose_landmark_full.tflite")
    onnx_file = shared_file("models/blazepose_landmark_full.onnx")
    return litert.LiteRtBackend(tflite, threads=2), OnnxRuntimeBackend(onnx_file, device="cpu", threads=2)


@needs_litert
def test_litert_signature_has_the_onnx_names_with_a_dynamic_batch(blazepose_pair):
    lite, ort_backend = blazepose_pair
    assert lite.provider == "LiteRT-CPU" and lite.name == "blazepose_landmark_full.tflite"
    assert [s.describe() for s in lite.inputs] == ["input_1[?,256,256,3] float32"]
    assert [(s.name, s.shape[1:], s.dtype) for s in lite.outputs] == \
        [(s.name, s.shape[1:], s.dtype) for s in ort_backend.outputs]
    assert all(s.shape[0] is None for s in lite.outputs)


@needs_litert
@pytest.mark.parametrize("count", [1, 3])
def test_litert_outputs_match_the_onnx_model_on_real_crops(blazepose_pair, count):
    """Same crops in: landmarks (x, y in crop pixels) within 1e-3 px of the ONNX model's, z within
    1e-3, the pose flag and the world landmarks (metres) within 1e-4, for every name the
    wrapper reads; a batch gives what its crops give one by one."""
    lite, ort_backend = blazepose_pair
    crops = _real_crops(count)
    names = ["Identity", "Identity_1", "Identity_4"]
    got = lite.run({"input_1": crops}, names)
    want = [np.concatenate(parts) for parts in zip(*(ort_backend.run({"input_1": c[None]}, names) for c in crops))]
    assert [g.shape for g in got] == [(count, 195), (count, 1), (count, 117)]
    landmarks, reference = got[0].reshape(count, 39, 5), want[0].reshape(count, 39, 5)
    assert np.abs(landmarks[..., :2] - reference[..., :2]).max() < 1e-3
    assert np.abs(landmarks[..., 2] - reference[..., 2]).max() < 1e-3
    np.testing.assert_allclose(got[1], want[1], atol=1e-4)
    np.testing.assert_allclose(got[2], want[2], atol=1e-4)
    assert (got[1] > 0.99).all()  # a person is there: the check compares real landmarks
    alone = [lite.run({"input_1": c[None]}, names) for c in crops]
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([a[k] for a in alone]), got[k])


@needs_litert
def test_blazepose_wrapper_runs_unchanged_on_litert(blazepose_pair):
    """The wrapper (``input_1`` in, ``Identity``/``Identity_1`` out, batch from ``inputs[0].shape``)
    gives the ONNX model's keypoints: within 1e-3 crop px (scaled to image px) on one pass; the
    aligned second pass re-crops from the first pass's points, so its difference is larger."""
    from posestream.stream.pose import BlazePoseLandmark

    import cv2

    lite, ort_backend = blazepose_pair
    image = cv2.imread(str(shared_file("media/tfjs-pose-testdata/pose.jpg")))
    boxes = np.stack([POSE_JPG_BOX, POSE_JPG_BOX + 4.0])
    px_per_crop_px = float((POSE_JPG_BOX[2:] - POSE_JPG_BOX[:2]).max() * 1.25 / 256)
    for refine, tolerance in ((False, 1e-3 * px_per_crop_px), (True, 0.05)):
        got = BlazePoseLandmark(lite, refine=refine)(image, boxes)
        want = BlazePoseLandmark(ort_backend, refine=refine)(image, boxes)
        assert np.abs(got.keypoints - want.keypoints).max() < tolerance, refine
        np.testing.assert_allclose(got.keypoint_scores, want.keypoint_scores, atol=1e-3)


@needs_litert
def test_load_model_opens_a_tflite_on_litert(tmp_path, monkeypatch):
    """The zoo name, with only the .tflite in the model folder, and a .tflite path: LiteRT, no
    ONNX rewrite."""
    from posestream.stream.pose import load_pose_estimator

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "pose_landmark_full.tflite").symlink_to(shared_file("models/blazepose_landmark_full.tflite"))
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(folder))
    for model in ("blazepose-full", str(folder / "pose_landmark_full.tflite")):
        estimator = load_pose_estimator(model, device="cpu", threads=1)
        assert estimator.backend.provider == "LiteRT-CPU" and estimator.backend.threads == 1
        assert estimator.fixed_batch is None
        # the zoo entry prunes the unused heads (segmentation, heatmaps), as for the ONNX file
        assert [s.name for s in estimator.backend.outputs] == ["Identity", "Identity_1", "Identity_4"]


@needs_litert
def test_pruned_tflite_gives_the_same_outputs(blazepose_pair):
    lite, _ = blazepose_pair
    pruned = litert.LiteRtBackend(shared_file("models/blazepose_landmark_full.tflite"), threads=2,
                                  keep_outputs=["Identity_4", "Identity"])
    assert [s.name for s in pruned.outputs] == ["Identity_4", "Identity"]
    crops = _real_crops(2)
    for got, want in zip(pruned.run({"input_1": crops}, ["Identity", "Identity_4"]),
                         lite.run({"input_1": crops}, ["Identity", "Identity_4"])):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ModelSignatureError, match="no output 'Identity_9' to keep"):
        litert.LiteRtBackend(shared_file("models/blazepose_landmark_full.tflite"), keep_outputs=["Identity_9"])


@needs_litert
def test_litert_threads_default_to_the_cores(blazepose_pair):
    backend = litert.LiteRtBackend(shared_file("models/blazepose_landmark_full.tflite"))
    assert backend.threads == litert.default_threads() >= 1


@needs_litert
def test_litert_checks_feeds_and_output_names(blazepose_pair):
    lite, _ = blazepose_pair
    with pytest.raises(ModelSignatureError, match="shape \\[1, 224, 224, 3\\] but the model wants input_1"):
        lite.run({"input_1": np.zeros((1, 224, 224, 3), np.float32)})
    with pytest.raises(ModelSignatureError, match="dtype float64"):
        lite.run({"input_1": np.zeros((1, 256, 256, 3))})
    with pytest.raises(ModelSignatureError, match="unknown output 'ld_3d'"):
        lite.run({"input_1": np.zeros((1, 256, 256, 3), np.float32)}, ["ld_3d"])
    empty = lite.run({"input_1": np.zeros((0, 256, 256, 3), np.float32)}, ["Identity", "Identity_1"])
    assert [e.shape for e in empty] == [(0, 195), (0, 1)]
    assert len(lite.run({"input_1": np.zeros((1, 256, 256, 3), np.float32)})) == 5


@needs_litert
def test_litert_gpu_device_warns_and_runs_on_the_cpu(caplog):
    with caplog.at_level("WARNING"):
        backend = open_backend(shared_file("models/blazepose_landmark_full.tflite"), "litert", device="cuda")
    assert backend.provider == "LiteRT-CPU"
    assert "asked for cuda but LiteRT runs" in caplog.text


@needs_litert
def test_litert_bad_files(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        litert.LiteRtBackend(tmp_path / "absent.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a loadable .tflite model"):
        litert.LiteRtBackend(junk)


def test_litert_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    assert not litert.litert_available()
    with pytest.raises(ModelError, match=r"needs LiteRT, which is not installed \(pip install ai-edge-litert\)"):
        litert.LiteRtBackend(tmp_path / "pose_landmark_full.tflite")


def test_tflite_output_names_follow_the_tf2onnx_convention():
    assert litert.output_names(["Identity", "Identity_1", "Identity_4"]) == ["Identity", "Identity_1", "Identity_4"]
    assert litert.output_names(["Identity_1", "Identity"]) == ["Identity_1", "Identity"]  # own names kept
    assert litert.output_names(["ld_3d", "output_poseflag", "world_3d"]) == ["Identity", "Identity_1", "Identity_2"]
    assert litert.output_names(["Identity", "Identity"]) == ["Identity", "Identity_1"]


def test_open_backend_rejects_an_unknown_runtime(model_bytes):
    assert open_backend(model_bytes, "onnxruntime", device="cpu").provider == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="unknown runtime 'tvm'"):
        open_backend(model_bytes, "tvm")


def _renamed_tflite(tmp_path, renames: dict[str, str]):
    """A copy of the BlazePose .tflite whose tensors are renamed (same-length names: the
    flatbuffer strings are length-prefixed and NUL-terminated, so bytes can be swapped in place)."""
    import struct

    data = shared_file("models/blazepose_landmark_full.tflite").read_bytes()
    for old, new in renames.items():
        assert len(old) == len(new)
        pattern = struct.pack("<I", len(old)) + old.encode() + b"\x00"
        assert data.count(pattern) == 1, old
        data = data.replace(pattern, struct.pack("<I", len(new)) + new.encode() + b"\x00")
    path = tmp_path / "renamed.tflite"
    path.write_bytes(data)
    return path


@needs_litert
def test_tflite_with_other_output_names_is_named_by_position(tmp_path, blazepose_pair):
    """Outputs named like older MediaPipe exports: the wrapper's names still reach the right
    tensors (by position), and the file's own names stay usable."""
    renamed = _renamed_tflite(tmp_path, {"Identity": "ld_3d___", "Identity_1": "poseflag__", "Identity_2": "segment___",
                                         "Identity_3": "heatmap___", "Identity_4": "world_3d__"})
    backend = litert.LiteRtBackend(renamed, threads=2)
    assert [s.name for s in backend.outputs] == ["Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4"]
    crops = _real_crops(2)
    want = blazepose_pair[0].run({"input_1": crops}, ["Identity", "Identity_1", "Identity_4"])
    for names in (["Identity", "Identity_1", "Identity_4"], ["ld_3d___", "poseflag__", "world_3d__"]):
        for got, ref in zip(backend.run({"input_1": crops}, names), want):
            np.testing.assert_array_equal(got, ref)
    pruned = litert.LiteRtBackend(renamed, threads=2, keep_outputs=["Identity", "Identity_1", "Identity_4"])
    assert [s.name for s in pruned.outputs] == ["Identity", "Identity_1", "Identity_4"]
    for got, ref in zip(pruned.run({"input_1": crops}, ["world_3d__", "Identity", "Identity_1"]),
                        [want[2], want[0], want[1]]):
        np.testing.assert_array_equal(got, ref)
