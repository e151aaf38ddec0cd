"""Follow-Your-Pose on diffusers, on the tiny random model in the released layout (no downloads).

References are independent of the code under test: attention and group norm written out by hand
on tiny tensors, the public code's ``Adapter`` forward written out on the released key names,
SD's own 2D UNet for the zero-init property, files re-read with plain ``torch.load``.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from posestream.engines.errors import ModelError, ModelNotFoundError  # noqa: E402
from posestream.offline.fyp import checkpoint as ckpt  # noqa: E402
from posestream.offline.fyp.tiny import TINY_SIZE, make_tiny_fyp, tiny_components  # noqa: E402
from posestream.offline.fyp.video_unet import (  # noqa: E402
    FrameContext,
    FrameGroupNorm,
    SparseCausalAttnProcessor,
    VideoUNet,
    inflate,
)

from conftest import shared_file  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_fyp(tmp_path_factory.mktemp("fyp") / "tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_model(tiny_dir):
    return ckpt.load_model(tiny_dir)


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from posestream.stream.cli import main

    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- layers against hand-written references ---------------------------------------------------

def test_sparse_causal_attention_matches_reference_and_is_causal():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    frames, tokens, dim, heads = 4, 3, 8, 2
    attn = Attention(query_dim=dim, heads=heads, dim_head=dim // heads)
    context = FrameContext()
    context.num_frames = frames
    attn.set_processor(SparseCausalAttnProcessor(context))
    x = torch.randn(frames, tokens, dim)
    with torch.no_grad():
        out = attn(x)
        q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
        expected = []
        for i in range(frames):
            keys = torch.cat([k[0], k[max(i - 1, 0)]])  # (2·tokens, dim)
            values = torch.cat([v[0], v[max(i - 1, 0)]])
            heads_out = []
            for h in range(heads):
                sl = slice(h * dim // heads, (h + 1) * dim // heads)
                weights = torch.softmax(q[i][:, sl] @ keys[:, sl].T / (dim // heads) ** 0.5, dim=-1)
                heads_out.append(weights @ values[:, sl])
            expected.append(attn.to_out[0](torch.cat(heads_out, dim=-1)))
        assert torch.allclose(out, torch.stack(expected), atol=1e-5)
        changed = x.clone()
        changed[3] += 1.0
        out2 = attn(changed)
    assert torch.equal(out2[:3], out[:3])  # frame 1 (and 0, 2) never look at frame 3
    assert not torch.allclose(out2[3], out[3])
    changed = x.clone()
    changed[0] += 1.0
    with torch.no_grad():
        assert not torch.allclose(attn(changed)[2], out[2])  # every frame looks at frame 0


def test_frame_group_norm_spans_frames():
    torch.manual_seed(1)
    context = FrameContext()
    context.num_frames = 3
    norm = torch.nn.GroupNorm(2, 4, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    frame_norm = FrameGroupNorm(norm, context)
    x = torch.randn(2 * 3, 4, 5, 5)  # two clips of three frames
    clips = x.reshape(2, 3, 2, 2, 5, 5)  # (B, F, groups, C/group, H, W)
    mean = clips.mean(dim=(1, 3, 4, 5), keepdim=True)
    var = clips.var(dim=(1, 3, 4, 5), unbiased=False, keepdim=True)
    expected = ((clips - mean) / torch.sqrt(var + 1e-6)).reshape(6, 4, 5, 5)
    expected = expected * norm.weight[:, None, None] + norm.bias[:, None, None]
    with torch.no_grad():
        assert torch.allclose(frame_norm(x), expected, atol=1e-5)


def test_fresh_inflation_reproduces_the_2d_unet_frame_by_frame():
    parts = tiny_components(seed=3)
    unet2d = parts["unet"].eval()
    inflated = copy.deepcopy(unet2d)
    inflate(inflated)
    model = VideoUNet(inflated, None).eval()
    torch.manual_seed(4)
    frame = torch.randn(1, 4, 8, 8)
    text = torch.randn(1, 77, 32)
    with torch.no_grad():
        reference = unet2d(frame, 500, text).sample
        for frames in (1, 3):
            clip = frame[:, :, None].repeat(1, 1, frames, 1, 1)
            out = model(clip, 500, text)
            for f in range(frames):
                assert torch.allclose(out[:, :, f], reference, atol=1e-5), frames
        moving = torch.randn(1, 4, 3, 8, 8)
        per_frame = torch.stack([unet2d(moving[:, :, f], 500, text).sample for f in range(3)], dim=2)
        assert not torch.allclose(model(moving, 500, text), per_frame, atol=1e-3)  # frames do interact


# -- the released layout ------------------------------------------------------------------------

def _public_adapter_forward(state: dict, x: torch.Tensor, levels: int, per_level: int) -> list[torch.Tensor]:
    """The public code's ``Adapter.forward`` written out on its own key names (sk=True, ksize=1)."""
    import torch.nn.functional as F

    x = F.pixel_unshuffle(x, 8)
    x = F.conv2d(x, state["conv_in.weight"], state["conv_in.bias"], padding=1)
    features = []
    for i in range(levels):
        for j in range(per_level):
            k = i * per_level + j
            if i and not j:
                x = F.avg_pool2d(x, 2, 2)
            if f"body.{k}.in_conv.weight" in state:
                x = F.conv2d(x, state[f"body.{k}.in_conv.weight"], state[f"body.{k}.in_conv.bias"])
            h = F.relu(F.conv2d(x, state[f"body.{k}.block1.weight"], state[f"body.{k}.block1.bias"], padding=1))
            x = F.conv2d(h, state[f"body.{k}.block2.weight"], state[f"body.{k}.block2.bias"]) + x
        features.append(x)
    return features


def test_loader_maps_the_released_keys(tiny_dir, tiny_model):
    released = torch.load(tiny_dir / ckpt.CHECKPOINT_FOLDER / "pytorch_model.bin", weights_only=True)
    unet_state = tiny_model.video_unet.unet.state_dict()
    temporal = [k for k in released if "attn_temp" in k or "conv_temporal" in k]
    assert temporal and all(torch.equal(unet_state[k], released[k]) for k in temporal)
    assert any(released[k].abs().sum() > 0 for k in temporal if "conv_temporal.up" in k)  # not a fresh inflation
    adapter_state = torch.load(tiny_dir / ckpt.ADAPTER_FILE, weights_only=True)
    skeleton = torch.rand(2, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        ours = tiny_model.video_unet.adapter(skeleton)
        reference = _public_adapter_forward(adapter_state, skeleton, levels=2, per_level=2)
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        assert torch.allclose(a, b, atol=1e-5)


def test_round_trip_released_to_ours(tiny_dir, tiny_model, tmp_path):
    saved = ckpt.save_model(tiny_model, tmp_path / "ours")
    assert (saved / ckpt.OURS_FILE).is_file()
    assert not list(saved.rglob("*.bin")) and not list(saved.rglob("*.pth"))  # safetensors only
    again = ckpt.load_model(saved)
    torch.manual_seed(5)
    latents = torch.randn(1, 4, 3, 8, 8)
    text = torch.randn(1, 77, 32)
    skeleton = torch.rand(1, 3, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        a = tiny_model.video_unet(latents, 300, text, tiny_model.video_unet.pose_features(skeleton))
        b = again.video_unet(latents, 300, text, again.video_unet.pose_features(skeleton))
    assert torch.allclose(a, b, atol=1e-6)
    tokens = [tiny_model.tokenizer("a man waving").input_ids, again.tokenizer("a man waving").input_ids]
    assert tokens[0] == tokens[1]


def _copy_tiny(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


def test_loader_fails_loudly_on_missing_and_unexpected_keys(tiny_dir, tmp_path):
    model_dir = _copy_tiny(tiny_dir, tmp_path)
    bin_path = model_dir / ckpt.CHECKPOINT_FOLDER / "pytorch_model.bin"
    state = torch.load(bin_path, weights_only=True)
    missing = "down_blocks.0.attentions.0.transformer_blocks.0.attn_temp.to_q.weight"
    torch.save({k: v for k, v in state.items() if k != missing}, bin_path)
    with pytest.raises(ModelError, match="1 missing.*attn_temp.to_q.weight"):
        ckpt.load_model(model_dir)
    torch.save({**state, "down_blocks.0.extra.weight": torch.zeros(1)}, bin_path)
    with pytest.raises(ModelError, match="1 unexpected.*down_blocks.0.extra.weight"):
        ckpt.load_model(model_dir)
    adapter = torch.load(model_dir / ckpt.ADAPTER_FILE, weights_only=True)
    torch.save({**adapter, "body.0.skep.weight": torch.zeros(1)}, model_dir / ckpt.ADAPTER_FILE)
    with pytest.raises(ModelError, match="body.0.skep.weight"):
        ckpt.load_model(model_dir)


def test_incomplete_folder_names_what_is_missing(tiny_dir, tmp_path):
    model_dir = _copy_tiny(tiny_dir, tmp_path)
    (model_dir / ckpt.ADAPTER_FILE).unlink()
    shutil.rmtree(model_dir / ckpt.SD_FOLDER / "vae")
    with pytest.raises(ModelNotFoundError, match=r"pose_encoder\.pth.*stable-diffusion-v1-4/vae"):
        ckpt.load_model(model_dir)


def test_pickled_objects_are_refused(tiny_dir, tmp_path):
    import pickle

    model_dir = _copy_tiny(tiny_dir, tmp_path)
    with open(model_dir / ckpt.ADAPTER_FILE, "wb") as f:
        pickle.dump({"conv_in.weight": np.zeros(3)}, f)  # a numpy array: not loadable weights-only
    with pytest.raises(ModelError, match="weights-only"):
        ckpt.load_model(model_dir)


# -- generation --------------------------------------------------------------------------------

def _skeleton_video(path: Path, frames: int, size: int = TINY_SIZE) -> Path:
    """A skeleton-looking clip: one stick figure in the adapter's colours, arm moving."""
    from posestream.offline.skeleton import draw_skeletons
    from posestream.offline.video_io import VideoWriter

    base = np.array([[32, 10], [30, 8], [34, 8], [28, 9], [36, 9], [26, 18], [38, 18], [22, 28], [42, 28],
                     [20, 36], [44, 36], [28, 38], [36, 38], [27, 50], [37, 50], [27, 60], [37, 60]], np.float32)
    with VideoWriter(path, 25) as writer:
        for i in range(frames):
            points = base.copy()
            points[10] = [44 + 6 * np.sin(i / 3), 20 + 6 * np.cos(i / 3)]
            canvas = np.zeros((size, size, 3), np.uint8)
            writer.write(draw_skeletons(canvas, points[None] * size / 64, np.ones((1, 17)), thickness=2))
    return path


def test_generation_is_reproducible_for_a_seed(tiny_model):
    from posestream.offline.fyp.sampling import generate

    skeleton = torch.rand(1, 3, 4, TINY_SIZE, TINY_SIZE)
    a = generate(tiny_model, skeleton, "a robot", steps=3, seed=7, progress=False).frames
    b = generate(tiny_model, skeleton, "a robot", steps=3, seed=7, progress=False).frames
    c = generate(tiny_model, skeleton, "a robot", steps=3, seed=8, progress=False).frames
    assert a.shape == (4, TINY_SIZE, TINY_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(tiny_model, skeleton, "  ", steps=3, progress=False)


def test_generate_command_end_to_end(tiny_dir, tmp_path, capsys):
    from posestream.offline.video_io import read_frames

    skeleton = _skeleton_video(tmp_path / "skel.mp4", frames=20)
    out = tmp_path / "gen"
    code, stdout, err = _cli(["fyp", "generate", "--model", str(tiny_dir), "--skeleton", str(skeleton),
                              "--prompt", "an astronaut on the beach", "--out", str(out), "--frames", "4",
                              "--stride", "5", "--steps", "3", "--size", "64", "--quiet"], capsys)
    assert code == 0, err
    gif, _, _ = read_frames(out / "generated.gif")
    mp4, fps, _ = read_frames(out / "generated.mp4")
    assert len(gif) == len(mp4) == 4 and gif[0].shape == (64, 64, 3) and fps == pytest.approx(8)
    assert len(list((out / "skeleton_frames").glob("*.png"))) == 4
    compare_frames, _, _ = read_frames(out / "compare.gif")
    assert len(compare_frames) == 4 and compare_frames[0].shape[1] == 128  # skeleton | generated
    info = json.loads((out / "generation.json").read_text())
    assert info["skeleton_frames_used"] == [0, 5, 10, 15]
    assert info["seed"] == 33 and info["steps"] == 3 and info["guidance_scale"] == 12.5
    assert set(info["model_sha256"]) == {"unet_2d", "pose_encoder", "video_unet"}
    assert "wrote" in stdout and "warning" not in err


@pytest.mark.parametrize("case", ["short", "empty_prompt", "missing", "not_video", "not_skeleton", "incomplete"])
def test_generate_refuses_bad_input(case, tiny_dir, tmp_path, capsys):
    skeleton = _skeleton_video(tmp_path / "skel.mp4", frames=12)
    model, prompt, frames = str(tiny_dir), "a robot", "2"
    if case == "short":
        frames = "4"  # 4 frames at stride 5 need 16 skeleton frames
    elif case == "empty_prompt":
        prompt = ""
    elif case == "missing":
        skeleton = tmp_path / "nope.mp4"
    elif case == "not_video":
        skeleton = tmp_path / "notes.mp4"
        skeleton.write_text("not a video")
    elif case == "not_skeleton":
        from posestream.offline.video_io import VideoWriter

        skeleton = tmp_path / "bright.mp4"
        with VideoWriter(skeleton, 25) as writer:
            for _ in range(12):
                writer.write(np.full((64, 64, 3), 180, np.uint8))
    elif case == "incomplete":
        model = str(tmp_path / "model")
        shutil.copytree(tiny_dir, model)
        shutil.rmtree(Path(model) / ckpt.CHECKPOINT_FOLDER)
    out = tmp_path / "gen"
    code, _, err = _cli(["fyp", "generate", "--model", model, "--skeleton", str(skeleton), "--prompt", prompt,
                         "--out", str(out), "--frames", frames, "--steps", "2", "--size", "64", "--quiet"], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("posestream: error:")]
    assert len(lines) == 1, err
    expected = {"short": "at most 3 frames", "empty_prompt": "prompt is empty", "missing": "no such file",
                "not_video": "notes.mp4", "not_skeleton": "not a skeleton video",
                "incomplete": "followyourpose_checkpoint-1000"}[case]
    assert expected in lines[0]
    assert not out.exists()


def test_out_of_memory_names_the_options(tiny_dir, tmp_path, capsys, monkeypatch):
    from posestream.offline.fyp import sampling

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(sampling, "generate", oom)
    skeleton = _skeleton_video(tmp_path / "skel.mp4", frames=12)
    code, _, err = _cli(["fyp", "generate", "--model", str(tiny_dir), "--skeleton", str(skeleton), "--prompt", "x",
                         "--out", str(tmp_path / "gen"), "--frames", "2", "--size", "64", "--quiet"], capsys)
    assert code == 2 and "out of GPU memory" in err and "--attention-slicing" in err and "--vae-batch" in err


# -- training ----------------------------------------------------------------------------------

def _moving_clip(frames: int = 16):
    """A synthetic clip (a bright square sliding right) and a skeleton-like track of it."""
    from posestream.offline.fyp.sampling import skeleton_tensor, video_tensor

    video, skeleton = [], []
    for i in range(frames):
        image = np.full((TINY_SIZE, TINY_SIZE, 3), 40, np.uint8)
        image[20:40, 4 + 2 * i:24 + 2 * i] = (30, 200, 240)
        video.append(image)
        pose = np.zeros_like(image)
        pose[28:32, 4 + 2 * i:24 + 2 * i] = (0, 255, 0)
        skeleton.append(pose)
    return video_tensor(video, TINY_SIZE), skeleton_tensor(skeleton, TINY_SIZE)


def _trainer(model_dir: Path, out: Path, steps: int, lr: float = 3e-5, checkpoint_every: int = 3):
    from posestream.offline.fyp.train import Trainer, TrainSettings

    clip, skeleton = _moving_clip()
    settings = TrainSettings(prompt="a square sliding", steps=steps, frames=4, stride=2, size=TINY_SIZE, lr=lr,
                             seed=5, checkpoint_every=checkpoint_every, validate_every=0)
    return Trainer(ckpt.load_model(model_dir), clip, skeleton, settings, out, model_dir)


def test_training_lowers_the_loss(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path / "run", steps=30, lr=1e-3, checkpoint_every=0)
    held_out = range(100_001, 100_017)  # fixed draws never used for training

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(np.mean([trainer.loss_at(k).item() for k in held_out]))

    before = held_out_loss()
    trainer.run(progress=False)
    after = held_out_loss()
    assert after < 0.9 * before, (before, after)


def test_resumed_run_matches_the_straight_run(tiny_dir, tmp_path):
    straight = _trainer(tiny_dir, tmp_path / "straight", steps=6)
    straight.run(progress=False)
    first = _trainer(tiny_dir, tmp_path / "resumed", steps=3)
    first.run(progress=False)
    second = _trainer(tiny_dir, tmp_path / "resumed", steps=6)
    assert second.resume() == 3
    second.run(progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    resumed = [json.loads(line)["loss"] for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == len(resumed) == 6
    assert np.allclose(losses, resumed, rtol=0, atol=1e-6)
    for name, p in straight.params.items():
        assert torch.allclose(p, second.params[name], atol=1e-7), name
    # the run folder loads as a model: the base with the trained parameters
    model = ckpt.load_model(tmp_path / "resumed")
    assert model.layout == "run"
    unet_params = dict(model.video_unet.unet.named_parameters())
    assert all(torch.equal(unet_params[k], p.detach()) for k, p in second.params.items())


def test_train_command_on_a_real_clip_then_generate(tiny_dir, tmp_path, capsys):
    clip = shared_file("media/har-wave/wave.mp4")
    run = tmp_path / "run"
    code, stdout, err = _cli(["fyp", "train", "--model", str(tiny_dir), "--video", str(clip), "--prompt", "a man waving",
                              "--out", str(run), "--size", "64", "--steps", "2", "--frames", "3", "--stride", "2",
                              "--checkpoint-every", "2", "--validate-every", "2", "--validation-steps", "2",
                              "--validation-frames", "2", "--max-frames", "12", "--quiet"], capsys)
    assert code == 0, err
    for name in ("fyp_run.json", "train_log.jsonl", "loss.png", "checkpoint-000002/trained.safetensors",
                 "samples/step-000002.gif"):
        assert (run / name).is_file(), name
    code, _, err = _cli(["fyp", "train", "--model", str(tiny_dir), "--video", str(clip), "--prompt", "x",
                         "--out", str(run), "--size", "64", "--quiet"], capsys)
    assert code == 2 and "--resume" in err  # an existing run is not overwritten
    skeleton = _skeleton_video(tmp_path / "skel.mp4", frames=6)
    code, _, err = _cli(["fyp", "generate", "--model", str(run), "--skeleton", str(skeleton), "--prompt", "a man",
                         "--out", str(tmp_path / "gen"), "--frames", "2", "--steps", "2", "--size", "64", "--quiet"],
                        capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "gen" / "generation.json").read_text())["model_layout"] == "run"


def test_fetch_downloads_only_the_weights_it_needs(tiny_dir, tmp_path, capsys, monkeypatch):
    from hub_server import serve

    server, requested = serve(tiny_dir, "YueMafighting/FollowYourPose_v1")
    try:
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)
        code, stdout, err = _cli(["fyp", "fetch", "--out", str(tmp_path / "weights"), "--endpoint",
                                  f"http://127.0.0.1:{server.server_address[1]}"], capsys)
    finally:
        server.shutdown()
    assert code == 0, err
    assert "licence" in stdout and "CreativeML OpenRAIL-M" in stdout
    assert "followyourpose_checkpoint-1000/pytorch_model.bin" in requested
    assert not [name for name in requested if name.endswith(("optimizer.bin", "random_states_0.pkl", "scheduler.bin"))]
    assert ckpt.detect_layout(tmp_path / "weights") == "released"
    assert ckpt.load_model(tmp_path / "weights").layout == "released"


def test_fetch_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    code, _, err = _cli(["fyp", "fetch", "--out", str(tmp_path / "weights")], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "could not download" in err


def test_an_interrupted_checkpoint_write_is_not_resumed_from(tiny_dir, tmp_path):
    run = tmp_path / "run"
    first = _trainer(tiny_dir, run, steps=3)
    first.run(progress=False)
    torn = run / "checkpoint-000006.part"  # killed while writing step 6's checkpoint
    torn.mkdir()
    (torn / "trained.safetensors").write_bytes(b"half")
    with open(run / "train_log.jsonl", "a") as log:
        log.write('{"step": 4, "lo')  # and while appending a log line
    assert ckpt.latest_checkpoint(run).name == "checkpoint-000003"
    again = _trainer(tiny_dir, run, steps=6)
    assert again.resume() == 3 and not torn.exists()
    other = _trainer(tiny_dir, run, steps=6, lr=1e-3)
    with pytest.raises(ValueError, match="other lr"):
        other.resume()


def test_pose_features_take_frames_as_a_batch_too(tiny_model):
    frames = torch.rand(3, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        flat = tiny_model.video_unet.pose_features(frames)
        clip = tiny_model.video_unet.pose_features(frames.transpose(0, 1)[None])
    assert all(torch.allclose(a, b) for a, b in zip(flat, clip))
