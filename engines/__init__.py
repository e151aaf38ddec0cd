"""Inference engines: where models run, and where their files come from.

The lowest layer of posestream: an inference-backend interface over ONNX Runtime (CPU, CUDA,
TensorRT; :mod:`posestream.engines.backend`), the model zoo and its downloader
(:mod:`posestream.engines.zoo`, :mod:`posestream.engines.download`), building a stage's
model wrapper from a zoo name or file (:mod:`posestream.engines.build`), keypoint layouts and
the image transforms shared by the models (:mod:`posestream.engines.layouts`,
:mod:`posestream.engines.transforms`), atomic file writing. It imports nothing of
:mod:`posestream.stream` or :mod:`posestream.offline`, and nothing of the mm* stack.
"""
