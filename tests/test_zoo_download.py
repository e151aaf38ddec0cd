"""Model resolution and the downloader, against a real HTTP server started in the test."""

import hashlib
import http.server
import threading
import zipfile
from dataclasses import replace

import pytest

from engines import zoo
from engines.download import download
from engines.errors import ModelHashError, ModelNotFoundError
from onnx_builders import rtmpose_like

import numpy as np

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append((self.path, self.headers.get("Range")))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.requests = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
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
    assert resolved.onnx_path.read_bytes() == onnx_bytes
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
    with pytest.raises(ModelNotFoundError, match="no download address"):
        zoo.resolve_model("blazepose-full")


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
