"""A local stand-in for the Hugging Face Hub's HTTP API, enough for ``huggingface_hub.snapshot_download``:
repository info, the recursive file tree and ``resolve`` downloads of one folder's files, on
127.0.0.1 only. Point ``HF_ENDPOINT`` at :func:`serve`'s address (and set ``HF_HUB_DISABLE_XET``)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def serve(root: Path, repo: str, commit: str = "0" * 40) -> tuple[ThreadingHTTPServer, list[str]]:
    """Serve the files under ``root`` as model repository ``repo`` at ``commit``.

    Returns:
        (server, requested): the running server (call ``shutdown()``) and the list of file paths
        that were downloaded (GET of ``resolve``), in order.
    """
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _answer(self, head: bool):
            path = unquote(urlparse(self.path).path)
            api = f"/api/models/{repo}"
            resolve = f"/{repo}/resolve/"
            if path.startswith(api + "/tree/"):
                tree = [{"type": "file", "path": f, "size": (root / f).stat().st_size,
                         "oid": hashlib.sha1((root / f).read_bytes()).hexdigest()} for f in files]
                return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
            if path.startswith(api):
                info = {"id": repo, "modelId": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
            if path.startswith(resolve):
                name = path[len(resolve):].split("/", 1)[1]
                if name not in files:
                    return self._send(404, headers={"X-Error-Code": "EntryNotFound"}, head=head)
                data = (root / name).read_bytes()
                if not head:
                    requested.append(name)
                return self._send(200, data, {"X-Repo-Commit": commit,
                                              "ETag": '"' + hashlib.sha256(data).hexdigest() + '"'}, head)
            return self._send(404, head=head)

        def do_GET(self):
            self._answer(head=False)

        def do_HEAD(self):
            self._answer(head=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requested
