"""The streaming side of posestream: frames in, typed per-frame results out.

:mod:`stream.sources` reads frames, :mod:`stream.pipeline` turns a frame into a
:class:`stream.results.FrameResult`, :mod:`stream.sinks` writes results (JSON lines, mmpose
JSON, annotated video) and :mod:`stream.annotate` draws them. :mod:`stream.cli` is the
``posestream`` command.
"""
