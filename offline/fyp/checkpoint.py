"""Follow-Your-Pose model folders: the released layout, ours, and training runs.

Three layouts load with :func:`load_model` (``--model DIR``):

* **released** (Hugging Face ``YueMafighting/FollowYourPose_v1``, FOLLOW_YOUR_POSE.md §3)::

      stable-diffusion-v1-4/{unet,vae,text_encoder,tokenizer,scheduler}/   SD v1.4, diffusers layout
      pose_encoder.pth                      adapter state dict (the public code's ``Adapter`` names)
      followyourpose_checkpoint-1000/pytorch_model.bin   the video UNet + ``skeleton_adapter.*``

  Only ``pytorch_model.bin`` (or ``model.safetensors``) of the accelerate checkpoint is read; its
  optimizer, scheduler and random-state pickles are never opened. Every torch file loads with
  ``weights_only=True``. The UNet keys are diffusers' own (Tune-A-Video kept SD's names);
  the adapter keys are mapped by :func:`adapter_from_released`. Any key missing or left over
  raises :class:`ModelError` naming it.
* **ours** (:func:`save_model`): ``fyp_model.json``, ``unet/`` (2D config + the whole video UNet
  in safetensors), ``adapter/`` (diffusers ``T2IAdapter``), ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/`` (diffusers/transformers ``save_pretrained``, safetensors).
* **run** (``posestream fyp train --out RUN``): ``fyp_run.json`` names the base model; the newest
  ``checkpoint-NNNNNN/trained.safetensors`` (the fine-tuned parameters only) overrides it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from posestream.engines.download import sha256_of
from posestream.engines.errors import ModelError, ModelNotFoundError

from .video_unet import VideoUNet, inflate

log = logging.getLogger(__name__)

SD_FOLDER = "stable-diffusion-v1-4"
ADAPTER_FILE = "pose_encoder.pth"
CHECKPOINT_FOLDER = "followyourpose_checkpoint-1000"
CHECKPOINT_FILES = ("pytorch_model.bin", "model.safetensors")
SD_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
OURS_FILE = "fyp_model.json"
RUN_FILE = "fyp_run.json"
FORMAT = "posestream-fyp/1"
#: Prefix of the adapter inside the released UNet state dict.
RELEASED_ADAPTER_PREFIX = "skeleton_adapter."
#: Public licences of the released weights (shown by ``posestream fyp fetch``).
LICENCE = ("Follow-Your-Pose code and checkpoint: MIT (github.com/mayuelala/FollowYourPose); "
           "Stable Diffusion v1.4 weights: CreativeML OpenRAIL-M (huggingface.co/CompVis/stable-diffusion-v1-4), "
           "whose use restrictions bind every user of the generated content")


@dataclass
class FYPModel:
    """Everything generation and training need.

    Attributes:
        video_unet: :class:`VideoUNet` (inflated UNet + pose adapter).
        vae: diffusers ``AutoencoderKL``; text_encoder: transformers ``CLIPTextModel``;
        tokenizer: ``CLIPTokenizer``; scheduler_config: the SD noise schedule (dict).
        path: the folder loaded; layout: "released", "ours" or "run".
        files: {role: file} of the weight files read (for hashes).
        run: a run's ``fyp_run.json`` content (layout "run"), else None.
    """

    video_unet: VideoUNet
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler_config: dict
    path: Path
    layout: str
    files: dict = field(default_factory=dict)
    run: dict | None = None

    def to(self, device, dtype=None) -> "FYPModel":
        """Move (and cast) every network; returns self."""
        for module in (self.video_unet, self.vae, self.text_encoder):
            module.to(device=device, dtype=dtype)
        return self

    def hashes(self) -> dict:
        """{role: sha256} of the weight files loaded (hashing reads every byte)."""
        return {role: sha256_of(path) for role, path in self.files.items()}


def torch_load(path: Path) -> dict:
    """A torch state dict, loaded with ``weights_only=True`` (no arbitrary unpickling).

    Raises:
        ModelError: the file is not a state dict of tensors (corrupt, or a pickle of other objects).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- torch raises UnpicklingError, RuntimeError, EOFError …
        raise ModelError(f"{path}: not a readable weights-only torch state dict ({str(exc).splitlines()[0]})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    return state


def load_weights(path: Path) -> dict:
    """State dict of a ``.safetensors`` or torch file (:func:`torch_load`)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{path}: not a readable safetensors file ({exc})") from exc
    return torch_load(path)


def _load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line :class:`ModelError` naming the keys."""
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise ModelError(f"{what}: keys do not match the model: {'; '.join(parts)}")
    own = module.state_dict()
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise ModelError(f"{what}: {len(wrong)} tensors of the wrong shape, e.g. {k} "
                         f"{tuple(state[k].shape)} where the model has {tuple(own[k].shape)}")
    module.load_state_dict(state, strict=True)


_RELEASED_BODY = re.compile(r"^body\.(\d+)\.(block1|block2|in_conv)\.(weight|bias)$")
_OURS_BODY = re.compile(r"^adapter\.body\.(\d+)\.(?:resnets\.(\d+)\.(block1|block2)|(in_conv))\.(weight|bias)$")


def adapter_from_released(state: dict, num_res_blocks: int) -> dict:
    """The public code's ``Adapter`` state dict → diffusers ``T2IAdapter`` (full adapter) keys.

    ``conv_in.*`` → ``adapter.conv_in.*``; ``body.{l·R+j}.block{1,2}.*`` → ``adapter.body.{l}.resnets.{j}.block{1,2}.*``;
    ``body.{l·R}.in_conv.*`` → ``adapter.body.{l}.in_conv.*`` (R = ``num_res_blocks``; the
    ``down_opt`` average pool has no parameters).

    Raises:
        ModelError: a key of another shape of name, or an ``in_conv`` that is not first in its level.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("conv_in."):
            out["adapter." + key] = value
            continue
        match = _RELEASED_BODY.match(key)
        if not match:
            raise ModelError(f"{ADAPTER_FILE}: unexpected adapter key {key!r}")
        index, layer, kind = int(match[1]), match[2], match[3]
        level, j = divmod(index, num_res_blocks)
        if layer == "in_conv":
            if j:
                raise ModelError(f"{ADAPTER_FILE}: {key!r}: in_conv only starts a level")
            out[f"adapter.body.{level}.in_conv.{kind}"] = value
        else:
            out[f"adapter.body.{level}.resnets.{j}.{layer}.{kind}"] = value
    return out


def adapter_to_released(state: dict, num_res_blocks: int) -> dict:
    """Inverse of :func:`adapter_from_released` (for writing the released layout)."""
    out = {}
    for key, value in state.items():
        if key.startswith("adapter.conv_in."):
            out[key[len("adapter."):]] = value
            continue
        match = _OURS_BODY.match(key)
        if not match:
            raise ModelError(f"unexpected T2IAdapter key {key!r}")
        level = int(match[1])
        if match[4]:
            out[f"body.{level * num_res_blocks}.in_conv.{match[5]}"] = value
        else:
            out[f"body.{level * num_res_blocks + int(match[2])}.{match[3]}.{match[5]}"] = value
    return out


def _adapter_config(state: dict, levels: int) -> dict:
    """T2IAdapter arguments read off a released adapter state dict and the UNet's level count."""
    if "conv_in.weight" not in state:
        raise ModelError(f"{ADAPTER_FILE}: no conv_in.weight: not a Follow-Your-Pose pose encoder")
    blocks = 1 + max(int(m[1]) for k in state if (m := _RELEASED_BODY.match(k)))
    if blocks % levels:
        raise ModelError(f"{ADAPTER_FILE}: {blocks} residual blocks do not split into the UNet's {levels} levels")
    per_level = blocks // levels
    channels = [int(state[f"body.{level * per_level}.block1.weight"].shape[0]) for level in range(levels)]
    cin = int(state["conv_in.weight"].shape[1])
    factor = round((cin / 3) ** 0.5)
    if 3 * factor * factor != cin:
        raise ModelError(f"{ADAPTER_FILE}: conv_in takes {cin} channels, not 3·k² of an RGB pixel-unshuffle")
    return {"in_channels": 3, "channels": channels, "num_res_blocks": per_level, "downscale_factor": factor,
            "adapter_type": "full_adapter"}


def _first_file(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def detect_layout(path: Path) -> str:
    """"ours", "run" or "released" for a model folder.

    Raises:
        ModelNotFoundError: no such folder, or one of no known layout (what is missing is named).
    """
    if not path.is_dir():
        raise ModelNotFoundError(f"no such model folder: {path}")
    if (path / OURS_FILE).is_file():
        return "ours"
    if (path / RUN_FILE).is_file():
        return "run"
    missing = [str(p) for p in (path / SD_FOLDER, path / ADAPTER_FILE, path / CHECKPOINT_FOLDER) if not p.exists()]
    missing += [str(path / SD_FOLDER / c) for c in SD_COMPONENTS
                if (path / SD_FOLDER).is_dir() and not (path / SD_FOLDER / c).is_dir()]
    if (path / CHECKPOINT_FOLDER).is_dir() and _first_file(path / CHECKPOINT_FOLDER, CHECKPOINT_FILES) is None:
        missing.append(str(path / CHECKPOINT_FOLDER / CHECKPOINT_FILES[0]))
    if missing:
        raise ModelNotFoundError(f"{path} is not a Follow-Your-Pose model folder: missing {', '.join(missing)} "
                                 f"(expected the released layout, a folder saved by posestream ({OURS_FILE}) "
                                 f"or a training run ({RUN_FILE}); 'posestream fyp fetch' downloads the released one)")
    return "released"


def _sd_parts(folder: Path) -> tuple:
    """VAE, text encoder, tokenizer and scheduler config of an SD-layout folder."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextModel, CLIPTokenizer

    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        if not (folder / part).is_dir():
            raise ModelNotFoundError(f"{folder}: missing {folder / part}")
    try:
        vae = AutoencoderKL.from_pretrained(folder / "vae")
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder")
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
        scheduler_config = dict(DDIMScheduler.load_config(folder / "scheduler"))
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelError(f"{folder}: {str(exc).splitlines()[0]}") from exc
    return vae, text_encoder, tokenizer, scheduler_config


def _unet_2d(folder: Path):
    """SD's 2D UNet: config and weights of ``folder`` (safetensors or a weights-only torch file)."""
    from diffusers import UNet2DConditionModel

    config_file = folder / "config.json"
    weights = _first_file(folder, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"))
    if not config_file.is_file() or weights is None:
        raise ModelNotFoundError(f"{folder}: missing config.json or diffusion_pytorch_model.(safetensors|bin)")
    config = json.loads(config_file.read_text())
    unet = UNet2DConditionModel.from_config(config)
    return unet, weights


def load_released(path: Path) -> FYPModel:
    """Load the released layout (see the module text).

    Raises:
        ModelNotFoundError: a file is missing (named). ModelError: a file that does not load, or
            any key missing from or left over in a state dict (named).
    """
    from diffusers import T2IAdapter

    sd = path / SD_FOLDER
    unet, unet_file = _unet_2d(sd / "unet")
    _load_strict(unet, load_weights(unet_file), str(unet_file))
    inflate(unet)
    adapter_state = torch_load(path / ADAPTER_FILE)
    config = _adapter_config(adapter_state, len(unet.config.block_out_channels))
    adapter = T2IAdapter(**config)
    _load_strict(adapter, adapter_from_released(adapter_state, config["num_res_blocks"]), str(path / ADAPTER_FILE))
    checkpoint = _first_file(path / CHECKPOINT_FOLDER, CHECKPOINT_FILES)
    state = load_weights(checkpoint)
    unet_state = {k: v for k, v in state.items() if not k.startswith(RELEASED_ADAPTER_PREFIX)}
    inner_adapter = {k[len(RELEASED_ADAPTER_PREFIX):]: v for k, v in state.items() if k.startswith(RELEASED_ADAPTER_PREFIX)}
    if not inner_adapter:
        raise ModelError(f"{checkpoint}: no {RELEASED_ADAPTER_PREFIX}* keys: not a Follow-Your-Pose UNet checkpoint")
    _load_strict(unet, unet_state, str(checkpoint))
    _load_strict(adapter, adapter_from_released(inner_adapter, config["num_res_blocks"]), f"{checkpoint} (adapter)")
    vae, text_encoder, tokenizer, scheduler_config = _sd_parts(sd)
    return FYPModel(VideoUNet(unet, adapter), vae, text_encoder, tokenizer, scheduler_config, path, "released",
                    files={"unet_2d": unet_file, "pose_encoder": path / ADAPTER_FILE, "video_unet": checkpoint})


def load_ours(path: Path) -> FYPModel:
    """Load a folder written by :func:`save_model`."""
    from diffusers import T2IAdapter, UNet2DConditionModel

    info = json.loads((path / OURS_FILE).read_text())
    if info.get("format") != FORMAT:
        raise ModelError(f"{path / OURS_FILE}: format {info.get('format')!r}, expected {FORMAT!r}")
    config_file = path / "unet" / "config.json"
    weights = path / "unet" / "video_unet.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise ModelNotFoundError(f"{path}: missing {config_file if not config_file.is_file() else weights}")
    unet = UNet2DConditionModel.from_config(json.loads(config_file.read_text()))
    inflate(unet)
    _load_strict(unet, load_weights(weights), str(weights))
    adapter = None
    if (path / "adapter").is_dir():
        try:
            adapter = T2IAdapter.from_pretrained(path / "adapter")
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path / 'adapter'}: {str(exc).splitlines()[0]}") from exc
    vae, text_encoder, tokenizer, scheduler_config = _sd_parts(path)
    files = {"video_unet": weights}
    if adapter is not None:
        files["adapter"] = _first_file(path / "adapter", ("diffusion_pytorch_model.safetensors",))
    return FYPModel(VideoUNet(unet, adapter), vae, text_encoder, tokenizer, scheduler_config, path, "ours",
                    files={k: v for k, v in files.items() if v is not None})


def latest_checkpoint(run: Path) -> Path | None:
    """The newest complete ``checkpoint-NNNNNN`` folder of a training run (by step number; one
    holding ``trained.safetensors`` and ``state.json``, which is written last; ``.part`` folders
    of an interrupted write are not checkpoints)."""
    found = [(int(m[1]), p) for p in run.glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trained.safetensors").is_file()
             and (p / "state.json").is_file()]
    return max(found)[1] if found else None


def load_run(path: Path) -> FYPModel:
    """A training run: its base model with the newest checkpoint's trained parameters.

    Raises:
        ModelNotFoundError: the base model or every checkpoint is missing.
        ModelError: a trained parameter the base UNet does not have, or of another shape.
    """
    run = json.loads((path / RUN_FILE).read_text())
    base = Path(run["base_model"])
    if not base.is_absolute():
        base = (path / base).resolve()
    if detect_layout(base) == "run":
        raise ModelError(f"{path}: its base model {base} is itself a run")
    model = load_model(base)
    checkpoint = latest_checkpoint(path)
    if checkpoint is None:
        raise ModelNotFoundError(f"{path}: no checkpoint-*/trained.safetensors yet (training wrote none)")
    apply_trained(model.video_unet.unet, load_weights(checkpoint / "trained.safetensors"), str(checkpoint))
    model.path, model.layout, model.run = path, "run", run
    model.files = {**model.files, "trained": checkpoint / "trained.safetensors"}
    return model


def apply_trained(unet: torch.nn.Module, state: dict, what: str) -> None:
    """Copy fine-tuned parameters into ``unet``. Raises ModelError on an unknown name or shape."""
    own = dict(unet.named_parameters())
    unknown = [k for k in state if k not in own]
    if unknown:
        raise ModelError(f"{what}: {len(unknown)} trained parameters the model does not have, e.g. {unknown[0]}")
    with torch.no_grad():
        for key, value in state.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ModelError(f"{what}: {key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}")
            own[key].copy_(value)


def load_model(path: str | Path) -> FYPModel:
    """Load any of the three layouts (module text), on the CPU in float32.

    Raises:
        ModelNotFoundError, ModelError: see :func:`detect_layout`, :func:`load_released`, :func:`load_run`.
    """
    path = Path(path)
    layout = detect_layout(path)
    log.info("loading Follow-Your-Pose model %s (%s layout)", path, layout)
    return {"released": load_released, "ours": load_ours, "run": load_run}[layout](path)


def save_model(model: FYPModel, out: str | Path) -> Path:
    """Write ``model`` in our layout (safetensors everywhere) to the new folder ``out``,
    via ``out.part`` renamed at the end.

    Raises:
        FileExistsError: ``out`` exists.
    """
    import shutil

    from diffusers import DDIMScheduler
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder")
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    (part / "unet").mkdir(parents=True)
    unet = model.video_unet.unet
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    (part / "unet" / "config.json").write_text(json.dumps(config, indent=1))
    save_file({k: v.detach().contiguous().cpu() for k, v in unet.state_dict().items()},
              part / "unet" / "video_unet.safetensors")
    if model.video_unet.adapter is not None:
        model.video_unet.adapter.save_pretrained(part / "adapter")
    model.vae.save_pretrained(part / "vae")
    model.text_encoder.save_pretrained(part / "text_encoder")
    model.tokenizer.save_pretrained(part / "tokenizer")
    DDIMScheduler.from_config(model.scheduler_config).save_pretrained(part / "scheduler")
    (part / OURS_FILE).write_text(json.dumps({"format": FORMAT, "source": str(model.path),
                                              "source_layout": model.layout}, indent=1))
    part.rename(out)
    return out
