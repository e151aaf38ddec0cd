"""Test media made from the shared clips."""

from pathlib import Path

import av


def truncated_copy(source: Path, folder: Path) -> Path:
    """Re-encode ``source`` (420×420, 10 fps, faststart) and keep only the first half of the
    file's bytes: ``folder/cut.mp4``, a video that breaks part-way."""
    whole = folder / "whole.mp4"
    with av.open(str(source)) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 420, 420, "yuv420p"
        for frame in src.decode(video=0):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    truncated = folder / "cut.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return truncated
