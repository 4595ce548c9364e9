"""A local image host on loopback (TEST and BENCH ONLY): serves ``{path: bytes}`` over real HTTP from a
thread and counts the requests per path. Used by bench/publish.py and the media end-to-end test.

    with ImageServer({"/a.png": png_bytes}) as images:
        images.url("/a.png")   # http://127.0.0.1:PORT/a.png
"""

from __future__ import annotations

import io
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def png(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_jpeg(seed: int, target_bytes: int) -> bytes:
    """A distinct JPEG of roughly ``target_bytes``: noise over a smooth gradient (noise keeps
    JPEG from compressing it away, so the size follows the area)."""
    rng = random.Random(seed)
    side = max(64, int((target_bytes / 0.37) ** 0.5))
    noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    base = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    image = Image.blend(base, noise, 0.5)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


class ImageServer:
    def __init__(self, files: dict[str, bytes], host: str = "127.0.0.1") -> None:
        self.files = dict(files)
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] += 1
                body = server.files.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
