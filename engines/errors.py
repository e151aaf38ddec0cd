"""Errors raised by the engines: one base class so that the command line can print one line."""


class ModelError(RuntimeError):
    """A model file cannot be used: missing, corrupt, wrong hash, or wrong inputs/outputs."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """No file for the model was found locally and it could not be downloaded."""


class ModelHashError(ModelError):
    """A model file's sha256 differs from the expected one."""


class ModelSignatureError(ModelError):
    """A model's input/output names, shapes or dtypes are not what its wrapper expects."""


class CacheError(ModelError):
    """The model cache (``$POSESTREAM_HOME``, default ``~/.cache/posestream``) cannot be made or
    written in, so a model cannot be downloaded or unpacked there."""
