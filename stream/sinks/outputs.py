"""The one place that names a run's output files.

For a stream (or source) named ``NAME`` in folder ``DIR`` (``posestream run`` and the live
graph write the same names; DESIGN.md §3 for the formats):

* ``DIR/NAME.jsonl``: one JSON object per frame and line;
* ``DIR/results_NAME.json``: mmpose's ``--save-predictions`` layout (mmpose names it so);
* ``DIR/NAME.mp4``: the annotated video — for image inputs, the folder ``DIR/NAME_annotated/``;
* ``DIR/NAME_3d.mp4``: each annotated frame beside its people's 3D skeletons (``--view-3d``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutputFiles:
    """Output paths of one stream.

    Attributes:
        out_dir: the output folder. name: the stream's name (a source's file stem, or the live
            graph's stream id).
    """

    out_dir: Path
    name: str

    @property
    def jsonl(self) -> Path:
        return self.out_dir / f"{self.name}.jsonl"

    @property
    def predictions(self) -> Path:
        return self.out_dir / f"results_{self.name}.json"

    @property
    def video(self) -> Path:
        return self.out_dir / f"{self.name}.mp4"

    @property
    def annotated_images(self) -> Path:
        return self.out_dir / f"{self.name}_annotated"

    @property
    def view_3d(self) -> Path:
        return self.out_dir / f"{self.name}_3d.mp4"
