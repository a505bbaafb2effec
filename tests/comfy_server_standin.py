"""A stand-in ComfyUI server on loopback that speaks the HTTP API the pack uses (GET /object_info, POST /prompt,
GET /history/<id>, GET /view, POST /queue and /interrupt) and "runs" a tiny graph: ``EmptyImage`` (width, height,
color as 0xRRGGBB) -> ``SaveImage``. Prompts run one at a time in queue order, as ComfyUI runs them; a
finished one's picture carries the ``prompt`` / ``workflow`` text chunks, as ComfyUI's SaveImage writes them.

``StandInServer(die_after=n)`` accepts its n-th prompt and then stops answering (the socket closes) before that
prompt finishes: a server lost in the middle of a job.
"""
from __future__ import annotations

import io
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlparse

from PIL import Image
from PIL.PngImagePlugin import PngInfo

OBJECT_INFO = {
    "EmptyImage": {"input": {"required": {
        "width": ["INT", {"default": 512, "min": 1, "max": 8192}],
        "height": ["INT", {"default": 512, "min": 1, "max": 8192}],
        "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
        "color": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFF}]}},
        "output": ["IMAGE"], "output_node": False, "category": "image", "display_name": "EmptyImage"},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
                  "output": [], "output_node": True, "category": "image", "display_name": "Save Image"},
}


def api_workflow(width: int = 8, color: int = 0x336699) -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 4, "batch_size": 1, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "standin"}}}


def render(prompt: dict, extra: dict) -> list:
    """(filename, PNG bytes) of each SaveImage of ``prompt``: a solid picture of the EmptyImage's size and color."""
    out = []
    for node in prompt.values():
        if node["class_type"] != "SaveImage":
            continue
        source = prompt[node["inputs"]["images"][0]]["inputs"]
        color = int(source["color"])
        picture = Image.new("RGB", (int(source["width"]), int(source["height"])),
                            (color >> 16 & 255, color >> 8 & 255, color & 255))
        info = PngInfo()
        info.add_text("prompt", json.dumps(prompt))
        if extra.get("workflow") is not None:
            info.add_text("workflow", json.dumps(extra["workflow"]))
        buf = io.BytesIO()
        picture.save(buf, format="PNG", pnginfo=info)
        out.append(buf.getvalue())
    return out


class StandInServer:
    """One stand-in server; ``url``, ``ran`` (prompts it finished, in order), ``cancelled`` (ids deleted or
    interrupted), ``stop()``."""

    def __init__(self, die_after: Optional[int] = None, seconds_per_prompt=0.05):
        """``seconds_per_prompt``: how long each prompt runs, or a sequence (the k-th prompt's time; the last
        value for every later one)."""
        self.die_after, self.seconds = die_after, seconds_per_prompt
        self.accepted, self.ran, self.cancelled = 0, [], []
        self.history: dict = {}
        self.files: dict = {}
        self.work: "queue.Queue" = queue.Queue()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._threads = [threading.Thread(target=self.httpd.serve_forever, daemon=True),
                         threading.Thread(target=self._run_queue, daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            httpd, self.httpd = self.httpd, None
            httpd.shutdown()
            httpd.server_close()
            self.work.put(None)

    def _run_queue(self) -> None:
        while True:
            item = self.work.get()
            if item is None or self.httpd is None:
                return
            prompt_id, prompt, extra = item
            delays = self.seconds if isinstance(self.seconds, (tuple, list)) else (self.seconds,)
            delay = delays[min(len(self.ran), len(delays) - 1)]  # the k-th prompt's time (the last one for the rest)
            until = time.monotonic() + delay
            while time.monotonic() < until and prompt_id not in self.cancelled and self.httpd is not None:
                time.sleep(0.01)  # a cancelled prompt or a stopped server ends the wait at once
            if prompt_id in self.cancelled or self.httpd is None:
                continue
            images = []
            for n, data in enumerate(render(prompt, extra)):
                name = f"{prompt_id}_{n:05d}_.png"
                self.files[name] = data
                images.append({"filename": name, "subfolder": "", "type": "output"})
            self.ran.append(prompt)
            self.history[prompt_id] = {"status": {"status_str": "success", "messages": []},
                                       "outputs": {"2": {"images": images}}}

    def _handler(self):
        server = self

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
                    prompt_id = url.path.rsplit("/", 1)[1]
                    entry = server.history.get(prompt_id)
                    return self._send(200, {prompt_id: entry} if entry else {})
                if url.path == "/view":
                    name = parse_qs(url.query)["filename"][0]
                    return self._send(200, server.files[name], "image/png")
                self._send(404, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                if self.path == "/prompt":
                    server.accepted += 1
                    prompt_id = f"p{server.accepted}-{id(server) % 10000}"
                    server.work.put((prompt_id, body["prompt"], body.get("extra_pnginfo") or {}))
                    self._send(200, {"prompt_id": prompt_id, "number": server.accepted, "node_errors": {}})
                    if server.die_after is not None and server.accepted >= server.die_after:
                        threading.Thread(target=server.stop, daemon=True).start()
                    return
                if self.path == "/queue":
                    server.cancelled.extend(body.get("delete", []))
                elif self.path == "/interrupt":
                    server.cancelled.append(body.get("prompt_id"))
                self._send(200, {})

        return Handler
