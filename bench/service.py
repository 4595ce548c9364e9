"""Driving the service over HTTP the way its users do: create an integration, start a sync,
poll ``sync_status`` until the job is over. Also samples the Celery worker's memory and, on
request, profiles it with py-spy while a job runs."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import common
from .common import VENV_BIN, log

FINAL = ("success", "partial", "failed")


def create_integration(
    base: str,
    tenant: common.Tenant,
    site_index: int,
    wp_url: str,
    wp_user: str,
    app_password: str,
    post_types: list[str],
) -> int:
    site = tenant.sites[site_index]
    resp = requests.post(
        f"{base}/api/v1/integration/integrations/",
        json={
            "site_id": site["id"],
            "platform": "wordpress",
            "config_json": {"site_url": wp_url, "sync_post_types": post_types},
            "credentials_json": {"api_key": site["api_key"], "username": wp_user, "app_password": app_password},
        },
        headers=tenant.auth,
        timeout=30,
    )
    if resp.status_code != 201:
        raise RuntimeError(f"creating the integration answered {resp.status_code}: {resp.text[:500]}")
    return int(resp.json()["id"])


@dataclass
class SyncRun:
    seconds: float  # from POST sync to the poll that saw the job finished
    job_seconds: float | None  # the job's own started_at -> finished_at
    queue_seconds: float | None  # POST -> started_at (queue and worker pick-up)
    status: str
    details: dict[str, Any]
    error: str | None
    polls: int


def _parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    from integration_service.timeutil import parse_iso

    parsed = parse_iso(value)
    return parsed.timestamp() if parsed is not None else None


def run_sync(
    base: str,
    tenant: common.Tenant,
    integration_id: int,
    direction: str,
    full: bool,
    poll_interval: float | None = None,
    timeout: float = 900,
) -> SyncRun:
    session = requests.Session()
    session.headers.update(tenant.auth)
    url = f"{base}/api/v1/integration/integrations/{integration_id}"
    posted_at = time.time()
    t0 = time.monotonic()
    resp = session.post(f"{url}/sync/", json={"direction": direction, "full": full}, timeout=30)
    if resp.status_code != 202:
        raise RuntimeError(f"POST sync answered {resp.status_code}: {resp.text[:500]}")
    event_id = resp.json()["sync_event_id"]
    polls = 0
    while True:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"sync {event_id} did not finish within {timeout:.0f}s")
        status = session.get(f"{url}/sync_status/", timeout=30)
        polls += 1
        if status.status_code != 200:
            raise RuntimeError(f"sync_status answered {status.status_code}: {status.text[:500]}")
        body = status.json()
        current = body.get("current_job")
        event = next((e for e in body.get("recent_events") or [] if e.get("id") == event_id), None)
        if (current is None or current.get("sync_event_id") != event_id) and event and event["status"] in FINAL:
            seconds = time.monotonic() - t0
            break
        # Default: every 0.1 s for the first 3 s (short jobs are timed finely), then every 0.25 s
        # (each poll costs the web workers CPU that the job on this small machine would miss).
        if poll_interval is not None:
            time.sleep(poll_interval)
        else:
            time.sleep(0.1 if time.monotonic() - t0 < 3 else 0.25)
    started, finished = _parse_ts(event.get("started_at")), _parse_ts(event.get("finished_at"))
    return SyncRun(
        seconds=seconds,
        job_seconds=(finished - started) if started and finished else None,
        queue_seconds=(started - posted_at) if started else None,
        status=event["status"],
        details=event.get("details") or {},
        error=event.get("error_message"),
        polls=polls,
    )


@dataclass
class RssSampler:
    """Samples the RSS of a process tree (the Celery master and its pool children)."""

    pid: int
    interval: float = 0.05
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            total, biggest = common.tree_rss(self.pid)
            self.samples.append((time.monotonic(), total, biggest))
            self._stop.wait(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        mb = 2**20
        return {
            "samples": len(self.samples),
            "start_tree_mb": self.samples[0][1] / mb,
            "peak_tree_mb": max(s[1] for s in self.samples) / mb,
            "start_largest_process_mb": self.samples[0][2] / mb,
            "peak_largest_process_mb": max(s[2] for s in self.samples) / mb,
        }


class PySpy:
    """py-spy attached to the worker's process tree while a job runs (non-blocking sampling:
    the worker is never paused). Writes a raw collapsed-stack file and a flame graph SVG."""

    def __init__(self, pid: int, raw_path: Path, svg_path: Path, rate: int = 100, idle: bool = False) -> None:
        self.procs: list[subprocess.Popen] = []
        self.paths = (raw_path, svg_path)
        # The raw file samples waiting threads too when ``idle`` (a wall-clock view: where the job
        # waits, on WordPress or PostgreSQL); the flame graph shows CPU only.
        for fmt, path, extra in (("raw", raw_path, ["--idle"] if idle else []), ("flamegraph", svg_path, [])):
            self.procs.append(
                subprocess.Popen(
                    [
                        str(VENV_BIN / "py-spy"),
                        "record",
                        "--pid",
                        str(pid),
                        "--subprocesses",
                        "--nonblocking",
                        "--rate",
                        str(rate),
                        "--format",
                        fmt,
                        "-o",
                        str(path),
                        *extra,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )
        time.sleep(1.0)  # let py-spy attach before the job starts

    def stop(self) -> list[str]:
        errors = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for proc in self.procs:
            try:
                _out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
            if proc.returncode not in (0, None) and err:
                errors.append(err.decode(errors="replace")[-500:])
        missing = [str(p) for p in self.paths if not p.exists()]
        if missing:
            log(f"py-spy wrote no output ({missing}): {errors}")
        return errors
