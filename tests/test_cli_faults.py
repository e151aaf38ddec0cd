"""Faults of the command line, each one error line (``posestream: error: ...``, exit status 2)
and never a traceback: an unusable --out, a config file that is no YAML or holds values out of
range, a bad POSESTREAM_HOME, a full disk, a PUB address in use or open to the network; and the
edge cases ``posestream run`` and ``posestream live`` must treat alike (a video without frames,
non-ASCII file names, two sources of the same name)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import av
import pytest
import zmq

from conftest import MODELS, shared_file
from posestream.stream.capture.cameras import source_name
from posestream.stream.capture.files import VideoFileSource, safe_name
from posestream.stream.cli import main
from posestream.stream.config import RunConfig, SinkConfig

ENV = {**os.environ, "POSESTREAM_MODEL_DIR": str(MODELS), "PYTHONUNBUFFERED": "1"}


def _cli(capsys, *argv) -> tuple[int, list[str]]:
    """Run the command in this process; its status and its stderr lines."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip().splitlines()


def _subprocess(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posestream.stream.cli", *map(str, argv)],
                          env=env or ENV, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def wave():
    return shared_file("media/har-wave/wave.mp4")


# --- an unusable --out ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "live"])
@pytest.mark.parametrize("where, why", [("file", "not a folder (--out names the output folder)"),
                                        ("file/out", "cannot create the output folder (Not a directory)")])
def test_unusable_out_is_one_line_before_any_model_loads(tmp_path, capsys, wave, command, where, why):
    (tmp_path / "file").write_text("in the way")
    out = tmp_path / where
    source = [wave] if command == "run" else ["--source", wave]
    # a missing detector would be the error if --out were checked after the models
    code, err = _cli(capsys, command, *source, "--out", out, "--det", tmp_path / "missing.onnx")
    assert (code, err) == (2, [f"posestream: error: {out}: {why}"])


def test_out_folder_without_write_permission(tmp_path, capsys, wave, monkeypatch):
    """A folder that cannot be written in (simulated: tests run as root, who may write anywhere)."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    code, err = _cli(capsys, "run", wave, "--out", tmp_path / "out", "--quiet")
    assert code == 2
    assert err == [f"posestream: error: {tmp_path / 'out'}: cannot write in the output folder (Permission denied)"]


# --- a full disk ------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_disk_is_one_line_naming_the_file(tmp_path, wave):
    """The JSON lines go to /dev/full (every write fails with ENOSPC, as on a full disk):
    one line naming the file, no traceback, status 2; the other output is finished (valid JSON,
    holding the frames written before the error: none here, the first write failed)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "wave.jsonl.part").symlink_to("/dev/full")
    done = _subprocess("run", wave, "--out", out, "--max-frames", "5", "--no-video", "--quiet")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"posestream: error: {out / 'wave.jsonl'}: No space left on device"]
    assert json.loads((out / "results_wave.json").read_text())["instance_info"] == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_disk_in_live_is_one_line_naming_the_file(tmp_path, wave):
    out = tmp_path / "out"
    out.mkdir()
    (out / "wave.jsonl.part").symlink_to("/dev/full")
    config = tmp_path / "live.yaml"
    config.write_text("graph:\n  max_restarts: 0\n  detect_workers: 1\n")
    done = _subprocess("live", "--source", wave, "--out", out, "--max-frames", "5", "--no-video", "--config", config)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert f"posestream: error: {out / 'wave.jsonl'}: No space left on device" in done.stderr.splitlines()


def test_full_disk_when_an_output_is_finished_fails_the_run(tmp_path, capsys, wave, monkeypatch):
    """The last flush of a file failing (ENOSPC at close) is no success: status 2, the file named."""
    from posestream.stream.sinks import files

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.PredictionsJsonSink, "close", full)
    out = tmp_path / "out"
    code, err = _cli(capsys, "run", wave, "--out", out, "--max-frames", "3", "--no-video", "--quiet")
    assert code == 2
    assert err == [f"posestream: error: {out / 'results_wave.json'}: No space left on device"]
    assert len((out / "wave.jsonl").read_text().splitlines()) == 3  # the other output is kept


# --- config files -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "live"])
def test_invalid_yaml_is_one_line_with_its_place(tmp_path, capsys, wave, command):
    config = tmp_path / "bad.yaml"
    config.write_text("pipeline:\n  detector: [yolox-nano\n  pose: blazepose-full\n")
    source = [wave] if command == "run" else ["--source", wave]
    code, err = _cli(capsys, command, *source, "--out", tmp_path / "out", "--config", config)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"posestream: error: {config}: not valid YAML at line 3, column")


def test_unreadable_config_files(tmp_path, capsys, wave):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases = {binary: f"{binary}: not a YAML text file (not UTF-8)",
             tmp_path: f"{tmp_path}: cannot read the config file (Is a directory)",
             tmp_path / "none.yaml": f"no such config file: {tmp_path / 'none.yaml'}"}
    for config, message in cases.items():
        code, err = _cli(capsys, "run", wave, "--out", tmp_path / "out", "--config", config)
        assert (code, err) == (2, [f"posestream: error: {message}"])


@pytest.mark.parametrize("text, message", [
    ("lift:\n  enabled: 'false'", "lift.enabled: expected true or false, got 'false'"),
    ("sinks:\n  video: no way", "sinks.video: expected true or false"),
    ("pipeline:\n  det_score_threshold: .nan", "pipeline.det_score_threshold: expected a finite number"),
    ("pipeline:\n  det_score_threshold: 1.5", "pipeline.det_score_threshold: expected a number from 0 to 1, got 1.5"),
    ("pipeline:\n  pose_score_threshold: -0.1", "pipeline.pose_score_threshold: expected a number from 0 to 1"),
    ("pipeline:\n  max_people: 0", "pipeline.max_people: expected a number of at least 1, got 0"),
    ("pipeline:\n  threads: -2", "pipeline.threads: expected a number of at least 0"),
    ("pipeline:\n  device: gpu", "pipeline.device: expected one of auto, cpu, cuda, tensorrt, got 'gpu'"),
    ("tracking:\n  iou_threshold: -1", "tracking.iou_threshold: expected a number from 0 to 1, got -1"),
    ("tracking:\n  oks_threshold: .inf", "tracking.oks_threshold: expected a finite number"),
    ("tracking:\n  min_cutoff: 0", "tracking.min_cutoff: expected a number above 0, got 0"),
    ("tracking:\n  max_missing_seconds: -1.0", "tracking.max_missing_seconds: expected a number of at least 0"),
    ("tracking:\n  detect_interval: 0", "tracking.detect_interval: expected a number of at least 1, got 0"),
    ("classify:\n  keypoint_threshold: 2", "classify.keypoint_threshold: expected a number from 0 to 1"),
    ("classify:\n  posture_hold: -0.3", "classify.posture_hold: expected a number of at least 0"),
    ("classify:\n  sit_knee_angle: 200", "classify.sit_knee_angle: expected a number from 0 to 180"),
    ("classify:\n  max_thigh: .nan", "classify.max_thigh: expected a finite number"),
    ("classify:\n  knee_error_3d: 0", "classify.knee_error_3d: expected a number above 0, got 0"),
    ("classify:\n  knee_error_3d_ambiguous: -1", "classify.knee_error_3d_ambiguous: expected a number above 0, got -1"),
    ("tracking:\n  reid_appearance: 1.5", "tracking.reid_appearance: expected a number from 0 to 1, got 1.5"),
    ("tracking:\n  reid_scale: 0.5", "tracking.reid_scale: expected a number of at least 1, got 0.5"),
    ("classify:\n  forearm_rise_3d: 120", "classify.forearm_rise_3d: expected a number from -90 to 90, got 120"),
    ("classify:\n  stretched_leg_shank: 0", "classify.stretched_leg_shank: expected a number above 0, got 0"),
    ("classify:\n  legs_only_tilt: 95", "classify.legs_only_tilt: expected a number from 0 to 90, got 95"),
    ("graph:\n  heartbeat_timeout: 0", "graph.heartbeat_timeout: expected a number above 0, got 0"),
    ("graph:\n  heartbeat_timeout: 0.2", "graph.heartbeat_timeout: expected more than graph.heartbeat_interval (0.5 s)"),
    ("graph:\n  gap_timeout: -1", "graph.gap_timeout: expected a number above 0"),
    ("graph:\n  base_port: 70000", "graph.base_port: expected a number from 1 to 65535"),
    ("graph:\n  max_restarts: -1", "graph.max_restarts: expected a number of at least 0"),
    ("graph:\n  transport: udp", "graph.transport: expected 'ipc' or 'tcp', got 'udp'"),
    ("sinks:\n  pub: tcp://127.0.0.1", "sinks.pub: expected tcp://HOST:PORT with a port from 1 to 65535"),
    ("sinks:\n  pub: udp://127.0.0.1:5560", "sinks.pub: expected tcp://HOST:PORT or ipc://PATH"),
])
def test_config_values_are_checked_with_the_key_path(tmp_path, text, message):
    config = tmp_path / "settings.yaml"
    config.write_text(text + "\n")
    with pytest.raises(ValueError) as caught:
        RunConfig.from_yaml(config)
    assert str(caught.value).startswith(f"{config}: {message}")


def test_command_line_values_are_checked_like_the_file_s(tmp_path, capsys, wave):
    code, err = _cli(capsys, "run", wave, "--out", tmp_path / "out", "--det-threshold", "nan")
    assert (code, err) == (2, ["posestream: error: pipeline.det_score_threshold: expected a finite number, got nan (float)"])
    code, err = _cli(capsys, "live", "--source", wave, "--out", tmp_path / "out", "--workers", "0")
    assert (code, err) == (2, ["posestream: error: graph.detect_workers: expected a number of at least 1, got 0"])
    for command in (["run", wave], ["live", "--source", wave]):
        code, err = _cli(capsys, *command, "--out", tmp_path / "out", "--max-frames", "0")
        assert (code, err) == (2, ["posestream: error: --max-frames must be at least 1, got 0"])
    assert not (tmp_path / "out").exists()


def test_shipped_configs_pass_the_checks():
    configs = Path(__file__).resolve().parents[1] / "configs"
    for path in sorted(configs.glob("*.yaml")):
        RunConfig.from_yaml(path)


# --- Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_while_a_dataclass_is_built_exits_130_under_python_m(tmp_path, wave):
    """A Ctrl-C while the models' modules load arrives, as often as not, inside the ``exec`` of a
    string (dataclasses build their ``__init__`` so, numpy's f2py its helpers). CPython then marks
    the KeyboardInterrupt "unhandled" even though ``main`` catches it, and a ``python -m`` run
    ended by SIGINT (status -2) instead of 130 (seen in CI). Here the interrupt is raised inside
    that ``exec`` every time: a ``sitecustomize`` wraps ``exec`` and, at the first string exec
    once ``posestream.stream.config`` is being imported (a dataclass of it or of its imports),
    puts the builtin back and raises the interrupt inside a string exec."""
    (tmp_path / "sitecustomize.py").write_text(
        "import builtins, sys\n"
        "_exec = builtins.exec\n"
        "def _interrupting(source, *args, **kwargs):\n"
        "    if 'posestream.stream.config' in sys.modules:\n"
        "        builtins.exec = _exec\n"
        "        _exec('raise KeyboardInterrupt', {})\n"
        "    return _exec(source, *args, **kwargs)\n"
        "builtins.exec = _interrupting\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = _subprocess("live", "--source", wave, "--out", tmp_path / "out", env=env)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["posestream: interrupted"]


# --- POSESTREAM_HOME --------------------------------------------------------------------------


@pytest.mark.parametrize("home", ["file", "file/below"])
def test_bad_posestream_home_is_one_line_naming_it(tmp_path, capsys, monkeypatch, home):
    """A model to download with the cache on a file: one line naming POSESTREAM_HOME, and no
    download is tried."""
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("POSESTREAM_HOME", str(tmp_path / home))
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", "")

    def no_network(*args, **kwargs):
        raise AssertionError("a download was tried")

    monkeypatch.setattr("posestream.engines.zoo.download", no_network)
    code, err = _cli(capsys, "models", "--fetch", "yolox-nano")
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"posestream: error: POSESTREAM_HOME={tmp_path / home}: cannot use {tmp_path / home} "
                             "as the model cache (Not a directory)")


def test_bad_posestream_home_does_not_matter_when_the_models_are_found(tmp_path, monkeypatch):
    shared_file("models/yolox_nano.onnx")
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("POSESTREAM_HOME", str(tmp_path / "file"))
    RunConfig().check_models()  # found in POSESTREAM_MODEL_DIR: the cache is never needed


# --- the results PUB socket ------------------------------------------------------------------


def test_pub_address_in_use_is_one_line_before_any_stage_starts(tmp_path, capsys, wave):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        code, err = _cli(capsys, "live", "--source", wave, "--out", tmp_path / "out", "--pub", endpoint)
    assert (code, err) == (2, [f"posestream: error: sinks.pub: cannot bind {endpoint}: Address already in use"])
    assert not any((tmp_path / "out").iterdir())  # no stage ran


def test_the_pub_check_leaves_the_address_free():
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    SinkConfig(pub=endpoint).check_pub()
    context = zmq.Context()
    try:
        pub = context.socket(zmq.PUB)
        pub.bind(endpoint)  # at once: the check released it
        pub.close(linger=0)
    finally:
        context.term()


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5560", "tcp://*:5560", "tcp://192.168.1.20:5560",
                                      "tcp://[::]:5560", "tcp://eth0:5560", "tcp://myhost.example:5560"])
def test_pub_reachable_from_other_machines_needs_curve_or_insecure(tmp_path, capsys, wave, endpoint):
    code, err = _cli(capsys, "live", "--source", wave, "--out", tmp_path / "out", "--pub", endpoint)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"posestream: error: sinks.pub: {endpoint} can be reached from other machines")
    assert "graph.curve_keys" in err[0] and "--insecure" in err[0]
    config = tmp_path / "live.yaml"
    config.write_text(f"sinks:\n  pub: '{endpoint}'\n")
    with pytest.raises(ValueError, match="can be reached from other machines"):
        RunConfig.from_yaml(config)
    # allowed with CURVE keys or when the user says so
    assert RunConfig.from_dict({"sinks": {"pub": endpoint}, "graph": {"curve_keys": str(tmp_path)}}).sinks.pub == endpoint
    assert RunConfig.from_dict({"sinks": {"pub": endpoint, "insecure": True}}).sinks.insecure


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5560", "tcp://127.0.0.2:5560", "tcp://localhost:5560",
                                      "tcp://[::1]:5560", "tcp://lo:5560", "ipc:///tmp/posestream-results"])
def test_pub_on_this_host_only_needs_no_keys(endpoint):
    assert RunConfig.from_dict({"sinks": {"pub": endpoint}}).sinks.pub == endpoint


def test_insecure_flag_lets_a_network_pub_through_to_the_bind_check(tmp_path, capsys, wave):
    """With --insecure the address is accepted; 192.0.2.1 (TEST-NET-1) is on no interface here,
    which the bind check reports, still before any stage starts."""
    endpoint = "tcp://192.0.2.1:5560"
    code, err = _cli(capsys, "live", "--source", wave, "--out", tmp_path / "out", "--pub", endpoint, "--insecure")
    assert code == 2
    assert err == [f"posestream: error: sinks.pub: cannot bind {endpoint}: Cannot assign requested address"]


# --- run and live alike ----------------------------------------------------------------------


def _empty_mp4(path: Path) -> Path:
    """A valid MP4 with one H.264 video stream and no frame (the index written up front, so the
    track is there without samples)."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "empty_moov"}) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def test_a_video_without_frames_is_refused_by_run_and_live(tmp_path, capsys):
    video = _empty_mp4(tmp_path / "empty.mp4")
    with av.open(str(video)) as container:  # the input is what it claims: a video stream, no frames
        assert len(container.streams.video) == 1 and not list(container.decode(video=0))
    for command in (["run", video, "--quiet"], ["live", "--source", video]):
        code, err = _cli(capsys, *command, "--out", tmp_path / "out")
        assert (code, err) == (2, [f"posestream: error: {video} has no frames (its video stream is empty)"])
        assert not (tmp_path / "out").exists()  # refused before anything was made


def test_one_name_function_for_run_and_live():
    assert safe_name("vidéo ü") == "vidéo_ü"
    assert safe_name(unicodedata.normalize("NFD", "vidéo ü")) == "vidéo_ü"  # a macOS file name, decomposed
    assert safe_name("中文 视频") == "中文_视频" and safe_name("a/b:c") == "a_b_c" and safe_name("..") == "stream"
    assert len(safe_name("é" * 300).encode()) <= 200
    assert source_name("folder/vidéo ü.mp4") == "vidéo_ü" and source_name("rtsp://u:p@cam:554/a b") == "cam_554_a_b"


def test_non_ascii_and_duplicate_names_are_the_same_in_run_and_live(tmp_path, capsys, wave):
    """``vidéo ü.mp4`` gives ``vidéo_ü.*`` in both commands, with the same results; a second
    live source of the same name (another folder) gives ``vidéo_ü_2``."""
    accented = tmp_path / "vidéo ü.mp4"
    shutil.copy(wave, accented)
    (tmp_path / "other").mkdir()
    shutil.copy(wave, tmp_path / "other" / accented.name)
    assert VideoFileSource(accented).name == source_name(str(accented)) == "vidéo_ü"
    code, err = _cli(capsys, "run", accented, "--out", tmp_path / "run", "--max-frames", "5", "--no-video", "--quiet")
    assert code == 0, err
    live = _subprocess("live", "--source", accented, "--source", tmp_path / "other" / accented.name, "--workers", "1",
                       "--out", tmp_path / "live", "--max-frames", "5", "--no-video")
    assert live.returncode == 0, live.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results_vidéo_ü.json", "vidéo_ü.jsonl"]
    written = sorted(p.name for p in (tmp_path / "live").iterdir() if p.suffix in (".json", ".jsonl"))
    assert written == ["metrics.json", "results_vidéo_ü.json", "results_vidéo_ü_2.json", "vidéo_ü.jsonl", "vidéo_ü_2.jsonl"]
    for name in ("vidéo_ü.jsonl", "vidéo_ü_2.jsonl"):  # lossless: the results of posestream run
        assert (tmp_path / "live" / name).read_text() == (tmp_path / "run" / "vidéo_ü.jsonl").read_text()
