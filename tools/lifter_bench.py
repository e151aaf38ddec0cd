#!/usr/bin/env python3
"""Speed of the 3D lifter at run time: the NumPy streaming model (one output per layer per frame,
batched over the tracks; :class:`posestream.stream.lift.model.StreamingTemporalModel`) against
recomputing the whole PyTorch network over each track's last receptive field every frame (what a
lifter without ring buffers would do); and the shipped lifter's provenance and MPJPE table.

    python tools/lifter_bench.py

Importable: :func:`lifter_ms`, :func:`lifter_report` (tools/benchmark.py calls them). Needs torch
(the ``test``/``train`` extra) for the recompute column; the runtime itself does not.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

#: Filter widths of VideoPose3D's 27-, 81- and 243-frame models.
WIDTHS = ((3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3, 3))


def lifter_ms(widths: tuple[int, ...], channels: int, people: int, frames: int = 100) -> dict[str, float]:
    """Milliseconds per frame to lift ``people`` tracks with a causal model of random weights.

    Args:
        widths: filter widths (receptive field = their product).
        channels: feature channels per layer.
        people: tracks lifted together (one batched step per frame).
        frames: timed frames (after as many untimed ones as the receptive field, to fill the
            rings and warm the allocator).

    Returns:
        ``{"streaming": NumPy streaming ms/frame, "recompute": torch whole-network ms/frame,
        "max_abs_diff": the two answers' largest difference over the timed frames, metres}``;
        the times are medians over the timed frames (robust to other work on the machine).
    """
    import torch

    from posestream.offline.lifter_model import TemporalModel, numpy_lifter
    from posestream.stream.lift.model import LifterArchitecture, StreamingTemporalModel

    torch.manual_seed(0)
    model = TemporalModel(LifterArchitecture(filter_widths=widths, channels=channels, causal=True)).eval()
    rf = model.receptive_field
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.01, (people, rf + frames, 17, 2)), axis=1).astype(np.float32)
    stream = StreamingTemporalModel(numpy_lifter(model))
    states = [stream.start(x[p, 0]) for p in range(people)]
    for t in range(1, rf):  # the rings now hold real frames, as a running track's do
        stream.step(states, x[:, t])
    streamed = np.empty((frames, people, 17, 3), np.float32)
    recomputed = np.empty_like(streamed)
    stream_ms, recompute_ms = np.empty(frames), np.empty(frames)
    for i, t in enumerate(range(rf, rf + frames)):
        t0 = time.perf_counter()
        streamed[i] = stream.step(states, x[:, t])
        stream_ms[i] = time.perf_counter() - t0
    with torch.no_grad():
        windows = torch.from_numpy(x)
        model(windows[:, :rf])  # warm-up
        for i, t in enumerate(range(rf, rf + frames)):
            t0 = time.perf_counter()
            recomputed[i] = model(windows[:, t - rf + 1:t + 1])[:, -1].numpy()
            recompute_ms[i] = time.perf_counter() - t0
    return {"streaming": float(np.median(stream_ms) * 1e3), "recompute": float(np.median(recompute_ms) * 1e3),
            "max_abs_diff": float(np.abs(streamed - recomputed).max())}


def lifter_report(frames: int = 100) -> list[dict]:
    """Print (and return as rows) streaming vs recompute at 27/81/243 frames × 256/1024 channels ×
    1/5 people, then the shipped lifter's architecture, provenance and MPJPE table (read from
    its safetensors metadata, without torch)."""
    import torch

    from posestream.stream.lift.model import load_lifter
    from posestream.stream.lift.stage import DEFAULT_LIFTER

    print(f"lifter ms/frame (median of {frames} frames), causal, random weights; NumPy {np.__version__} streaming "
          f"vs torch {torch.__version__} whole-network recompute ({torch.get_num_threads()} threads); {os.cpu_count()} cores")
    print(f"{'frames':>6s} {'channels':>8s} {'people':>6s} {'streaming':>10s} {'recompute':>10s} {'ratio':>7s} {'max diff':>9s}")
    rows = []
    for widths in WIDTHS:
        for channels in (256, 1024):
            for people in (1, 5):
                ms = lifter_ms(widths, channels, people, frames)
                rows.append({"receptive_field": int(np.prod(widths)), "channels": channels, "people": people, **ms})
                print(f"{rows[-1]['receptive_field']:6d} {channels:8d} {people:6d} {ms['streaming']:10.2f} "
                      f"{ms['recompute']:10.2f} {ms['recompute'] / ms['streaming']:7.1f} {ms['max_abs_diff']:9.1e}",
                      flush=True)
    lifter = load_lifter(DEFAULT_LIFTER)
    print(f"\nshipped lifter {DEFAULT_LIFTER.name}: {lifter.architecture}")
    print(f"made with: {lifter.metadata.get('command')}")
    print(f"{'evaluation':36s} {'frames':>7s} {'MPJPE':>7s} {'P-MPJPE':>8s} {'N-MPJPE':>8s}  (mm)")
    for name, m in lifter.metadata.get("metrics", {}).items():
        print(f"{name:36s} {m['frames']:7d} {m['mpjpe']:7.1f} {m['p_mpjpe']:8.1f} {m['n_mpjpe']:8.1f}")
    return rows


if __name__ == "__main__":
    lifter_report(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
