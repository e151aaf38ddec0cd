"""Inference engines and the models that run on them.

The runtime side of posestream: an inference-backend interface (:mod:`engines.backend`),
the model zoo and its downloader (:mod:`engines.zoo`, :mod:`engines.download`), the image
transforms shared by the models (:mod:`engines.transforms`), person detectors
(:mod:`engines.detectors`) and top-down keypoint estimators (:mod:`engines.keypoints`).
Nothing here imports the mm* stack: exported ONNX files are all it needs.
"""
