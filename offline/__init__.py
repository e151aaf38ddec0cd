"""Offline processing of recorded input: :mod:`offline.run` is ``posestream run``."""
