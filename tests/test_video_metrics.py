"""`posestream metrics`: FID/KID math against closed forms and hand-written references, the FID
Inception layout and its sha-checked loading, pose fidelity on a real clip, and the command.

CPU cost is kept small: Inception at 299² runs on at most 16 frames per test here (random
weights; the standard file is not on these machines)."""

import json

import numpy as np
import pytest
import torch
from conftest import shared_file
from posestream.engines.download import sha256_of
from posestream.engines.errors import ModelError, ModelHashError, ModelNotFoundError
from posestream.offline import fid as fidlib
from posestream.offline import inception as inc
from posestream.offline import pose_fidelity as pf
from posestream.offline.align import ResizeCrop
from posestream.offline.video_io import read_frames, write_frames
from posestream.offline.video_metrics import temporal_difference
from posestream.stream.cli import main

# ---------------------------------------------------------------- FID / KID math

def _psd_sqrt(matrix):
    """Symmetric PSD square root by eigendecomposition (independent of scipy's sqrtm)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _closed_form_frechet(mu1, s1, mu2, s2):
    """‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^½ Σ₂ Σ₁^½)^½ (Dowson & Landau 1982)."""
    root = _psd_sqrt(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(root @ s2 @ root)))


def _gaussians():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    return (np.array([0.0, 1.0, -1.0, 0.5]), a @ a.T + 0.5 * np.eye(4),
            np.array([1.0, 0.0, 0.0, 2.0]), b @ b.T + 0.2 * np.eye(4))


def test_frechet_distance_of_exact_statistics_equals_the_closed_form():
    mu1, s1, mu2, s2 = _gaussians()
    assert fidlib.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form_frechet(mu1, s1, mu2, s2), rel=1e-9)
    # diagonal covariances: Σ (√aᵢ − √bᵢ)² + ‖Δμ‖², a second closed form
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    assert fidlib.frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b)) == pytest.approx(3 + 1 + 1, rel=1e-9)


def test_fid_of_samples_from_known_gaussians_approaches_their_frechet_distance():
    mu1, s1, mu2, s2 = _gaussians()
    rng = np.random.default_rng(2)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    expected = _closed_form_frechet(mu1, s1, mu2, s2)
    # sampling error of the moments at N = 200 000 in 4-d: well under 1% of the distance here
    assert fidlib.fid(x, y) == pytest.approx(expected, rel=0.01)


def test_fid_of_a_set_with_itself_is_zero_also_when_the_covariance_is_singular():
    rng = np.random.default_rng(3)
    full = rng.normal(size=(500, 8))
    assert abs(fidlib.fid(full, full)) < 1e-8
    singular = rng.normal(size=(20, 64))  # N < d: rank-deficient Σ, the eps-offset path
    assert abs(fidlib.fid(singular, singular)) < 1e-3 * np.trace(np.cov(singular, rowvar=False))


def test_fid_refuses_bad_input():
    with pytest.raises(ValueError):
        fidlib.fid(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError):
        fidlib.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def _hand_mmd2(x, y):
    """O(n²) loops over the definition (Gretton et al. 2012, eq. 3) with k = (x·y/d + 1)³."""
    d = x.shape[1]

    def k(a, b):
        return (sum(a[i] * b[i] for i in range(d)) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_hand_written_unbiased_mmd():
    rng = np.random.default_rng(4)
    x, y, y6 = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(5, 3)), rng.normal(size=(6, 3))
    assert fidlib.mmd2_unbiased(x, y6) == pytest.approx(_hand_mmd2(x, y6), rel=1e-10)
    mean, std = fidlib.kid(x, y, subsets=10, subset_size=100)  # whole sets: one estimate
    assert mean == pytest.approx(_hand_mmd2(x, y), rel=1e-10) and std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_clearly_positive_for_shifted_ones():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    shifted = rng.normal(0.5, 1.0, size=(400, 16))
    same_mean, same_std = fidlib.kid(x, y, subsets=50, subset_size=200)
    shift_mean, shift_std = fidlib.kid(x, shifted, subsets=50, subset_size=200)
    assert same_std > 0 and abs(same_mean) < 3 * same_std
    assert shift_mean > 10 * max(shift_std, same_std) and shift_mean > 20 * abs(same_mean)


# ---------------------------------------------------------------- the Inception network

# Names and shapes of pt_inception-2015-12-05-6726825d.pth: torchvision's Inception3 naming
# (pytorch-fid builds the FID model from it, with a 1008-way fc and no AuxLogits).
KNOWN_KEYS = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


def test_inception_layout_matches_the_released_file():
    state = inc.FIDInceptionV3().state_dict()
    for key, shape in KNOWN_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in state)
    assert not any(k.endswith("conv.bias") for k in state)  # convolutions carry no bias (batch norm after)
    # the released file is 95 628 359 bytes: float32 tensors plus < 100 kB of zip/pickle framing
    floats = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert 0 < 95_628_359 - 4 * floats < 100_000
    assert inc.SHA256.startswith("6726825d") and "6726825d" in inc.FILENAME


def test_inception_gives_2048_features_per_299_image():
    model = inc.random_inception(0)
    out = model(torch.zeros(2, 3, 299, 299))
    assert out.shape == (2, 2048) and out.dtype == torch.float32
    frames = [np.full((64, 48, 3), v, np.uint8) for v in (0, 128)]
    features = inc.inception_features(frames, model)
    assert features.shape == (2, 2048) and features.dtype == np.float64
    assert np.all(np.isfinite(features)) and not np.allclose(features[0], features[1])


def test_prepare_images_is_rgb_bicubic_in_minus_one_one():
    image = np.zeros((10, 10, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    out = inc.prepare_images([image])
    assert out.shape == (1, 3, 299, 299)
    assert np.allclose(out[0, 2], 1.0) and np.allclose(out[0, :2], -1.0)  # RGB order: blue is the last plane


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A state dict of the released layout with random values, saved as a .pth file."""
    path = tmp_path_factory.mktemp("weights") / inc.FILENAME
    torch.save(inc.random_inception(7).state_dict(), path)
    return path, sha256_of(path)


def test_weights_round_trip_through_the_sha_checked_loader(random_weights):
    path, digest = random_weights
    model = inc.load_inception(path, sha256=digest)
    reference = inc.random_inception(7).state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_a_wrong_hash_and_a_wrong_layout_are_refused(random_weights, tmp_path):
    path, _ = random_weights
    with pytest.raises(ModelHashError):
        inc.load_inception(path)  # the released file's sha256 is expected by default
    other = tmp_path / "other.pth"
    state = inc.random_inception(0).state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's ImageNet head, not the FID graph's
    torch.save(state, other)
    with pytest.raises(ModelError, match="not the FID Inception"):
        inc.load_inception(other, sha256=sha256_of(other))


def test_lookup_order_model_dir_then_cache_then_download(random_weights, tmp_path, monkeypatch):
    path, digest = random_weights
    explicit = inc.find_inception_weights(path)
    assert explicit == path
    with pytest.raises(FileNotFoundError):
        inc.find_inception_weights(tmp_path / "missing.pth")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / inc.FILENAME).write_bytes(path.read_bytes())
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(folder))
    assert inc.find_inception_weights() == folder / inc.FILENAME
    with pytest.raises(ModelHashError):
        inc.standard_inception()  # found, but it is not the released file
    monkeypatch.setattr(inc, "SHA256", digest)
    assert isinstance(inc.standard_inception(), inc.FIDInceptionV3)
    # not in any folder: downloaded into the cache (a file:// URL stands in for GitHub), verified
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(inc, "URL", path.as_uri())
    fetched = inc.find_inception_weights(progress=False)
    assert fetched.parent == inc.cache_dir() and sha256_of(fetched) == digest


def test_offline_lookup_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(inc, "URL", "http://127.0.0.1:9/" + inc.FILENAME)  # nothing listens on port 9
    with pytest.raises(ModelNotFoundError) as error:
        inc.find_inception_weights(progress=False)
    message = str(error.value)
    assert inc.FILENAME in message and "POSESTREAM_MODEL_DIR" in message and "--inception" in message
    with pytest.raises(ModelNotFoundError):
        inc.find_inception_weights(download_missing=False)


# ---------------------------------------------------------------- pose fidelity

def test_scores_of_known_detections():
    ref = np.zeros((2, 17, 2), np.float32)
    ref[:, :, 0] = np.arange(17) * 10.0
    ref[:, :, 1] = 100.0
    ref[:, [5, 6], 1], ref[:, [11, 12], 1] = 0.0, 100.0  # torso 100 px
    visible = np.ones((2, 17), bool)
    reference = pf.Reference(ref, visible, np.full(2, 200.0 * 200.0))
    moved = ref[0].copy()
    moved[:4, 0] += 15.0  # 4 joints 15 px off (> 0.1 × 100), the rest exact
    result = pf.score_detections(reference, [(moved[None], np.ones((1, 17))), (np.zeros((0, 17, 2)), np.zeros((0, 17)))])
    assert result.found.tolist() == [True, False]
    assert result.pck[0] == pytest.approx(13 / 17) and result.pck[1] == 0.0 and result.oks[1] == 0.0
    summary = result.summary()
    assert summary["person_found"] == 0.5 and summary["joint_error_px"][0] == pytest.approx(15.0)
    assert summary["joint_error_px"][16] == pytest.approx(0.0)


def test_jitter_is_the_second_difference():
    t = np.arange(10, dtype=np.float64)
    steady = np.zeros((10, 17, 2))
    steady[..., 0] = 3.0 * t[:, None]  # constant velocity: no jitter
    assert pf.keypoint_jitter(steady) == pytest.approx(0.0)
    shaking = steady.copy()
    shaking[::2, :, 1] += 1.0  # +1, 0, +1, … : second difference of magnitude 2
    assert pf.keypoint_jitter(shaking) == pytest.approx(2.0)


def test_temporal_difference():
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 10, 30)]
    assert temporal_difference(frames) == pytest.approx(15.0)
    assert temporal_difference(frames, 2) == pytest.approx(30.0)
    assert temporal_difference(frames[:1]) is None


@pytest.fixture(scope="module")
def wave(tmp_path_factory, real_pipeline):
    """posestream's skeleton of the first 30 frames of har-wave/wave.mp4 (420×420) and those
    frames resized-and-cropped to 256×256, as a generator driven at stride 1 would give them."""
    from posestream.stream.run import run_source

    video = shared_file("media/har-wave/wave.mp4")
    out = tmp_path_factory.mktemp("wave-skeleton")
    run_source(video, out, real_pipeline, write_video=False, max_frames=30, progress=False)
    frames, _, _ = read_frames(video, max_frames=30)
    crop = ResizeCrop(420, 420, 256)
    return video, out / "wave.jsonl", [crop.image(f) for f in frames]


def _fidelity(wave, pipeline, order):
    _, skeleton_path, frames = wave
    skeleton = pf.load_skeleton(skeleton_path)
    mapping = pf.skeleton_mapping(skeleton_path, skeleton, 256, 256)
    reference = pf.driving_reference(skeleton, mapping, len(frames), 1, 256, 256)
    return pf.pose_fidelity([frames[i] for i in order], reference, pipeline).summary()


def test_a_clip_follows_its_own_skeleton_and_a_reordered_copy_does_not(wave, real_pipeline):
    same = _fidelity(wave, real_pipeline, range(30))
    assert same["pck"] >= 0.9 and same["person_found"] == 1.0 and same["oks"] >= 0.9
    reversed_ = _fidelity(wave, real_pipeline, range(29, -1, -1))
    shuffled = _fidelity(wave, real_pipeline, np.random.default_rng(0).permutation(30))
    assert reversed_["pck"] < same["pck"] - 0.3 and shuffled["pck"] < same["pck"] - 0.2
    assert reversed_["person_found"] == 1.0  # the person is there; the pose is wrong


def test_a_short_skeleton_is_a_clear_error(wave):
    _, skeleton_path, _ = wave
    skeleton = pf.load_skeleton(skeleton_path)
    with pytest.raises(ValueError, match="need skeleton frames up to"):
        pf.driving_reference(skeleton, ResizeCrop(420, 420, 256), 7, 5, 256, 256)  # frame 31 of 30


def test_skeleton_transform_sidecar_and_bad_skeleton_files(wave, tmp_path):
    _, skeleton_path, _ = wave
    skeleton = pf.load_skeleton(skeleton_path)
    assert (skeleton.width, skeleton.height, len(skeleton)) == (420, 420, 30)
    copy = tmp_path / "wave.jsonl"
    copy.write_text(skeleton_path.read_text())
    assert pf.skeleton_mapping(copy, skeleton, 256, 256) == ResizeCrop(420, 420, 256)  # no sidecar: from the sizes
    ResizeCrop(420, 420, 300).save(tmp_path / "wave_skeleton.json")
    with pytest.raises(ValueError, match="maps 420x420"):
        pf.skeleton_mapping(copy, skeleton, 256, 256)  # a sidecar for another generated size
    assert pf.skeleton_mapping(copy, skeleton, 300, 300) == ResizeCrop(420, 420, 300)
    (tmp_path / "bad.jsonl").write_text('{"frame_id": 1}\n')
    with pytest.raises(ValueError, match="not a posestream JSON-lines"):
        pf.load_skeleton(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError):
        pf.load_skeleton(tmp_path / "none.jsonl")


def test_cover_crop_agrees_with_resize_crop_and_handles_non_square_targets():
    rng = np.random.default_rng(8)
    image = rng.integers(0, 255, (90, 160, 3), np.uint8)
    points = rng.uniform(0, 90, size=(5, 2))
    square, cover = ResizeCrop(160, 90, 64), pf.CoverCrop(160, 90, 64, 64)
    assert np.allclose(square.forward(points), cover.forward(points)) and np.array_equal(square.image(image), cover.image(image))
    wide = pf.CoverCrop(160, 90, 80, 30)  # width ratio 0.5 > height ratio 1/3: scale 0.5, crop rows
    assert wide.image(image).shape == (30, 80, 3)
    assert np.allclose(wide.forward([[80.0, 45.0]]), [[40.0, 15.0]])  # the centre stays the centre


# ---------------------------------------------------------------- the command

def _metrics(capsys, *argv):
    code = main(["metrics", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_end_to_end_with_pose_fidelity(wave, tmp_path, capsys):
    """REAL: 8 frames at 420×420; GENERATED: 6 frames at 256×256 driven at stride 5; the input
    video for the upper bound."""
    video, skeleton_path, crops = wave
    frames, _, _ = read_frames(video, max_frames=30)
    real = write_frames(tmp_path / "real", frames[:8])
    generated = write_frames(tmp_path / "generated", crops[::5])
    code, out, err = _metrics(capsys, real, generated, "--out", tmp_path / "out", "--skeleton", skeleton_path,
                              "--input", video, "--allow-random-inception", "--subsets", "5")
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("fid", "kid_mean", "kid_std", "n_real", "n_generated", "fid_network", "pck", "oks", "person_found",
                "joint_error_px", "temporal_diff_generated", "temporal_diff_real", "jitter_px_generated",
                "jitter_px_input", "input_pck"):
        assert key in metrics, key
    assert (metrics["n_real"], metrics["n_generated"]) == (8, 6) and metrics["fid_biased"] is True
    assert metrics["fid_network"] == inc.RANDOM_NAME and metrics["fid"] > 0
    # REAL and GENERATED differ in size: the real frames were resized and cropped first
    assert metrics["generated_size"] == [256, 256] and metrics["real_size"] == [420, 420]
    assert metrics["kid_subset_size"] == 6 and metrics["kid_subsets"] == 5 and metrics["kid_std"] >= 0
    assert metrics["pck"] >= 0.9 and metrics["person_found"] == 1.0 and metrics["input_pck"] >= 0.9
    assert len(metrics["joint_error_px"]) == 17
    assert "biased" in out and "KID" in out and "random" in out


def test_without_a_skeleton_the_pose_keys_are_null():
    from posestream.offline.video_metrics import _pose_metrics

    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    metrics = _pose_metrics(frames, None, None, 5, pipeline=None)
    assert metrics["pck"] is None and metrics["input_pck"] is None and metrics["jitter_px_generated"] is None
    assert metrics["pose_frames"] == 0


def test_bad_inputs_exit_2_with_one_line_and_no_metrics(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(7)
    good = write_frames(tmp_path / "good", [rng.integers(0, 255, (32, 32, 3), np.uint8) for _ in range(3)])
    corrupt = write_frames(tmp_path / "corrupt", [rng.integers(0, 255, (32, 32, 3), np.uint8) for _ in range(3)])
    (corrupt / "000001.png").write_bytes(b"not a png")
    cases = [(corrupt, good, "cannot be decoded"), (tmp_path / "missing", good, "no such"),
             (good, tmp_path / "nothing.mp4", "no such")]
    for real, generated, words in cases:
        out = tmp_path / "out"
        code, _, err = _metrics(capsys, real, generated, "--out", out, "--allow-random-inception")
        assert code == 2 and err.startswith("posestream: error:") and words in err and len(err.strip().splitlines()) == 1
        assert not (out / "metrics.json").exists()
    # no standard weights and no way to download them: a clear refusal, never random weights
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(inc, "URL", "http://127.0.0.1:9/" + inc.FILENAME)
    code, _, err = _metrics(capsys, good, good, "--out", tmp_path / "out")
    assert code == 2 and inc.FILENAME in err and "POSESTREAM_MODEL_DIR" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_fid_with_fewer_samples_than_dimensions_is_exact():
    """N < d: the nuclear-norm trace equals Tr (Σ₁^½ Σ₂ Σ₁^½)^½ computed by symmetric
    eigendecompositions (a route that never forms the non-symmetric product)."""
    from posestream.offline.fid import feature_statistics, fid

    rng = np.random.default_rng(3)
    x1 = rng.normal(0.0, 1.0, (12, 40))
    x2 = rng.normal(0.3, 1.5, (9, 40)) @ rng.normal(0, 0.3, (40, 40))
    mu1, s1 = feature_statistics(x1)
    mu2, s2 = feature_statistics(x2)

    def psd_sqrt(m):
        w, v = np.linalg.eigh((m + m.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root1 = psd_sqrt(s1)
    cross = np.trace(psd_sqrt(root1 @ s2 @ root1))
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross
    assert fid(x1, x2) == pytest.approx(reference, rel=1e-6)  # the reference clips eigenvalues ~1e-15 of singular Σ
    assert fid(x1, x1) == pytest.approx(0.0, abs=1e-9)
