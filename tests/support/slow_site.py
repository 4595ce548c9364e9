"""A slow fault site on loopback: a real socket server that accepts connections and then stalls
(never answers) or trickles its answer a byte at a time, for deadline tests.

    with SlowSite("stall") as site:       # site.url = "http://127.0.0.1:<port>/"
        ...
    site.connections                       # how many connections it accepted
"""

from __future__ import annotations

import contextlib
import socket
import threading

BODY = b'{"name": "Slow Blog", "namespaces": ["wp/v2"]}'
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)


class SlowSite:
    """``mode``: ``stall`` (read the request, never answer), ``trickle`` (answer one byte every
    ``interval`` seconds, headers and body), ``trickle_body`` (headers at once, then the body
    one byte every ``interval``)."""

    def __init__(self, mode: str = "stall", interval: float = 0.2) -> None:
        self.mode = mode
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SlowSite:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            conn.settimeout(0.2)
            with contextlib.suppress(OSError):
                conn.recv(65536)  # the request (small GETs fit in one read)
            if self.mode == "stall":
                payload = b""
            elif self.mode == "trickle_body":
                with contextlib.suppress(OSError):
                    conn.sendall(HEADERS)
                payload = BODY
            else:
                payload = HEADERS + BODY
            for index in range(len(payload)):
                if self._stop.wait(self.interval):
                    return
                try:
                    conn.sendall(payload[index : index + 1])
                except OSError:
                    return
            self._stop.wait()
