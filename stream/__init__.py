"""The runtime: frames in, one typed result per frame out.

The folders are the stages, in the order a frame meets them: :mod:`.capture` (files, webcams,
RTSP) → :mod:`.detect` (person boxes) → :mod:`.pose` (keypoints) → :mod:`.track` (ids, boxes
between detections, smoothing) → :mod:`.lift` (3D) → :mod:`.classify` (posture, gesture) →
:mod:`.sinks` (JSON lines, mmpose JSON, annotated video). :class:`.results.FrameResult` is the
result that crosses them; :mod:`.pipeline` runs the stages for one stream in one process,
:mod:`.run` is ``posestream run``, :mod:`.graph` runs them as ZeroMQ processes
(``posestream live``), :mod:`.config` holds every setting and :mod:`.cli` is the command.
Nothing here imports torch or :mod:`posestream.offline`.
"""
