"""`cli.py run --server URL`: a workflow with ComfyUI-only nodes runs on a ComfyUI server (here a small
fake speaking the same HTTP API on loopback) and its images are downloaded into the output folder."""
from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from PIL import Image

from test_workflows import load_cli

OBJECT_INFO = {
    "EmptyImage": {"input": {"required": {"width": ["INT", {"default": 512, "min": 1, "max": 8192}],
                                          "height": ["INT", {"default": 512, "min": 1, "max": 8192}]}},
                   "output": ["IMAGE"], "output_node": False, "category": "image"},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
                  "output": [], "output_node": True, "category": "image"},
}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body, kind="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/object_info":
                return self._send(200, OBJECT_INFO)
            if url.path.startswith("/history/"):
                return self._send(200, {"p1": {"status": {"status_str": "success", "messages": []}, "outputs": {
                    "2": {"images": [{"filename": "remote_00001_.png", "subfolder": "sub", "type": "output"}]}}}})
            if url.path == "/view":
                assert parse_qs(url.query)["filename"] == ["remote_00001_.png"]
                return self._send(200, _png(), "image/png")
            self._send(404, {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            if body["prompt"]["1"]["inputs"]["width"] > 8192:
                return self._send(400, {"error": {"message": "Prompt outputs failed validation"}, "node_errors": {
                    "1": {"class_type": "EmptyImage", "errors": [{"message": "Value bigger than max",
                                                                   "details": "width", "extra_info": {"input_name": "width"}}]}}})
            self._send(200, {"prompt_id": "p1", "number": 0, "node_errors": {}})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()


def _workflow(tmp_path, width=32):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({
        "1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 8}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "remote"}},
    }))
    return path


def test_without_server_the_comfyui_only_nodes_are_named(tmp_path, capsys):
    assert load_cli().main(["run", str(_workflow(tmp_path)), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "EmptyImage" in err and "--server" in err


def test_runs_on_the_server_and_downloads(server, tmp_path, capsys):
    url, received = server
    out = tmp_path / "out"
    code = load_cli().main(["run", str(_workflow(tmp_path)), "--server", url, "--output-dir", str(out),
                            "--set", "1.height=16"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "sub" / "remote_00001_.png")]
    assert Image.open(printed[0]).size == (4, 4)
    assert received[0]["prompt"]["1"]["inputs"]["height"] == 16  # --set applied before queueing


def test_server_refusal_names_the_node_and_input(server, tmp_path, capsys):
    url, _ = server
    # the server validates (here: refuses width 9000); its node_errors become one error naming node and input
    assert load_cli().main(["run", str(_workflow(tmp_path, width=9000)), "--server", url,
                            "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "node 1" in err and "width" in err
