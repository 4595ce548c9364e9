"""The service as real processes for the outage tests (issue 20): gunicorn with the repository's
gunicorn.conf.py, a Celery worker (the default layout: threads pool, every queue) and celery beat, on a database
and a Redis the test names, plus a small requests-based client that speaks the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from tests.api.test_webhooks import signed_headers
from tests.e2e.service_server import ServiceServer
from tests.support.live_worker import Worker, spawn_celery

BASE = "/api/v1/integration/integrations"
CONTENT = "/api/v1/writer/content/"
STATUS_WEBHOOK = "/api/v1/integration/webhooks/wordpress/status/"
TOKEN = "/api/v1/auth/token/"


class Stack:
    def __init__(self, app: Flask, database_url: str, redis_url: str, tmp_path: Path, **env: str) -> None:
        self.app, self.database_url, self.redis_url, self.tmp_path = app, database_url, redis_url, tmp_path
        self.env = {
            "SYNC_HEARTBEAT_SECONDS": "1",
            "SYNC_RECOVERY_INTERVAL_SECONDS": "2",
            "SCHEDULER_TICK_SECONDS": "1",
            "WP_SLOT_WAIT_SECONDS": "5",
            "RATELIMIT_STORAGE_RETRY_SECONDS": "1",
            "METRICS_FLUSH_SECONDS": "0.5",
            **env,
        }
        self.web = ServiceServer(
            database_url,
            redis_url,
            secret_key=app.config["SECRET_KEY"],
            encryption_keys=app.config["ENCRYPTION_KEYS"],
            extra_env=self.env,
        )
        self.worker: Worker | None = None
        self.beat: Worker | None = None

    def start(self) -> Stack:
        self.worker = spawn_celery(
            self.app,
            self.database_url,
            self.redis_url,
            self.tmp_path,
            "worker.log",
            ["worker", "-Q", "sync,short", "--concurrency=2", "--loglevel=INFO", "-n", f"outage-{self.web.port}@%h"],
            **self.env,
        )
        self.beat = spawn_celery(
            self.app,
            self.database_url,
            self.redis_url,
            self.tmp_path,
            "beat.log",
            ["beat", "-s", str(self.tmp_path / "beat-schedule"), "--loglevel=INFO"],
            **self.env,
        )
        self.web.start_web()  # meanwhile the worker starts
        self.worker.wait_ready()
        return self

    def stop(self) -> None:
        self.web.stop()
        for process in (self.worker, self.beat):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        parts = [self.web.logs()]
        for name, process in (("worker", self.worker), ("beat", self.beat)):
            if process is not None:
                parts.append(f"--- {name}.log ---\n{process.log()[-4000:]}")
        return "\n".join(parts)

    def alive(self) -> dict[str, bool]:
        return {
            "web": self.web.web is not None and self.web.web.poll() is None,
            "worker": self.worker is not None and self.worker.process.poll() is None,
            "beat": self.beat is not None and self.beat.process.poll() is None,
        }


class Api:
    """requests against the stack's gunicorn, as a bearer token or a site key."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.session = requests.Session()

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.session.request(method, self.url + path, json=json, headers=headers, timeout=20, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PATCH", path, json, **kwargs)

    def deliver(self, api_key: str, payload: dict[str, Any]) -> requests.Response:
        """A webhook delivery signed as the plugin signs it."""
        import json as json_module

        body = json_module.dumps(payload, separators=(",", ":")).encode()
        return self.session.post(
            self.url + STATUS_WEBHOOK, data=body, headers=signed_headers(api_key, body), timeout=20
        )


def wait_for(what: Callable[[], Any], timeout: float, message: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


def sync_and_wait(api: Api, integration_id: int, timeout: float, body: dict[str, Any] | None = None) -> dict:
    """POST a sync (retried while it answers 503: the queue or database is coming back) and wait
    for its job to end; returns the job's final SyncEvent as ``sync_status`` shows it."""
    deadline = time.monotonic() + timeout
    started = None
    while time.monotonic() < deadline:
        response = api.post(f"{BASE}/{integration_id}/sync/", body or {"direction": "from_external"})
        if response.status_code == 202:
            started = response.json()
            break
        assert response.status_code == 503, (response.status_code, response.text)
        time.sleep(0.3)
    assert started is not None, "the sync was never accepted"
    while time.monotonic() < deadline:
        status = api.get(f"{BASE}/{integration_id}/sync_status/").json()
        event = next((e for e in status["recent_events"] if e["id"] == started["sync_event_id"]), None)
        if status["current_job"] is None and event is not None:
            return event
        time.sleep(0.2)
    raise AssertionError(f"the sync {started} did not end in {timeout} s")
