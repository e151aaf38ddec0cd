"""The Follow-Your-Pose video UNet: diffusers' SD UNet inflated to video, plus the pose adapter.

Follow-Your-Pose (FOLLOW_YOUR_POSE.md §2) inflates SD v1.4's 2D UNet the Tune-A-Video way. This
module does the same to diffusers' own :class:`~diffusers.UNet2DConditionModel` instead of
copying a UNet: every layer runs on the ``B·F`` frames as a batch (so 2D convs are per frame), and
four things change, in place, keeping the released parameter names:

* every ``ResnetBlock2D.norm1``/``norm2`` and ``conv_norm_out`` becomes a :class:`FrameGroupNorm`:
  the released model applies ``nn.GroupNorm`` to ``(B, C, F, H, W)`` tensors, so its statistics
  span all frames of a clip (same parameters, other statistics);
* each transformer block's ``attn1`` gets :class:`SparseCausalAttnProcessor`: queries of frame
  i attend to the keys and values of frame 0 and frame i−1 (frame 0: itself twice);
* each transformer block gains ``norm_temp`` (LayerNorm) and ``attn_temp`` (self-attention along
  the frame axis at each position, residual), then ``conv_temporal`` (:class:`TemporalConv`), run
  after the block's feed-forward by a forward hook. ``attn_temp``'s output projection and
  ``conv_temporal.up`` start at zero, so a fresh inflation changes nothing but the two points
  above;
* the T2I-Adapter "full" adapter (diffusers' :class:`~diffusers.T2IAdapter`) turns skeleton
  frames into one feature map per down level, added (× ``pose_scale``) to the output of the
  last resnet/attention pair of that level: diffusers' ``down_intrablock_additional_residuals``
  hook does exactly what the released ``unet_blocks.py`` does.

Tensors: latents (B, 4, F, H/8, W/8) float; prompt embeddings (B, 77, D); skeleton frames
(B, 3, F, H, W) RGB in [0, 1]. Attention uses ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import T2IAdapter, UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from .defaults import TRAINABLE_MODULES

#: Rank of ``conv_temporal`` in the released model (``LoRALinearLayer(dim, dim, rank=160)``);
#: where a block is narrower than that, the released code falls back to ``dim // 2``.
TEMPORAL_RANK = 160


class FrameContext:
    """Clip length shared by the inflated layers during one forward pass (set by :class:`VideoUNet`)."""

    def __init__(self):
        self.num_frames = 1


def _to_clip(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B·F, …) → (B, F, …)."""
    return x.reshape(x.shape[0] // num_frames, num_frames, *x.shape[1:])


class FrameGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` whose statistics span all frames of a clip, as the released model's
    norms on (B, C, F, H, W) tensors do. Input and output: (B·F, C, H, W), frames of one clip
    consecutive. Same parameters (``weight``, ``bias``) as the 2D norm it replaces."""

    def __init__(self, norm: nn.GroupNorm, context: FrameContext):
        super().__init__(norm.num_groups, norm.num_channels, norm.eps, norm.affine)
        self.load_state_dict(norm.state_dict())
        self.context = context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.context.num_frames
        if frames == 1:
            return super().forward(x)
        clip = _to_clip(x, frames).transpose(1, 2)  # (B, C, F, H, W)
        out = F.group_norm(clip, self.num_groups, self.weight, self.bias, self.eps)
        return out.transpose(1, 2).reshape(x.shape)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, L, heads·d) → (N, heads, L, d)."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


class SparseCausalAttnProcessor:
    """diffusers attention processor for ``attn1``: frame i's queries attend to the keys and
    values of frames 0 and i−1 (concatenated along the token axis; frame 0 uses frame 0 twice),
    the sparse-causal attention of Tune-A-Video and Follow-Your-Pose.

    Args:
        context: gives the clip length F; hidden states are (B·F, N, C).
        slice_size: compute at most this many frames' attention at once (memory), None: all.
    """

    def __init__(self, context: FrameContext, slice_size: int | None = None):
        self.context = context
        self.slice_size = slice_size

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("sparse-causal attention is self-attention without a mask")
        frames = self.context.num_frames
        query = attn.to_q(hidden_states)
        key = _to_clip(attn.to_k(hidden_states), frames)
        value = _to_clip(attn.to_v(hidden_states), frames)
        former = torch.arange(frames, device=hidden_states.device) - 1
        former[0] = 0
        first = torch.zeros_like(former)
        key = torch.cat([key[:, first], key[:, former]], dim=2).flatten(0, 1)  # (B·F, 2N, C)
        value = torch.cat([value[:, first], value[:, former]], dim=2).flatten(0, 1)
        query, key, value = (_split_heads(t, attn.heads) for t in (query, key, value))
        step = self.slice_size or query.shape[0]
        out = torch.cat([F.scaled_dot_product_attention(query[i:i + step], key[i:i + step], value[i:i + step])
                         for i in range(0, query.shape[0], step)])
        out = out.transpose(1, 2).flatten(2).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


class TemporalConv(nn.Module):
    """The released ``conv_temporal``: a low-rank temporal convolution with a residual,
    ``x + up(down(x))``, ``down = Conv1d(dim→rank, k=3, pad=1, no bias)``, ``up = Conv1d(rank→dim,
    k=3, pad=1, no bias)`` initialised to zero; ``down`` ~ N(0, (1/rank)²) as released.

    Input/output: (B·N, dim, F), float.
    """

    def __init__(self, dim: int, rank: int = TEMPORAL_RANK):
        super().__init__()
        if rank > dim:
            rank = dim // 2
        self.down = nn.Conv1d(dim, rank, kernel_size=3, padding=1, bias=False)
        self.up = nn.Conv1d(rank, dim, kernel_size=3, padding=1, bias=False)
        nn.init.normal_(self.down.weight, std=1 / rank)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.down.weight.dtype
        return self.up(self.down(x.to(dtype))).to(x.dtype) + x


def _temporal_hook(block: BasicTransformerBlock, args, output: torch.Tensor) -> torch.Tensor:
    """After a transformer block: ``attn_temp`` along frames (residual), then ``conv_temporal``."""
    frames = block.frame_context.num_frames
    batch_frames, tokens, dim = output.shape
    x = _to_clip(output, frames).transpose(1, 2).reshape(-1, frames, dim)  # (B·N, F, C)
    x = block.attn_temp(block.norm_temp(x)) + x
    x = block.conv_temporal(x.transpose(1, 2)).transpose(1, 2)
    return x.reshape(-1, tokens, frames, dim).transpose(1, 2).reshape(batch_frames, tokens, dim)


def inflate(unet: UNet2DConditionModel, context: FrameContext | None = None) -> FrameContext:
    """Inflate SD's 2D ``unet`` into Follow-Your-Pose's video UNet, in place (see the module text).

    The new ``attn_temp`` (``norm_temp``, ``conv_temporal``) of every transformer block take
    their width and heads from its ``attn1``; ``attn_temp.to_out.0`` and ``conv_temporal.up`` are
    zero, so ``unet`` still gives SD's output for a clip of one frame or of identical frames.

    Returns:
        The :class:`FrameContext` the inflated layers read the clip length from.

    Raises:
        ValueError: ``unet`` was already inflated.
    """
    context = context or FrameContext()
    if getattr(unet, "frame_context", None) is not None:
        raise ValueError("this UNet is already inflated")
    unet.frame_context = context
    for module in list(unet.modules()):
        if isinstance(module, ResnetBlock2D):
            module.norm1 = FrameGroupNorm(module.norm1, context)
            module.norm2 = FrameGroupNorm(module.norm2, context)
        elif isinstance(module, BasicTransformerBlock):
            attn1 = module.attn1
            dim = attn1.query_dim
            module.attn1.set_processor(SparseCausalAttnProcessor(context))
            module.norm_temp = nn.LayerNorm(dim)
            module.attn_temp = Attention(query_dim=dim, heads=attn1.heads, dim_head=attn1.inner_dim // attn1.heads,
                                         bias=attn1.to_q.bias is not None, processor=AttnProcessor2_0())
            nn.init.zeros_(module.attn_temp.to_out[0].weight)
            nn.init.zeros_(module.attn_temp.to_out[0].bias)
            module.conv_temporal = TemporalConv(dim)
            module.frame_context = context
            module.register_forward_hook(_temporal_hook)
    unet.conv_norm_out = FrameGroupNorm(unet.conv_norm_out, context)
    return context


def set_attention_slicing(unet: UNet2DConditionModel, slice_size: int | None) -> None:
    """Compute attention in slices of ``slice_size`` frames (sparse-causal) or batch rows (the
    others), trading speed for peak memory; None restores one pass."""
    from diffusers.models.attention_processor import SlicedAttnProcessor

    for module in unet.modules():
        if isinstance(module, BasicTransformerBlock):
            module.attn1.processor.slice_size = slice_size
            for attn in (module.attn2, module.attn_temp):
                if attn is not None:
                    attn.set_processor(SlicedAttnProcessor(slice_size) if slice_size else AttnProcessor2_0())


class VideoUNet(nn.Module):
    """Follow-Your-Pose's denoiser: the inflated ``unet`` and the pose ``adapter``.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (inflated here unless already).
        adapter: a diffusers ``T2IAdapter`` (full adapter, ``in_channels=3``) whose levels match
            the UNet's down blocks, or None (no pose guidance).
    """

    def __init__(self, unet: UNet2DConditionModel, adapter: T2IAdapter | None):
        super().__init__()
        self.unet = unet
        self.adapter = adapter
        self.context = unet.frame_context if getattr(unet, "frame_context", None) else inflate(unet)

    @property
    def dtype(self) -> torch.dtype:
        """The UNet's parameter dtype (float32 on CPU, float16/bfloat16 on CUDA when cast)."""
        return self.unet.dtype

    def pose_features(self, skeleton: torch.Tensor) -> list[torch.Tensor]:
        """Adapter features of skeleton frames (B, 3, F, H, W) — or already (B·F, 3, H, W) — in [0, 1]:
        one (B·F, C_l, h_l, w_l) per level."""
        if self.adapter is None:
            raise ValueError("this model has no pose adapter")
        frames = skeleton if skeleton.dim() == 4 else skeleton.transpose(1, 2).flatten(0, 1)
        return list(self.adapter(frames.to(self.adapter.dtype)))

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | int, prompt_embeds: torch.Tensor,
                pose_features: list[torch.Tensor] | None = None, pose_scale: float = 1.0) -> torch.Tensor:
        """Predict the noise of ``latents``.

        Args:
            latents: (B, C, F, h, w).
            timestep: scalar or (B,) diffusion step(s).
            prompt_embeds: (B, L, D) text-encoder states, one per clip.
            pose_features: :meth:`pose_features` of the skeleton frames (B·F rows), None: no pose.
            pose_scale: factor on the pose features.

        Returns:
            (B, C, F, h, w) predicted noise, dtype of ``latents``.
        """
        batch, channels, frames, height, width = latents.shape
        self.context.num_frames = frames
        sample = latents.transpose(1, 2).reshape(batch * frames, channels, height, width)
        timestep = torch.as_tensor(timestep, device=latents.device)
        timestep = timestep.reshape(()).expand(batch) if timestep.numel() == 1 else timestep
        residuals = None
        if pose_features is not None:
            residuals = [f * pose_scale for f in pose_features]
        out = self.unet(sample.to(self.unet.dtype), timestep.repeat_interleave(frames),
                        prompt_embeds.repeat_interleave(frames, dim=0).to(self.unet.dtype),
                        down_intrablock_additional_residuals=residuals).sample
        return out.reshape(batch, frames, -1, height, width).transpose(1, 2).to(latents.dtype)


def trainable_parameters(unet: UNet2DConditionModel, modules: tuple[str, ...] = TRAINABLE_MODULES) -> dict:
    """{name: parameter} of ``unet`` whose names contain one of ``modules`` (the layers stage 2
    of Follow-Your-Pose fine-tunes). Raises ValueError when none matches."""
    selected = {name: p for name, p in unet.named_parameters() if any(m in name for m in modules)}
    if not selected:
        raise ValueError(f"no parameter of the UNet matches {', '.join(modules)}")
    return selected
