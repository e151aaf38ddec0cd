"""The ONNX Runtime backend: provider choice and input checks."""

import numpy as np
import onnxruntime as ort
import pytest

from engines.backend import OnnxRuntimeBackend
from engines.errors import ModelError, ModelSignatureError
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
