"""What a new user meets first: one-line errors before any model loads, options where they are
typed, output files listed, legible labels, a metrics line that says something, and a house
whose imports only run down (engines ← stream ← offline)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, shared_file

def _cli(*argv, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "posestream.stream.cli", *map(str, argv)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                          timeout=timeout)


@pytest.mark.parametrize("command", ["run", "live"])
def test_a_missing_model_is_one_line_before_anything_starts(tmp_path, command):
    video = shared_file("media/har-wave/wave.mp4")
    empty = tmp_path / "no-models"
    empty.mkdir()
    source = [video] if command == "run" else ["--source", video]
    # no model anywhere and no network: the downloader's offline message, one line, no traceback
    done = _cli(command, *source, "--out", tmp_path / "out",
                env={"POSESTREAM_MODEL_DIR": str(empty), "POSESTREAM_HOME": str(tmp_path / "home"),
                     "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posestream: error:"), done.stderr
    assert "offline" in lines[0] and "POSESTREAM_MODEL_DIR" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing started


@pytest.mark.parametrize("command", ["run", "live"])
def test_a_missing_source_is_one_line(tmp_path, command):
    source = [tmp_path / "nope.mp4"] if command == "run" else ["--source", tmp_path / "nope.mp4"]
    done = _cli(command, *source, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"posestream: error: no such file: {tmp_path / 'nope.mp4'}"]


def test_verbose_after_the_subcommand_and_help_without_markup():
    done = _cli("models", "-v")
    assert done.returncode == 0 and "yolox-nano" in done.stdout
    for command in ([], ["run"], ["live"], ["export-npz"]):
        text = _cli(*command, "--help").stdout
        assert "``" not in text and ":class:" not in text and "-v, --verbose" in text


def test_live_lists_the_files_it_wrote(tmp_path):
    video = shared_file("media/har-wave/wave.mp4")
    done = _cli("live", "--source", video, "--out", tmp_path, "--max-frames", "8", "--no-video")
    assert done.returncode == 0, done.stderr
    wrote = [line.split("wrote ", 1)[1] for line in done.stdout.splitlines() if "wrote " in line]
    assert sorted(Path(p).name for p in wrote) == ["metrics.json", "results_wave.json", "wave.jsonl"]
    assert all(Path(p).is_file() for p in wrote)


def test_metrics_line_is_never_empty():
    from posestream.stream.graph.stages.sink import metrics_line

    waiting = metrics_line(0, {}, {}, 0, ["cam0"])
    assert "waiting" in waiting and "cam0" in waiting
    line = metrics_line(30, {"cam0": 10.0}, {"p50": 5.0, "p95": 9.0, "p99": 12.0}, 2, ["cam0"])
    assert "30 frames" in line and "cam0 10.0" in line and "5.0/9.0/12.0" in line and "dropped 2" in line


def test_label_size_follows_the_frame_and_is_outlined():
    import cv2

    from posestream.stream.sinks.annotate import draw_label, label_font

    heights = []
    for height in (480, 720, 2160):  # (below 400 px the 10 px floor keeps text readable)
        scale, thick = label_font((height, height * 16 // 9, 3))
        (_, text_height), _ = cv2.getTextSize("Hg", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        heights.append(text_height / height)
    assert max(heights) / min(heights) < 1.6  # about the same share of the frame at every size
    canvas = np.full((720, 1280, 3), 255, np.uint8)
    draw_label(canvas, "#1 standing", (100, 100))
    drawn = canvas[60:100, 100:400]
    green = (drawn[..., 1] > 200) & (drawn[..., 0] < 80) & (drawn[..., 2] < 80)
    black = drawn.max(axis=2) < 60
    assert green.sum() > 100 and black.sum() > 100  # green text with a dark outline, legible on white


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder, forbidden", [("engines", ("posestream.stream", "posestream.offline")),
                                               ("stream", ("posestream.offline",))])
def test_imports_only_run_down(folder, forbidden):
    offending = [f"{path.relative_to(REPO)} imports {name}" for path in sorted((REPO / folder).rglob("*.py"))
                 for name in _imports(path) if name.startswith(forbidden)]
    assert not offending


def test_no_top_level_package_names_that_clash():
    """Every import of the project's own code goes through posestream.*: a bare ``stream``,
    ``engines`` or ``offline`` would resolve to PyPI packages of those names once installed."""
    offending = [f"{path.relative_to(REPO)} imports {name}"
                 for folder in ("engines", "stream", "offline", "tools", "tests")
                 for path in sorted((REPO / folder).rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in ("stream", "engines", "offline")]
    assert not offending


@pytest.mark.parametrize("yaml_text, message", [
    ("lift:\n  enabled: \"false\"\n", "lift.enabled: expected true or false, got 'false'"),
    ("tracking:\n  iou_threshold: .nan\n", "tracking.iou_threshold: expected a finite number"),
    ("tracking:\n  min_hits: 2.5\n", "tracking.min_hits: expected an integer"),
    ("pipeline:\n  detector:\n", "pipeline.detector: a value is needed"),
])
def test_config_values_are_type_checked_with_their_path(tmp_path, yaml_text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    done = _cli("run", tmp_path / "any.mp4", "--out", tmp_path / "out", "--config", config)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
