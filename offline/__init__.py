"""The offline layer: work on recorded results rather than live frames.

VideoPose3D dataset export (:mod:`posestream.offline.export`), training and evaluating the 3D
lifter with PyTorch and converting its checkpoints to the runtime's safetensors file
(:mod:`posestream.offline.lifter_model`, :mod:`posestream.offline.lifter_train`, :mod:`posestream.offline.lifter_data`,
:mod:`posestream.offline.mocap`, :mod:`posestream.offline.metrics3d`), and the evaluations of
tracking and classification. It builds on :mod:`posestream.stream` and
:mod:`posestream.engines`; they never import it. Its commands join ``posestream`` through the
``posestream.commands`` entry points (:mod:`posestream.offline.cli`).
"""
