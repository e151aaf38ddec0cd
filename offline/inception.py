"""The standard FID network: Inception-v3 of the TensorFlow "2015-12-05" graph, in PyTorch.

Every FID number in the literature since Heusel et al. (2017) comes from the pool3 layer (2048-d,
after the last global average pool) of the TensorFlow Inception graph released on 2015-12-05
(``inception-2015-12-05.tgz``). pytorch-fid (M. Seitzer, Apache-2.0) ported its weights to a
PyTorch state dict, ``pt_inception-2015-12-05-6726825d.pth``; torch-fidelity and clean-fid use the
same weights. Other Inception weights (torchvision's ImageNet model) give numbers that cannot be
compared with papers (FOLLOW_YOUR_POSE.md §6).

:class:`FIDInceptionV3` is this project's own implementation of that network. Its parameter names
and shapes follow the layout of the released file (torchvision's ``Inception3`` naming: each
convolution a ``conv`` without bias followed by a ``bn`` with eps 0.001; no auxiliary head; a
1008-way ``fc``), so the file loads with ``torch.load(weights_only=True)`` and
``load_state_dict(strict=True)``. Where the TF graph differs from the Inception-v3 paper (as
documented by pytorch-fid's port):

* the 3×3 average pools inside the A, C and first E blocks do not count the zero padding
  (TensorFlow's ``avg_pool`` semantics, ``count_include_pad=False``);
* the pool branch of the last block (``Mixed_7c``) is a 3×3 *max* pool, not an average pool;
* the classifier has 1008 outputs (``fc.weight`` (1008, 2048)); it is loaded but unused here.

Input: float32 (N, 3, 299, 299) RGB scaled to [-1, 1] (``x / 127.5 - 1`` of 0–255 values, the
scaling pytorch-fid applies: ``2 · (x / 255) − 1``; the TF graph itself computed ``(x − 128) / 128``,
a difference of under 0.8 % of the range). Output: float32 (N, 2048) pool3 features.

Weights (:func:`find_inception_weights`): ``--inception PATH`` first, then the file
``pt_inception-2015-12-05-6726825d.pth`` in the folders of ``POSESTREAM_MODEL_DIR`` and in the user
cache (:func:`posestream.engines.zoo.cache_dir`), then a download from pytorch-fid's GitHub release
into the cache. Every file is checked against the full sha256 (:data:`SHA256`, 95 628 359 bytes;
pytorch-fid publishes no digest; this one is recorded, for the same release URL, by several
public projects that pin the file (e.g. the ``_MODEL_URL_SHA256`` table of GenForce-style
``InceptionModel`` code); its first 8 hex digits are the ``6726825d`` of the file name, the
torch.hub convention, and the size agrees with this network's 23 885 392 float32 values plus
the zip/pickle framing). :func:`random_inception` gives seeded random weights for tests only: features from
it are not comparable with anything published.

torch is imported by this module: import it only inside offline commands.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from posestream.engines.download import check_sha256, download
from posestream.engines.errors import ModelError, ModelNotFoundError
from posestream.engines.zoo import cache_dir, model_dirs
from torch import nn

log = logging.getLogger(__name__)

#: File name of pytorch-fid's port of the TF 2015-12-05 Inception weights.
FILENAME = "pt_inception-2015-12-05-6726825d.pth"
#: pytorch-fid's release address of that file (``FID_WEIGHTS_URL`` in pytorch-fid's inception.py).
URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FILENAME
#: Full sha256 of the released file (starts with the file name's 6726825d).
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#: Side of the square input, pixels.
INPUT_SIZE = 299
#: Feature dimension of pool3.
FEATURES = 2048
#: ``fid_network`` value for the standard weights and for random ones.
STANDARD_NAME = "pt_inception-2015-12-05 (TF Inception-v3 2015-12-05 via pytorch-fid)"
RANDOM_NAME = "random (not comparable with papers)"


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, the TF graph's), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x):
    """3×3 stride-1 average pool that ignores the zero padding (TensorFlow semantics)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1; out 224 + pool_features."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _ConvBN(cin, 64, 1)
        self.branch5x5_1 = _ConvBN(cin, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ], 1)


class _ReductionB(nn.Module):
    """35→17 reduction: 3×3/2 | 1×1→3×3→3×3/2 | max pool/2; out 384 + 96 + cin."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = _ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class _BlockC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (1×7, 7×1); out 4 × 192 = 768."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = _ConvBN(cin, 192, 1)
        self.branch7x7_1 = _ConvBN(cin, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x):
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_tf_avg_pool(x))], 1)


class _ReductionD(nn.Module):
    """17→8 reduction: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool/2; out 320 + 192 + cin."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(cin, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        tower = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), tower, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs; out 320 + 768 + 768 + 192 = 2048.

    ``max_pool``: the pool branch pools with a 3×3 max (the TF graph's ``Mixed_7c``) instead of
    the padding-free average (``Mixed_7b``).
    """

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(cin, 320, 1)
        self.branch3x3_1 = _ConvBN(cin, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x):
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(three), self.branch3x3_2b(three),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the TF 2015-12-05 graph (see the module docstring).

    ``forward``: float32 (N, 3, 299, 299) in [-1, 1] → float32 (N, 2048) pool3 features.
    The module starts in eval mode (batch norm uses its running statistics).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, 1008)  # the TF graph's 1008-way classifier; unused for FID
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def load_inception(path: str | Path, sha256: str | None = SHA256) -> FIDInceptionV3:
    """Load a state dict file into :class:`FIDInceptionV3` after checking its sha256.

    Args:
        path: the ``.pth`` file (a plain state dict, read with ``weights_only=True``: no code runs).
        sha256: the accepted lowercase hex digest (default: the released file's); None skips the
            check (only for files this process wrote itself).

    Raises:
        FileNotFoundError: no such file.
        posestream.engines.errors.ModelHashError: another sha256 (a different or corrupt file).
        posestream.engines.errors.ModelError: the file is not a state dict of this layout
            (missing, unexpected or mis-shaped keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such Inception weights file: {path}")
    if sha256 is not None:
        check_sha256(path, (sha256,), FILENAME)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        model = FIDInceptionV3()
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not the FID Inception-v3 state dict ({first})") from exc
    return model.eval()


def random_inception(seed: int = 0) -> FIDInceptionV3:
    """The network with seeded random weights (He-normal convolutions, identity batch norm), for
    tests and smoke runs only: its features are *not comparable with papers*."""
    generator = torch.Generator().manual_seed(seed)
    model = FIDInceptionV3()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * FEATURES ** -0.5)
                module.bias.zero_()
    return model.eval()


def find_inception_weights(path: str | Path | None = None, download_missing: bool = True,
                           progress: bool = True) -> Path:
    """Where the standard weights are: ``path``, else :data:`FILENAME` in the folders of
    ``POSESTREAM_MODEL_DIR``, else in the cache, else downloaded from :data:`URL` into the cache
    (sha256-checked before it is renamed into place). The file found is not hashed here
    (:func:`load_inception` does).

    Raises:
        FileNotFoundError: ``path`` given but missing.
        posestream.engines.errors.ModelNotFoundError: nowhere locally, and the download is off or
            failed; the message says where to put the file.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--inception: no such file: {path}")
        return path
    for folder in [*model_dirs(), cache_dir()]:
        if (folder / FILENAME).is_file():
            return folder / FILENAME
    hint = (f"put {FILENAME} (from {URL}) in a folder named by POSESTREAM_MODEL_DIR or in {cache_dir()}, "
            "or pass --inception PATH")
    if not download_missing:
        raise ModelNotFoundError(f"the standard FID Inception weights were not found: {hint}")
    try:
        return download(URL, cache_dir() / FILENAME, sha256=(SHA256,), progress=progress)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"the standard FID Inception weights are not available: {exc} "
                                 f"(or put {FILENAME} in {cache_dir()}, or pass --inception PATH)") from exc


def standard_inception(path: str | Path | None = None, download_missing: bool = True,
                       progress: bool = True) -> FIDInceptionV3:
    """:func:`find_inception_weights` then :func:`load_inception` (full sha256 check).

    Raises:
        see both functions.
    """
    return load_inception(find_inception_weights(path, download_missing, progress), sha256=SHA256)


def prepare_images(images: list[np.ndarray], size: int = INPUT_SIZE) -> np.ndarray:
    """Frames → the network's input, resized the clean-fid way.

    Each (H, W, 3) uint8 **BGR** frame is turned to RGB and each channel resized separately to
    ``size`` × ``size`` with PIL's bicubic filter on float32 values (mode ``F``: no rounding to
    uint8 between the resize and the network; Parmar et al., "On Aliased Resizing and Surprising
    Subtleties in GAN Evaluation", CVPR 2022), clipped to [0, 255] and scaled to [-1, 1]
    (``x / 127.5 − 1``).

    Returns:
        float32 (N, 3, size, size).

    Raises:
        ValueError: a frame that is not (H, W, 3) uint8.
    """
    from PIL import Image

    out = np.empty((len(images), 3, size, size), np.float32)
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) uint8 frames, got {image.shape} {image.dtype}")
        for channel in range(3):
            plane = Image.fromarray(np.ascontiguousarray(image[:, :, 2 - channel], dtype=np.float32))
            out[i, channel] = np.asarray(plane.resize((size, size), resample=Image.BICUBIC), np.float32)
    np.clip(out, 0.0, 255.0, out=out)
    return out / 127.5 - 1.0


def inception_features(images: list[np.ndarray], model: FIDInceptionV3, batch_size: int = 16) -> np.ndarray:
    """pool3 features of frames: (H, W, 3) uint8 BGR each, any size → float64 (N, 2048).

    Resizing: :func:`prepare_images`. Batches of ``batch_size`` frames, on the model's device.
    """
    device = next(model.parameters()).device
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(prepare_images(images[start:start + batch_size])).to(device)
            chunks.append(model(batch).double().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, FEATURES))
