"""Small ONNX models built in tests, with the I/O names of the real exports (MMDeploy, YOLOX)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, initializers) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def constant_outputs_model(input_name: str, input_shape: list, outputs: dict[str, np.ndarray],
                           batch_follows_input: bool = True) -> bytes:
    """A model whose outputs are fixed arrays (first dim broadcast to the input's batch).

    Each output is ``const + 0 * mean(input)``, so the input is really consumed.
    """
    nodes = [helper.make_node("ReduceMean", [input_name], ["mean"], axes=list(range(1, len(input_shape))), keepdims=1)]
    initializers, graph_outputs = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])], []
    nodes.append(helper.make_node("Mul", ["mean", "zero"], ["zeroed"]))  # [B,1,1,1]
    for name, value in outputs.items():
        value = np.asarray(value)
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_const"))
        rank = value.ndim
        initializers.append(numpy_helper.from_array(np.array([-1] + [1] * (rank - 1), np.int64), f"{name}_shape"))
        nodes.append(helper.make_node("Reshape", ["zeroed", f"{name}_shape"], [f"{name}_z"]))
        target = f"{name}_f" if value.dtype != np.float32 else name
        nodes.append(helper.make_node("Add", [f"{name}_z", f"{name}_const"], [target]))
        if value.dtype != np.float32:
            nodes.append(helper.make_node("Cast", [target], [name], to=helper.np_dtype_to_tensor_dtype(value.dtype)))
        dims = ["batch" if batch_follows_input else value.shape[0], *value.shape[1:]]
        graph_outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), dims))
    graph_input = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)
    return _model(nodes, [graph_input], graph_outputs, initializers)


def rtmpose_like(peaks_x: np.ndarray, peaks_y: np.ndarray, values_x: np.ndarray, values_y: np.ndarray) -> bytes:
    """An MMDeploy-style RTMPose model: ``input`` [B,3,256,192] → ``simcc_x`` [B,17,384], ``simcc_y`` [B,17,512].

    Keypoint k's x vector peaks at bin ``peaks_x[k]`` with value ``values_x[k]`` (y likewise);
    every other bin is 0.01.
    """
    simcc_x = np.full((1, 17, 384), 0.01, np.float32)
    simcc_y = np.full((1, 17, 512), 0.01, np.float32)
    simcc_x[0, np.arange(17), peaks_x] = values_x
    simcc_y[0, np.arange(17), peaks_y] = values_y
    return constant_outputs_model("input", ["batch", 3, 256, 192], {"simcc_x": simcc_x, "simcc_y": simcc_y})
