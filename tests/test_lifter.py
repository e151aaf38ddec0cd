"""The temporal lifter: VideoPose3D-compatible parameters, the safetensors file and its conversion,
and the NumPy streaming model checked against the PyTorch whole-sequence network."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from posestream.engines.errors import ModelError, ModelNotFoundError, ModelSignatureError
from posestream.offline.lifter_model import (TemporalModel, load_torch_lifter, numpy_lifter, read_lifter,
                                             save_lifter)
from posestream.stream.cli import main
from posestream.stream.lift.model import (LIFTER_FORMAT, Lifter, LifterArchitecture, StreamingTemporalModel,
                                          inspect_lifter, lifter_tensor_shapes, load_lifter,
                                          normalize_screen_coordinates)


def _randomised(architecture: LifterArchitecture, seed: int = 0) -> TemporalModel:
    """A torch model in eval mode with non-trivial batch-norm statistics (so folding them is tested)."""
    torch.manual_seed(seed)
    model = TemporalModel(architecture)
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _walk(frames: int, seed: int = 1, joints: int = 17) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.02, (frames, joints, 2)), axis=0).astype(np.float32)


def _checkpoint(model: TemporalModel, **extra) -> dict:
    """posestream's former .pt layout (VideoPose3D's plus 'architecture')."""
    arch = {**model.architecture.__dict__, "filter_widths": list(model.architecture.filter_widths)}
    return {"model_pos": model.state_dict(), "architecture": arch, **extra}


# --- the PyTorch network (offline) ---------------------------------------------------------------

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


@pytest.mark.parametrize("widths", [(3,), (3, 5, 3), (3, 3, 3, 3, 3)])
def test_file_tensor_list_is_the_torch_state_dict(widths):
    # the runtime's description of a lifter file against torch's own module tree
    architecture = LifterArchitecture(joints_in=21, joints_out=19, filter_widths=widths, channels=16)
    torch_shapes = {k: tuple(v.shape) for k, v in TemporalModel(architecture).state_dict().items()
                    if not k.endswith("num_batches_tracked")}
    assert lifter_tensor_shapes(architecture) == torch_shapes


def test_videopose3d_checkpoint_loads_and_mismatches_are_named(tmp_path):
    source = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=32, causal=False))
    path = tmp_path / "pretrained.bin"
    torch.save({"epoch": 80, "lr": 1e-4, "model_pos": source.state_dict()}, path)  # VideoPose3D's layout
    loaded = load_torch_lifter(path)  # no architecture stored: read off the shapes, symmetric
    assert loaded.architecture == LifterArchitecture(filter_widths=(3, 3), channels=32, causal=False)
    x = _walk(12)
    np.testing.assert_array_equal(loaded.lift_sequence(x), source.lift_sequence(x))
    with pytest.raises(ModelSignatureError, match=r"filter_widths: checkpoint \(3, 3\) vs expected \(3, 3, 3\)"):
        load_torch_lifter(path, architecture=LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=False))
    broken = _checkpoint(source)
    broken["model_pos"]["shrink.weight"] = broken["model_pos"]["shrink.weight"][:48]
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ModelSignatureError, match="shrink.weight: checkpoint"):
        load_torch_lifter(tmp_path / "broken.pt")


def test_bad_torch_checkpoint_files(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_torch_lifter(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a loadable torch checkpoint"):
        load_torch_lifter(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no 'model_pos'"):
        load_torch_lifter(tmp_path / "other.pt")
    marker = tmp_path / "unpickled"

    class Payload:  # anything beyond plain data must be refused, never unpickled
        def __reduce__(self):
            return (marker.write_text, ("unpickled!",))

    torch.save({"model_pos": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="not a loadable torch checkpoint"):
        load_torch_lifter(tmp_path / "evil.pt")
    assert not marker.exists()


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


def test_model_refuses_wrong_input():
    model = TemporalModel(LifterArchitecture(filter_widths=(3, 3), channels=8))
    with pytest.raises(ValueError, match="receptive field 9"):
        model(torch.zeros(1, 5, 17, 2))
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(1, 9, 16, 2))
    with pytest.raises(ValueError, match="odd"):
        LifterArchitecture(filter_widths=(3, 2))


# --- the NumPy streaming model against the torch whole-sequence network ---------------------------

@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3, 3), (3, 5, 3)])
@pytest.mark.parametrize("causal", [True, False])
def test_streaming_equals_the_whole_padded_sequence(widths, causal):
    model = _randomised(LifterArchitecture(filter_widths=widths, channels=48, causal=causal))
    frames = model.receptive_field + 13
    x = _walk(frames)
    reference = model.lift_sequence(x)  # torch, whole sequence over VideoPose3D's edge padding
    stream = StreamingTemporalModel(numpy_lifter(model))
    assert (stream.receptive_field, stream.delay) == (model.receptive_field, 0 if causal else (model.receptive_field - 1) // 2)
    state = stream.start(x[0])
    outputs = [stream.step([state], x[t:t + 1])[0] for t in range(frames)]
    outputs += [stream.step([state], x[-1:])[0] for _ in range(stream.delay)]  # flush: last frame repeated
    streamed = np.stack(outputs[stream.delay:])
    assert streamed.shape == reference.shape and streamed.dtype == np.float32
    assert np.abs(streamed - reference).max() <= 1e-5
    assert np.abs(stream.lift_sequence(x) - reference).max() <= 1e-5


@pytest.mark.parametrize("causal", [True, False])
def test_streaming_batches_independent_states_started_at_different_times(causal):
    model = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=causal))
    stream = StreamingTemporalModel(numpy_lifter(model))
    frames, count = 40, 7  # more states than the first pool (4): it grows while others run
    walks = [_walk(frames, seed=10 + i) for i in range(count)]
    begins = [0, 0, 3, 5, 5, 9, 20]
    states, outputs = {}, {i: [] for i in range(count)}
    for t in range(max(begins) + frames + stream.delay):
        for i in range(count):
            if t == begins[i]:
                states[i] = stream.start(walks[i][0])
        live = [i for i in states if t - begins[i] < frames + stream.delay]
        frame = np.stack([walks[i][min(t - begins[i], frames - 1)] for i in live]) if live else np.zeros((0, 17, 2))
        for i, out in zip(live, stream.step([states[i] for i in live], frame)):
            outputs[i].append(out)
    for i in range(count):
        streamed = np.stack(outputs[i][stream.delay:])
        assert np.abs(streamed - model.lift_sequence(walks[i])).max() <= 1e-5, i


def test_a_dropped_state_gives_its_slot_to_a_new_one():
    model = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=16, causal=True))
    stream = StreamingTemporalModel(numpy_lifter(model))
    a, b = _walk(20, seed=2), _walk(20, seed=3)
    states = [stream.start(a[0]) for _ in range(4)]  # the whole first pool
    for t in range(10):
        stream.step(states, np.stack([a[t]] * 4))
    del states[1:]
    gc.collect()
    fresh = stream.start(b[0])  # reuses a freed slot: no trace of the sequence before
    assert len(stream._rings[0]) == 4
    out = np.stack([stream.step([states[0], fresh], np.stack([a[10 + t], b[t]])) for t in range(10)])
    np.testing.assert_allclose(out[:, 1], model.lift_sequence(b[:10]), atol=1e-5)
    np.testing.assert_allclose(out[:, 0], model.lift_sequence(a)[10:], atol=1e-5)


def test_step_refuses_bad_calls():
    lifter = numpy_lifter(_randomised(LifterArchitecture(filter_widths=(3,), channels=8)))
    stream, other = StreamingTemporalModel(lifter), StreamingTemporalModel(lifter)
    x = _walk(2)
    state = stream.start(x[0])
    with pytest.raises(ValueError, match="twice"):
        stream.step([state, state], np.stack([x[1], x[1]]))
    with pytest.raises(ValueError, match="another"):
        other.step([state], x[1:])
    with pytest.raises(ValueError, match=r"expected \(1, 17, 2\)"):
        stream.step([state], x[1:, :16])
    with pytest.raises(ValueError, match="expected"):
        stream.start(x[0, :16])
    assert stream.step([], np.zeros((0, 17, 2))).shape == (0, 17, 3)


def test_other_joint_sets_stream_too():
    # RunningPose-style: COCO-17 plus 4 foot points in, 19 joints out
    model = _randomised(LifterArchitecture(joints_in=21, joints_out=19, filter_widths=(3, 3, 3), channels=32))
    x = _walk(30, seed=4, joints=21)
    stream = StreamingTemporalModel(numpy_lifter(model))
    state = stream.start(x[0])
    streamed = np.stack([stream.step([state], x[t:t + 1])[0] for t in range(30)])
    assert streamed.shape == (30, 19, 3)
    assert np.abs(streamed - model.lift_sequence(x)).max() <= 1e-5


def test_screen_normalisation_is_videopose3ds():
    # X / w * 2 - [1, h / w]: the corners of a 1000 x 500 image
    corners = np.array([[0, 0], [1000, 500], [500, 250]], np.float32)
    np.testing.assert_allclose(normalize_screen_coordinates(corners, 1000, 500), [[-1, -0.5], [1, 0.5], [0, 0]])


# --- the lifter file ---------------------------------------------------------------------------------

def test_saved_file_is_videopose3d_tensors_with_the_documented_metadata(tmp_path):
    model = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=16, causal=True))
    path = save_lifter(tmp_path / "m.safetensors", model, metrics={"mpjpe": 1.5}, command="train it", steps=7)
    with safe_open(str(path), framework="np") as f:  # read with safetensors itself, not our loader
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert metadata["format"] == "posestream-lifter/1" == LIFTER_FORMAT
    assert json.loads(metadata["architecture"]) == {"joints_in": 17, "joints_out": 17, "filter_widths": [3, 3, 3],
                                                    "causal": True, "channels": 16, "dropout": 0.25, "in_features": 2}
    assert (json.loads(metadata["metrics"]), json.loads(metadata["command"]), json.loads(metadata["steps"])) == \
        ({"mpjpe": 1.5}, "train it", 7)
    state = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(tensors) == set(state)
    for k, v in state.items():
        assert tensors[k].dtype == np.float32
        np.testing.assert_array_equal(tensors[k], v, err_msg=k)
    lifter = load_lifter(path)
    assert lifter.architecture == model.architecture and lifter.path == path
    assert lifter.metadata == {"metrics": {"mpjpe": 1.5}, "command": "train it", "steps": 7}
    x = _walk(30)
    assert np.abs(StreamingTemporalModel(lifter).lift_sequence(x) - model.lift_sequence(x)).max() <= 1e-5
    np.testing.assert_array_equal(read_lifter(path).lift_sequence(x), model.lift_sequence(x))  # back to torch
    with pytest.raises(ValueError, match=".safetensors"):
        save_lifter(tmp_path / "m.pt", model)


def _write(path, tensors, **metadata):
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_runtime_loader_errors_name_the_problem(tmp_path):
    model = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=8, causal=True))
    state = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    arch = model.architecture.to_json()
    good = _write(tmp_path / "good.safetensors", state, format=LIFTER_FORMAT, architecture=arch)
    for read in (load_lifter, inspect_lifter):
        with pytest.raises(ModelNotFoundError):
            read(tmp_path / "absent.safetensors")
        (tmp_path / "junk.safetensors").write_bytes(b"not a lifter at all")
        with pytest.raises(ModelError, match="not a safetensors lifter file"):
            read(tmp_path / "junk.safetensors")
        _write(tmp_path / "other.safetensors", state)
        with pytest.raises(ModelError, match="not a posestream lifter"):
            read(tmp_path / "other.safetensors")
        _write(tmp_path / "noarch.safetensors", state, format=LIFTER_FORMAT, architecture='{"joints_in": 17}')
        with pytest.raises(ModelSignatureError, match="bad 'architecture' metadata"):
            read(tmp_path / "noarch.safetensors")
        with pytest.raises(ModelSignatureError, match=r"filter_widths: file \(3, 3\) vs expected \(3, 3, 3\); "
                                                      r"channels: file 8 vs expected 16"):
            read(good, LifterArchitecture(filter_widths=(3, 3, 3), channels=16))
        short = {**state, "shrink.weight": state["shrink.weight"][:48]}
        _write(tmp_path / "short.safetensors", short, format=LIFTER_FORMAT, architecture=arch)
        with pytest.raises(ModelSignatureError, match=r"shrink.weight: file \(48, 8, 1\) vs architecture \(51, 8, 1\)"):
            read(tmp_path / "short.safetensors")
        missing = {k: v for k, v in state.items() if k != "layers_bn.1.running_var"}
        _write(tmp_path / "missing.safetensors", missing, format=LIFTER_FORMAT, architecture=arch)
        with pytest.raises(ModelSignatureError, match="missing layers_bn.1.running_var"):
            read(tmp_path / "missing.safetensors")
    assert inspect_lifter(good) == model.architecture
    with pytest.raises(ModelSignatureError, match="expand_conv.weight: file"):
        Lifter(model.architecture, {**state, "expand_conv.weight": state["expand_conv.weight"][:, :, :1]})


@pytest.mark.parametrize("name", ["old.pt", "pretrained_h36m_cpn.bin", "checkpoint.weights"])
def test_pytorch_checkpoint_given_to_the_runtime_says_how_to_convert_it(tmp_path, name):
    model = _randomised(LifterArchitecture(filter_widths=(3, 3), channels=8))
    path = tmp_path / name
    marker = tmp_path / "unpickled"

    class Payload:  # the runtime loader must not unpickle anything
        def __reduce__(self):
            return (marker.write_text, ("unpickled!",))

    torch.save({**_checkpoint(model), "extra": Payload()}, path)
    with pytest.raises(ModelError) as error:
        load_lifter(path)
    message = str(error.value)
    assert "\n" not in message and "PyTorch checkpoint" in message
    assert f"posestream convert-lifter {path} --out {path.with_suffix('.safetensors')} [--symmetric]" in message
    with pytest.raises(ModelError, match="convert-lifter"):
        inspect_lifter(path)
    assert not marker.exists()


def test_convert_lifter_round_trip(tmp_path, capsys):
    # posestream's former .pt (architecture and provenance inside) → the runtime's file → NumPy stream
    model = _randomised(LifterArchitecture(filter_widths=(3, 5, 3), channels=32, causal=True), seed=5)
    torch.save(_checkpoint(model, metrics={"held-out": {"mpjpe": 80.9}}, command="python tools/train_lifter.py",
                           steps=6000, train_curve=[[1, 2.0]]), tmp_path / "ours.pt")
    assert main(["convert-lifter", str(tmp_path / "ours.pt"), "--out", str(tmp_path / "ours.safetensors")]) == 0
    assert "causal (as the checkpoint declares)" in capsys.readouterr().out
    lifter = load_lifter(tmp_path / "ours.safetensors", model.architecture)
    assert lifter.metadata == {"metrics": {"held-out": {"mpjpe": 80.9}}, "command": "python tools/train_lifter.py",
                               "steps": 6000}
    x = _walk(60, seed=6)
    assert np.abs(StreamingTemporalModel(lifter).lift_sequence(x) - model.lift_sequence(x)).max() <= 1e-5

    # VideoPose3D's .bin does not say whether it is causal: --symmetric says so
    centred = _randomised(LifterArchitecture(filter_widths=(3, 3, 3), channels=32, causal=False), seed=7)
    torch.save({"epoch": 80, "model_pos": centred.state_dict()}, tmp_path / "pretrained.bin")
    assert main(["convert-lifter", str(tmp_path / "pretrained.bin"), "--out", str(tmp_path / "vp3d.safetensors"),
                 "--symmetric"]) == 0
    assert "symmetric (from --symmetric)" in capsys.readouterr().out
    lifter = load_lifter(tmp_path / "vp3d.safetensors")
    assert not lifter.architecture.causal and lifter.metadata == {}
    stream = StreamingTemporalModel(lifter)
    assert stream.delay == 13
    assert np.abs(stream.lift_sequence(x) - centred.lift_sequence(x)).max() <= 1e-5
    assert main(["convert-lifter", str(tmp_path / "pretrained.bin"), "--out", str(tmp_path / "c.safetensors")]) == 0
    assert "does not say" in capsys.readouterr().out and load_lifter(tmp_path / "c.safetensors").architecture.causal

    # errors are one line, exit status 2, and leave no file
    assert main(["convert-lifter", str(tmp_path / "ours.pt"), "--out", str(tmp_path / "x.safetensors"), "--symmetric"]) == 2
    assert "contradicts" in capsys.readouterr().err
    assert main(["convert-lifter", str(tmp_path / "ours.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert main(["convert-lifter", str(tmp_path / "absent.pt"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not list(tmp_path.glob("x.*"))
