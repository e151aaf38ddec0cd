"""Commands of the offline layer, registered with ``posestream`` through the
``posestream.commands`` entry-point group (see :mod:`posestream.stream.cli`)."""

from __future__ import annotations

import argparse


def _export_npz(args: argparse.Namespace) -> int:
    from posestream.offline.export import export_npz

    for path in export_npz(args.jsonl, args.out, name=args.name, track_id=args.track):
        print(f"wrote {path}")
    return 0


def export_npz_command(sub) -> None:
    """Add ``posestream export-npz RUN.jsonl --out DIR [--track ID] [--name NAME]`` to ``sub``
    (argparse sub-parsers): one person of a run as VideoPose3D's custom 2D npz (+ 3D npz)."""
    export = sub.add_parser("export-npz", parents=[sub.parent_parser],
                            help="one person of a run's JSON lines as VideoPose3D custom 2D npz (+ 3D npz)")
    export.add_argument("jsonl", help="the NAME.jsonl that posestream run wrote")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--track", type=int, help="track id of the person (default: best-scoring person of each frame)")
    export.add_argument("--name", help="video name inside the npz (default: the file's stem)")
    export.set_defaults(func=_export_npz)


def _convert_lifter(args: argparse.Namespace) -> int:
    from posestream.offline.lifter_model import convert_lifter

    out, architecture, declared = convert_lifter(args.checkpoint, args.out, symmetric=args.symmetric)
    kind = "causal" if architecture.causal else "symmetric"
    if declared:
        source = "as the checkpoint declares"
    elif args.symmetric:
        source = "from --symmetric"
    else:
        source = "the checkpoint does not say; pass --symmetric for a centred model such as VideoPose3D's releases"
    print(f"wrote {out}: {kind} ({source}), receptive field {architecture.receptive_field}, "
          f"{architecture.joints_in} → {architecture.joints_out} joints, {architecture.channels} channels")
    return 0


def convert_lifter_command(sub) -> None:
    """Add ``posestream convert-lifter CKPT --out OUT.safetensors [--symmetric]`` to ``sub``
    (argparse sub-parsers): a PyTorch lifter checkpoint (VideoPose3D ``.bin``, posestream ``.pt``)
    as the safetensors file that the runtime reads without torch (needs torch)."""
    convert = sub.add_parser("convert-lifter", parents=[sub.parent_parser],
                             help="a PyTorch lifter checkpoint (.pt, VideoPose3D .bin) as the runtime's "
                                  ".safetensors (needs torch)")
    convert.add_argument("checkpoint", help="VideoPose3D .bin or posestream .pt (state dict under 'model_pos')")
    convert.add_argument("--out", required=True, help="the .safetensors file to write")
    convert.add_argument("--symmetric", action="store_true",
                         help="for checkpoints that do not store their architecture: a centred (non-causal) model, "
                              "as VideoPose3D's releases are (default: causal)")
    convert.set_defaults(func=_convert_lifter)
