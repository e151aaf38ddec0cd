"""The temporal lifter: VideoPose3D-compatible parameters, checkpoints, streaming equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.errors import ModelError, ModelNotFoundError, ModelSignatureError
from engines.lifter import (LifterArchitecture, StreamingTemporalModel, TemporalModel, load_lifter,
                            normalize_screen_coordinates, save_lifter)


def _randomised(architecture: LifterArchitecture, seed: int = 0) -> TemporalModel:
    """A model in eval mode with non-trivial batch-norm statistics (so folding them is tested)."""
    torch.manual_seed(seed)
    model = TemporalModel(architecture)
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _walk(frames: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.02, (frames, 17, 2)), axis=0).astype(np.float32)


@pytest.mark.parametrize("widths, published", [((3, 3, 3), 8.56e6), ((3, 3, 3, 3), 12.75e6), ((3, 3, 3, 3, 3), 16.95e6)])
def test_parameter_count_matches_videopose3d(widths, published):
    # VideoPose3D (Pavllo et al. 2019, Table 5): 27/81/243-frame models with 1024 channels
    model = TemporalModel(LifterArchitecture(filter_widths=widths, channels=1024, causal=False))
    assert model.receptive_field == 3 ** len(widths)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(published, abs=0.005e6)


def test_state_dict_names_and_shapes_are_videopose3d_ones():
    model = TemporalModel(LifterArchitecture(filter_widths=(3, 3, 3), channels=1024))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["expand_conv.weight"] == (1024, 34, 3)
    assert shapes["layers_conv.0.weight"] == (1024, 1024, 3)
    assert shapes["layers_conv.1.weight"] == (1024, 1024, 1)
    assert shapes["layers_conv.3.weight"] == (1024, 1024, 1)
    assert "layers_conv.4.weight" not in shapes
    assert shapes["shrink.weight"] == (51, 1024, 1) and shapes["shrink.bias"] == (51,)
    for bn in ("expand_bn", "layers_bn.0", "layers_bn.3"):
        assert {f"{bn}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")} <= set(shapes)
    assert model.dilations == [1, 3, 9]


def test_videopose3d_checkpoint_loads_and_mismatches_are_named(tmp_path):
    source = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=32, causal=False))
    path = tmp_path / "pretrained.bin"
    torch.save({"epoch": 80, "lr": 1e-4, "model_pos": source.state_dict()}, path)  # VideoPose3D's layout
    loaded = load_lifter(path)  # no architecture stored: read off the shapes, symmetric
    assert loaded.architecture == LifterArchitecture(filter_widths=(3, 3), channels=32, causal=False)
    x = _walk(12)
    np.testing.assert_array_equal(loaded.lift_sequence(x), source.lift_sequence(x))
    with pytest.raises(ModelSignatureError, match=r"filter_widths: checkpoint \(3, 3\) vs expected \(3, 3, 3\)"):
        load_lifter(path, architecture=LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=False))
    state = source.state_dict()
    state["shrink.weight"] = state["shrink.weight"][:48]
    save_lifter(tmp_path / "ours.pt", source)
    broken = torch.load(tmp_path / "ours.pt", weights_only=True)
    broken["model_pos"] = state
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ModelSignatureError, match="shrink.weight: checkpoint"):
        load_lifter(tmp_path / "broken.pt")


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_lifter(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a loadable torch checkpoint"):
        load_lifter(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no 'model_pos'"):
        load_lifter(tmp_path / "other.pt")

    class Payload:  # anything beyond plain data must be refused, never unpickled
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"model_pos": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="not a loadable torch checkpoint"):
        load_lifter(tmp_path / "evil.pt")


def test_our_checkpoint_round_trip_keeps_causal(tmp_path):
    model = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=16, causal=True))
    save_lifter(tmp_path / "m.pt", model, metrics={"mpjpe": 1.0})
    loaded = load_lifter(tmp_path / "m.pt")
    assert loaded.architecture.causal and loaded.architecture.delay == 0
    x = _walk(30)
    np.testing.assert_array_equal(loaded.lift_sequence(x), model.lift_sequence(x))


def test_causal_outputs_ignore_the_future_and_symmetric_see_exactly_delay_ahead():
    x = _walk(40)
    changed = x.copy()
    changed[25:] += 0.5
    causal = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=True))
    a, b = causal.lift_sequence(x), causal.lift_sequence(changed)
    np.testing.assert_array_equal(a[:25], b[:25])
    assert np.abs(a[25] - b[25]).max() > 1e-4
    symmetric = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=False))
    a, b = symmetric.lift_sequence(x), symmetric.lift_sequence(changed)
    delay = symmetric.architecture.delay
    assert delay == 13
    np.testing.assert_array_equal(a[:25 - delay], b[:25 - delay])
    assert np.abs(a[25 - delay] - b[25 - delay]).max() > 1e-4


@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3, 3), (3, 5, 3)])
@pytest.mark.parametrize("causal", [True, False])
def test_streaming_equals_the_whole_padded_sequence(widths, causal):
    model = _randomised(LifterArchitecture(filter_widths=widths, channels=48, causal=causal))
    frames = 40
    x = _walk(frames)
    reference = model.lift_sequence(x)  # whole-model forward over VideoPose3D's padding
    stream = StreamingTemporalModel(model)
    state = stream.start(x[0])
    outputs = [stream.step([state], x[t:t + 1])[0] for t in range(frames)]
    outputs += [stream.step([state], x[-1:])[0] for _ in range(stream.delay)]  # flush: last frame repeated
    streamed = np.stack(outputs[stream.delay:])
    assert streamed.shape == reference.shape
    assert np.abs(streamed - reference).max() <= 1e-5


def test_streaming_batches_independent_states():
    model = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=32, causal=True))
    stream = StreamingTemporalModel(model)
    a, b = _walk(15, seed=2), _walk(15, seed=3)
    sa, sb = stream.start(a[0]), stream.start(b[0])
    together = np.stack([stream.step([sa, sb], np.stack([a[t], b[t]])) for t in range(15)])
    np.testing.assert_allclose(together[:, 0], model.lift_sequence(a), atol=1e-5)
    np.testing.assert_allclose(together[:, 1], model.lift_sequence(b), atol=1e-5)


def test_screen_normalisation_is_videopose3ds():
    # X / w * 2 - [1, h / w]: the corners of a 1000 x 500 image
    corners = np.array([[0, 0], [1000, 500], [500, 250]], np.float32)
    np.testing.assert_allclose(normalize_screen_coordinates(corners, 1000, 500), [[-1, -0.5], [1, 0.5], [0, 0]])


def test_model_refuses_wrong_input():
    model = TemporalModel(LifterArchitecture(filter_widths=(3, 3), channels=8))
    with pytest.raises(ValueError, match="receptive field 9"):
        model(torch.zeros(1, 5, 17, 2))
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(1, 9, 16, 2))
    with pytest.raises(ValueError, match="odd"):
        LifterArchitecture(filter_widths=(3, 2))


def test_other_joint_sets_stream_too():
    # RunningPose-style: COCO-17 plus 4 foot points in, 19 joints out
    model = _randomised(LifterArchitecture(joints_in=21, joints_out=19, filter_widths=(3, 3, 3), channels=32))
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.normal(0, 0.02, (30, 21, 2)), axis=0).astype(np.float32)
    stream = StreamingTemporalModel(model)
    state = stream.start(x[0])
    streamed = np.stack([stream.step([state], x[t:t + 1])[0] for t in range(30)])
    assert streamed.shape == (30, 19, 3)
    assert np.abs(streamed - model.lift_sequence(x)).max() <= 1e-5
