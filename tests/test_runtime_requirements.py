"""``requirements.txt`` alone runs the service: a fresh virtualenv with the runtime set (no test
or lint tools) serves ``/healthz`` under gunicorn with the repository's config, and a Celery
worker, beat and Flower start. A runtime import missing from the pins fails here, not in
production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.service_server import free_port

ROOT = Path(__file__).resolve().parent.parent
DEV_ONLY = ("pytest", "mypy", "ruff", "responses", "hypothesis", "schemathesis", "py-spy")


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
        ],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    return venv


@pytest.fixture
def runtime_env(tmp_path: Path) -> dict[str, str]:
    """The embedded default (SQLite and the SQLite broker) in a private instance directory."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {**keep, "ENV_FILE": os.devnull, "INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONUNBUFFERED": "1"}


class Process:
    """A server started from the runtime venv, its output in a file to wait on."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"{text!r} not seen (exit {self.popen.poll()}):\n{self.output()[-3000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._file.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Process]]:
    processes: list[Process] = []
    yield processes
    for process in processes:
        process.stop()


def test_the_runtime_set_holds_no_development_tool(runtime_venv: Path):
    listed = subprocess.run(
        [str(runtime_venv / "bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert not names & set(DEV_ONLY)
    assert {"flask", "celery", "gunicorn", "flower", "psycopg"} <= names


def test_the_runtime_set_serves_the_web_app_a_worker_beat_and_flower(runtime_venv, runtime_env, tmp_path, started):
    bin_dir = runtime_venv / "bin"
    upgrade = subprocess.run(
        [str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=runtime_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]

    port = free_port()
    web = Process(
        [
            str(bin_dir / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "wsgi:app",
        ],
        runtime_env,
        tmp_path / "web.log",
    )
    started.append(web)
    worker = Process(
        [str(bin_dir / "celery"), "-A", "celery_app", "worker", "--loglevel=INFO", "--pool=solo", "-n", "runtime@%h"],
        runtime_env,
        tmp_path / "worker.log",
    )
    started.append(worker)
    beat = Process(
        [str(bin_dir / "celery"), "-A", "celery_app", "beat", "--loglevel=INFO", f"--schedule={tmp_path / 'beat'}"],
        runtime_env,
        tmp_path / "beat.log",
    )
    started.append(beat)
    flower_port = free_port()
    flower = Process(
        [str(bin_dir / "celery"), "-A", "celery_app", "flower", "--address=127.0.0.1", f"--port={flower_port}"],
        runtime_env,
        tmp_path / "flower.log",
    )
    started.append(flower)

    deadline = time.monotonic() + 60
    health = None
    while time.monotonic() < deadline and web.popen.poll() is None:
        try:
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            break
        except requests.RequestException:  # not listening yet, or still loading the app
            time.sleep(0.2)
    assert health is not None and health.status_code == 200, web.output()[-3000:]
    assert requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5).status_code == 200

    worker.wait_for(" ready.")
    beat.wait_for("beat: Starting...")
    flower.wait_for("Visit me at")
    assert requests.get(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=5).text == "OK"
    for process in (web, worker, beat, flower):
        assert process.popen.poll() is None, process.output()[-3000:]
        assert "Traceback" not in process.output(), process.output()[-3000:]
