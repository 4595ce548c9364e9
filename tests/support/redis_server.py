"""A Redis server of the test's own, on a free loopback port, that the test may stop, kill and
start again (the machine's shared Redis on 6379 is never touched).

    server = RedisServer(tmp_path).start()
    server.url            # redis://127.0.0.1:<port>/0
    server.stop()         # SHUTDOWN SAVE: what it held comes back with start()
    server.kill()         # SIGKILL: nothing is saved; start() comes back empty (kill(lose_data=True))
    server.start()        # the same port again
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.e2e.service_server import free_port

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        command = [
            REDIS_SERVER,
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self.log()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """A clean shutdown that keeps the data (``SHUTDOWN SAVE``, as a service manager would)."""
        if self.process is None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port, socket_connect_timeout=1).shutdown(save=True)
        self._wait_gone()

    def kill(self, lose_data: bool = True) -> None:
        """SIGKILL: nothing is written; with ``lose_data`` the last dump goes too, so the server
        comes back empty (queues, bindings and leases gone), the worst a crash can do."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self._wait_gone()
        if lose_data:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "dump.rdb").unlink()

    def _wait_gone(self) -> None:
        assert self.process is not None
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None
        # The port is free again (nothing else listens there in between).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def close(self) -> None:
        self.kill(lose_data=True)
