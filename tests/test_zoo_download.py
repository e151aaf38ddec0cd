"""Model resolution and the downloader, against a real HTTP server started in the test
(127.0.0.1, a thread); no test reaches the internet."""

import hashlib
import http.server
import socket
import threading
import time
import zipfile
from dataclasses import replace

import pytest

from posestream.engines import zoo
from posestream.engines import download as download_module
from posestream.engines.download import download
from posestream.engines.errors import ModelError, ModelHashError, ModelNotFoundError
from onnx_builders import rtmpose_like

import numpy as np

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; ``mode`` makes it misbehave as real servers and networks do:

    * ``ignore_range``: answers every request 200 with the whole file;
    * ``refuse_range``: answers every ``Range`` request 416;
    * ``wrong_range``: answers a ``Range`` request 206 but from byte 0 (Content-Range says so);
    * ``truncate``: announces the full Content-Length but sends only ``cut`` bytes, then closes;
    * ``trickle``: sends 1 KiB every ``pause`` seconds;
    * ``hang``: accepts the connection and never answers.
    """

    files: dict[str, bytes] = {}
    requests: list[tuple[str, str | None]] = []
    mode: str = ""
    cut = 0
    pause = 0.05
    stop = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append((self.path, self.headers.get("Range")))
        if self.mode == "hang":
            self.stop.wait(10)
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        wanted = self.headers.get("Range") if self.mode != "ignore_range" else None
        start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
        if wanted and (self.mode == "refuse_range" or start >= len(body)):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if wanted and self.mode == "wrong_range":
            start = 0
        if wanted:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.mode == "truncate":
            self.wfile.write(body[start:start + self.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.mode == "trickle":
            for offset in range(start, len(body), 1024):
                if self.stop.is_set():
                    return
                try:
                    self.wfile.write(body[offset:offset + 1024])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(self.pause)
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.requests, _Handler.mode, _Handler.cut = {}, [], "", 0
    _Handler.stop = threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    _Handler.stop.set()
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_renames_atomically(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    dest = download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_corrupted_download_is_rejected_and_never_cached(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD[:-1] + b"\x00"
    with pytest.raises(ModelHashError, match="sha256"):
        download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_resumes_a_partial_file(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    (tmp_path / "m.onnx.part").write_bytes(PAYLOAD[:300_000])
    download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert handler.requests == [("/m.onnx", "bytes=300000-")]
    assert (tmp_path / "m.onnx").read_bytes() == PAYLOAD


def test_missing_url_is_a_clear_error(server, tmp_path):
    url, _ = server
    with pytest.raises(ModelNotFoundError, match="HTTP 404"):
        download(f"{url}/nothing.onnx", tmp_path / "x.onnx", progress=False)


def test_resolve_downloads_a_zoo_zip_into_the_cache_and_extracts_end2end(server, tmp_path, monkeypatch):
    url, handler = server
    onnx_bytes = rtmpose_like(np.zeros(17, int), np.zeros(17, int), np.ones(17), np.ones(17))
    archive = tmp_path / "sdk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rtmpose-x/end2end.onnx", onnx_bytes)
        zf.writestr("rtmpose-x/pipeline.json", "{}")
    handler.files["/rtmpose-x-0123abcd.zip"] = archive.read_bytes()
    spec = replace(zoo.MODELS["rtmpose-m"], name="rtmpose-x", filename="rtmpose-x-0123abcd.zip",
                   url=f"{url}/rtmpose-x-0123abcd.zip",
                   sha256=frozenset({hashlib.sha256(archive.read_bytes()).hexdigest()}),
                   member_sha256=frozenset({hashlib.sha256(onnx_bytes).hexdigest()}))
    monkeypatch.setitem(zoo.MODELS, "rtmpose-x", spec)
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path / "empty"))
    resolved = zoo.resolve_model("rtmpose-x", progress=False)
    assert resolved.path.read_bytes() == onnx_bytes and resolved.runtime == "onnxruntime"
    assert resolved.onnx_path == resolved.path
    assert (zoo.cache_dir() / "rtmpose-x-0123abcd.zip").is_file()
    # second time: found in the cache, no new request
    zoo.resolve_model("rtmpose-x", progress=False)
    assert len(handler.requests) == 1


def test_local_file_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "yolox_nano.onnx"
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelHashError, match="yolox-nano"):
        zoo.resolve_model("yolox-nano", download_missing=False)
    with pytest.raises(ModelHashError):  # also when named by path: the file name is a zoo file name
        zoo.resolve_model(str(bad))


def test_unknown_name_and_missing_model_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="neither a file nor a known model"):
        zoo.resolve_model("no-such-model")
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="downloads are off"):
        zoo.resolve_model("blazepose-full", download_missing=False)
    no_url = replace(zoo.MODELS["blazepose-full"], alternate=replace(zoo.MODELS["blazepose-full"].alternate, url=None))
    monkeypatch.setitem(zoo.MODELS, "blazepose-full", no_url)
    with pytest.raises(ModelNotFoundError, match="no download address") as err:
        zoo.resolve_model("blazepose-full")
    assert "blazepose_landmark_full.onnx or pose_landmark_full.tflite" in str(err.value)


def test_checkpoint_name_hash_prefix(tmp_path):
    data = b"weights"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    good = tmp_path / f"model-{prefix}.pth"
    good.write_bytes(data)
    zoo.verify_name_hash(good)
    bad = tmp_path / "model-00000000_20230504.pth"
    bad.write_bytes(data)
    with pytest.raises(ModelHashError, match="00000000"):
        zoo.verify_name_hash(bad)
    assert zoo.name_hash_prefix("rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.zip") is None


# --- download robustness -------------------------------------------------------------------------


def test_deadline_ends_a_trickling_download_and_keeps_the_part(server, tmp_path):
    """A server that keeps sending (so no socket timeout fires) is stopped by the overall deadline."""
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    handler.mode, handler.pause = "trickle", 0.02  # 1 MiB at 50 KiB/s: 20 s
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"did not finish within its 0\.5 s deadline") as err:
        download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False,
                 timeout=5.0, deadline=0.5)
    assert time.monotonic() - started < 2.0
    assert "POSESTREAM_MODEL_DIR" in str(err.value) and "\n" not in str(err.value)
    part = tmp_path / "m.onnx.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "m.onnx").exists()


def test_deadline_covers_a_server_that_never_answers(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    handler.mode = "hang"
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="deadline"):
        download(f"{url}/m.onnx", tmp_path / "m.onnx", progress=False, timeout=30.0, deadline=0.5)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("part_size", [len(PAYLOAD), len(PAYLOAD) + 10])
def test_416_to_a_resume_is_never_taken_as_a_complete_file(server, tmp_path, part_size):
    """A .part as long as (or longer than) the file but with other bytes: the server's 416 must
    not make it the model; the download restarts from zero and is verified."""
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    (tmp_path / "m.onnx.part").write_bytes(b"\xff" * part_size)
    dest = download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert handler.requests == [("/m.onnx", f"bytes={part_size}-"), ("/m.onnx", None)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_416_without_a_known_hash_also_restarts(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    handler.mode = "refuse_range"
    (tmp_path / "m.onnx.part").write_bytes(PAYLOAD[:1000])
    dest = download(f"{url}/m.onnx", tmp_path / "m.onnx", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert (tmp_path / "m.onnx.sha256").read_text().strip() == PAYLOAD_SHA


def test_a_verified_complete_part_needs_no_request(server, tmp_path):
    url, handler = server
    (tmp_path / "m.onnx.part").write_bytes(PAYLOAD)  # the previous run died just before the rename
    download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert handler.requests == [] and (tmp_path / "m.onnx").read_bytes() == PAYLOAD


@pytest.mark.parametrize("mode", ["ignore_range", "wrong_range"])
def test_a_server_that_ignores_or_botches_range_restarts_cleanly(server, tmp_path, mode):
    """200 to a Range request, or a 206 that does not start where the .part ends: the .part's
    bytes must not stay in front of the new ones."""
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    handler.mode = mode
    (tmp_path / "m.onnx.part").write_bytes(b"\xee" * 300_000)
    dest = download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert handler.requests == [("/m.onnx", "bytes=300000-")]


def test_truncated_body_is_an_error_and_the_part_resumes(server, tmp_path):
    """Content-Length larger than what is sent: an error (never a short file, even without a
    known hash, and never a hash error that deletes the .part); the next run resumes."""
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    handler.mode, handler.cut = "truncate", 400_000
    for accepted in (frozenset(), frozenset({PAYLOAD_SHA})):
        (tmp_path / "m.onnx.part").unlink(missing_ok=True)
        with pytest.raises(ModelNotFoundError, match="broke off after 400000 of 1048576 bytes"):
            download(f"{url}/m.onnx", tmp_path / "m.onnx", accepted, progress=False)
        assert (tmp_path / "m.onnx.part").read_bytes() == PAYLOAD[:400_000]
        assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.sha256").exists()
    with pytest.raises(ModelNotFoundError, match="broke off after 800000 of 1048576 bytes"):  # resumed, cut again
        download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    handler.mode = ""
    download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert handler.requests[-2:] == [("/m.onnx", "bytes=400000-"), ("/m.onnx", "bytes=800000-")]
    assert (tmp_path / "m.onnx").read_bytes() == PAYLOAD


def test_wrong_hash_after_a_resume_renames_nothing(server, tmp_path):
    url, handler = server
    handler.files["/m.onnx"] = PAYLOAD
    (tmp_path / "m.onnx.part").write_bytes(b"\x00" * 1000)  # same length as the file's head, other bytes
    with pytest.raises(ModelHashError, match="m.onnx"):
        download(f"{url}/m.onnx", tmp_path / "m.onnx", frozenset({PAYLOAD_SHA}), progress=False)
    assert list(tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_says_offline_and_where_to_put_the_file(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        download(f"http://127.0.0.1:{_closed_port()}/pose_landmark_full.tflite",
                 tmp_path / "pose_landmark_full.tflite", progress=False, timeout=5.0)
    message = str(err.value)
    assert "seems offline" in message and "POSESTREAM_MODEL_DIR" in message
    assert "pose_landmark_full.tflite" in message and "\n" not in message


def test_dns_failure_says_offline(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(ModelNotFoundError, match=r"cannot reach models\.example \(host name lookup failed.*"
                                                 r"seems offline.*POSESTREAM_MODEL_DIR"):
        download("https://models.example/x.onnx", tmp_path / "x.onnx", progress=False)


def test_offline_zoo_model_is_one_clear_line(tmp_path, monkeypatch):
    """What `posestream run` prints on a machine without network: no traceback (a ModelError
    with one line), the file to fetch and the folder variable."""
    spec = zoo.MODELS["blazepose-full"]
    offline = replace(spec, alternate=replace(spec.alternate, url=f"http://127.0.0.1:{_closed_port()}/p.tflite"))
    monkeypatch.setitem(zoo.MODELS, "blazepose-full", offline)
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(zoo, "_runtime_installed", lambda runtime: True)
    with pytest.raises(ModelNotFoundError, match="seems offline.*pose_landmark_full.tflite.*POSESTREAM_MODEL_DIR"):
        zoo.resolve_model("blazepose-full", progress=False)


# --- BlazePose: ONNX first, else MediaPipe's .tflite on LiteRT ----------------------------------

TFLITE_SHA = "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"


def test_blazepose_zoo_entry_points_at_mediapipes_public_tflite():
    alternate = zoo.MODELS["blazepose-full"].alternate
    assert alternate.url == "https://storage.googleapis.com/mediapipe-assets/pose_landmark_full.tflite"
    assert alternate.sha256 == {TFLITE_SHA} and alternate.runtime == "litert"
    assert "0.10.14" in zoo.MODELS["blazepose-full"].notes


def test_shared_tflite_is_mediapipes_file():
    from conftest import shared_file

    assert download_module.sha256_of(shared_file("models/blazepose_landmark_full.tflite")) == TFLITE_SHA


def test_blazepose_onnx_in_a_model_folder_wins(tmp_path, monkeypatch):
    from conftest import MODELS

    # the shared folder holds both files: the ONNX one is used, as before
    resolved = zoo.resolve_model("blazepose-full", download_missing=False)
    assert (resolved.path, resolved.runtime) == (MODELS / "blazepose_landmark_full.onnx", "onnxruntime")


@pytest.mark.parametrize("name", ["pose_landmark_full.tflite", "blazepose_landmark_full.tflite"])
def test_blazepose_tflite_in_a_model_folder_runs_on_litert(tmp_path, monkeypatch, name):
    from conftest import shared_file

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / name).symlink_to(shared_file("models/blazepose_landmark_full.tflite"))
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(folder))
    resolved = zoo.resolve_model("blazepose-full", download_missing=False)
    assert (resolved.path, resolved.runtime, resolved.spec.name) == (folder / name, "litert", "blazepose-full")
    with pytest.raises(ModelError, match="not an ONNX model"):
        resolved.onnx_path
    # an ONNX file in the cache still comes before a .tflite in a model folder
    (zoo.cache_dir()).mkdir(parents=True, exist_ok=True)
    (zoo.cache_dir() / "blazepose_landmark_full.onnx").symlink_to(shared_file("models/blazepose_landmark_full.onnx"))
    assert zoo.resolve_model("blazepose-full", download_missing=False).runtime == "onnxruntime"


def _fake_blazepose(monkeypatch, url: str, payload: bytes):
    spec = zoo.MODELS["blazepose-full"]
    fake = replace(spec, alternate=replace(spec.alternate, url=url, sha256=frozenset({hashlib.sha256(payload).hexdigest()})))
    monkeypatch.setitem(zoo.MODELS, "blazepose-full", fake)
    monkeypatch.setattr(zoo, "_runtime_installed", lambda runtime: True)


def test_blazepose_tflite_is_downloaded_verified_and_then_found_in_the_cache(server, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/pose_landmark_full.tflite"] = PAYLOAD
    _fake_blazepose(monkeypatch, f"{url}/pose_landmark_full.tflite", PAYLOAD)
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path / "empty"))
    lines = {line.split()[0]: line for line in zoo.describe_models(check_hashes=False)}
    assert "will be downloaded from" in lines["blazepose-full"] and lines["blazepose-full"].endswith("(litert)")
    resolved = zoo.resolve_model("blazepose-full", progress=False)
    assert resolved.path == zoo.cache_dir() / "pose_landmark_full.tflite" and resolved.runtime == "litert"
    assert resolved.path.read_bytes() == PAYLOAD
    assert zoo.resolve_model("blazepose-full", progress=False).path == resolved.path
    assert len(handler.requests) == 1
    lines = {line.split()[0]: line for line in zoo.describe_models()}
    assert f"found {resolved.path} (litert)" in lines["blazepose-full"]


def test_blazepose_tflite_download_with_wrong_hash_is_never_cached(server, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/pose_landmark_full.tflite"] = PAYLOAD[::-1]
    _fake_blazepose(monkeypatch, f"{url}/pose_landmark_full.tflite", PAYLOAD)
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelHashError, match="pose_landmark_full.tflite"):
        zoo.resolve_model("blazepose-full", progress=False)
    assert not zoo.cache_dir().exists() or not any(zoo.cache_dir().iterdir())


def test_hash_is_checked_on_every_use_not_only_on_download(server, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/pose_landmark_full.tflite"] = PAYLOAD
    _fake_blazepose(monkeypatch, f"{url}/pose_landmark_full.tflite", PAYLOAD)
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path / "empty"))
    path = zoo.resolve_model("blazepose-full", progress=False).path
    path.write_bytes(PAYLOAD[:-1] + b"!")  # changed in the cache after the download
    with pytest.raises(ModelHashError, match="blazepose-full"):
        zoo.resolve_model("blazepose-full", progress=False)
    lines = {line.split()[0]: line for line in zoo.describe_models()}
    assert "sha256 MISMATCH" in lines["blazepose-full"]


def test_no_tflite_download_without_litert(tmp_path, monkeypatch):
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(zoo, "_runtime_installed", lambda runtime: False)
    with pytest.raises(ModelNotFoundError, match=r"needs LiteRT \(pip install ai-edge-litert\)"):
        zoo.resolve_model("blazepose-full")
    lines = {line.split()[0]: line for line in zoo.describe_models()}
    assert "missing:" in lines["blazepose-full"] and "ai-edge-litert" in lines["blazepose-full"]


def test_explicit_tflite_path(tmp_path):
    from conftest import shared_file

    own = tmp_path / "my_pose.tflite"
    own.symlink_to(shared_file("models/blazepose_landmark_full.tflite"))
    resolved = zoo.resolve_model(str(own))
    assert (resolved.runtime, resolved.spec) == ("litert", None)
    named = tmp_path / "pose_landmark_full.tflite"  # a zoo file name: its hash is checked
    named.symlink_to(shared_file("models/blazepose_landmark_full.tflite"))
    resolved = zoo.resolve_model(str(named))
    assert (resolved.runtime, resolved.spec.name) == ("litert", "blazepose-full")
    bad = tmp_path / "other" / "pose_landmark_full.tflite"
    bad.parent.mkdir()
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelHashError):
        zoo.resolve_model(str(bad))


def test_describe_models_says_found_and_where(tmp_path, monkeypatch):
    from conftest import MODELS

    lines = zoo.describe_models()
    assert len(lines) == len(zoo.MODELS)
    by_name = {line.split()[0]: line for line in lines}
    assert by_name["yolox-nano"].endswith(f"found {MODELS / 'yolox_nano.onnx'} (onnxruntime)")
    assert by_name["blazepose-full"].endswith(f"found {MODELS / 'blazepose_landmark_full.onnx'} (onnxruntime)")
    assert "will be downloaded from https://download.openmmlab.com/" in by_name["rtmpose-m"]
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(tmp_path))
    bad = tmp_path / "yolox_nano.onnx"
    bad.write_bytes(b"x")
    by_name = {line.split()[0]: line for line in zoo.describe_models()}
    assert "sha256 MISMATCH" in by_name["yolox-nano"]
