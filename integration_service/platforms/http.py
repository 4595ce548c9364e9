"""Outbound HTTP for platform clients: one pooled ``requests.Session`` with timeouts, retries for
idempotent requests on transient failures, a response-size cap, manual redirects checked hop by
hop against the SSRF rules, and errors mapped to the contract's connection-test stages.
The settings and response types are in ``http_types``, the guarded adapter and the error
mapping in ``http_adapter``.

Nothing here logs headers or bodies: requests carry credentials and sites may echo them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests

from .base import PlatformError
from .http_adapter import GuardedAdapter, NoCookies, map_request_exception
from .http_types import (
    TRANSIENT_STATUSES,
    BodySink,
    HttpResponse,
    HttpSettings,
    ResponseTooLarge,
    parse_retry_after,
)
from .politeness import gate_for, report_rate_limited
from .ssrf import DnsFailure, TargetRefused, check_url

# The types and the adapter live in their own modules; their names stay importable from here.
__all__ = [
    "TRANSIENT_STATUSES",
    "USER_AGENT",
    "BodySink",
    "GuardedAdapter",
    "HttpResponse",
    "HttpSettings",
    "HttpTransport",
    "ResponseTooLarge",
    "map_request_exception",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

SERVICE_VERSION = "0.1.0"
USER_AGENT = f"IGNY8-Integration-Service/{SERVICE_VERSION} (+https://igny8.com; WordPress connector)"
MAX_REDIRECTS = 5
# A Retry-After on these is the site asking for less load: every worker backs off (politeness.py).
SHARED_BACKOFF_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 64 * 1024
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


def _same_origin_or_upgrade(old_url: str, new_url: str) -> bool:
    """May credentials follow this redirect? Same scheme/host/port, or http→https on the same
    host with default ports (the common "force https" redirect)."""
    old, new = urlsplit(old_url), urlsplit(new_url)
    if (old.hostname or "").lower() != (new.hostname or "").lower():
        return False
    if old.scheme == new.scheme and old.port == new.port:
        return True
    return old.scheme == "http" and new.scheme == "https" and old.port in (None, 80) and new.port in (None, 443)


class HttpTransport:
    """One pooled session per platform client."""

    def __init__(self, settings: HttpSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._gate = gate_for(settings.politeness)
        self.session = requests.Session()
        # No proxies or .netrc from the environment: both would bypass the address checks
        # or add credentials the service did not choose.
        self.session.trust_env = False
        self.session.cookies.set_policy(NoCookies())
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json, */*;q=0.1"})
        self._adapter = GuardedAdapter(settings.allow_private, settings.pool_size)
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", self._adapter)
        self._watchdog: threading.Timer | None = None

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.session.close()

    def _arm_watchdog(self) -> None:
        """At the deadline, cut the connections still open (once per transport)."""
        deadline = self.settings.deadline
        if deadline is None or self._watchdog is not None:
            return
        self._watchdog = threading.Timer(deadline.remaining(), self._adapter.sockets.abort)
        self._watchdog.daemon = True
        self._watchdog.start()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        data: bytes | IO[bytes] | None = None,
        sink: BodySink | None = None,
    ) -> HttpResponse:
        """Send a request and read its body.

        ``secret_headers`` (credentials) are dropped on a redirect to another origin.  Retries
        happen only for idempotent methods (unless ``retry`` says otherwise) and only on
        transient failures; after the last attempt a transient status is returned to the caller.
        Raises PlatformError for network-level failures and refused addresses.
        ``data`` is a raw body (instead of ``json_body``); with ``sink`` the body is written
        there chunk by chunk (size cap and body deadline still apply) and ``content`` is empty.
        """
        method = method.upper()
        retryable = (method in IDEMPOTENT_METHODS) if retry is None else retry
        attempts = 1 + (self.settings.max_retries if retryable else 0)
        deadline = self.settings.deadline
        self._arm_watchdog()
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, url, params, json_body, headers, secret_headers, data, sink)
            except PlatformError as exc:
                if deadline is not None and deadline.expired:
                    # A timeout cut short by the budget is the budget's failure: say so.
                    raise deadline.error(url) from None
                if exc.transient and not last:
                    backoff = self._backoff(attempt)
                    if deadline is not None and not deadline.allows(backoff):
                        raise deadline.error(url) from None
                    self._wait(backoff, url, f"{exc.stage} error")
                    continue
                raise
            if deadline is not None and self._adapter.sockets.aborted:
                # Cut mid-answer: what was read (a partial status line parses as one) is not an answer.
                raise deadline.error(url)
            if response.status_code not in TRANSIENT_STATUSES:
                return response
            wait = parse_retry_after(response.headers.get("Retry-After"))
            shared = wait is not None and response.status_code in SHARED_BACKOFF_STATUSES
            if response.status_code == 429 or shared:
                # Every 429, and a 503 with Retry-After: the site asking for less load.
                report_rate_limited(self.settings.site_id)
            if shared:
                assert wait is not None
                self._gate.back_off(response.url, wait, response.status_code)
            if last or (wait is not None and wait > self.settings.max_retry_wait):
                return response
            pause = self._backoff(attempt) if wait is None else wait
            if deadline is not None and not deadline.allows(pause):
                return response  # no retry sleeps past the deadline
            if not shared:
                self._wait(pause, url, f"HTTP {response.status_code}")
            # A shared back-off is waited out by the gate before the next attempt (by every worker).
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        # Exponential with a little jitter so that parallel workers do not retry in lockstep.
        base = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
        return base * random.uniform(0.8, 1.0)

    def _wait(self, seconds: float, url: str, why: str) -> None:
        seconds = self.time_left(seconds)
        logger.info("retrying %s in %.1f s after %s", _loggable(url), seconds, why)
        self._sleep(seconds)

    def time_left(self, seconds: float) -> float:
        """``seconds`` cut to what the deadline leaves: every wait of this transport (timeouts,
        back-offs, a slot wait) goes through here."""
        deadline = self.settings.deadline
        return seconds if deadline is None else deadline.cap(seconds)

    def _timeouts(self) -> tuple[float, float]:
        return self.time_left(self.settings.connect_timeout), self.time_left(self.settings.read_timeout)

    def _check_deadline(self, url: str) -> None:
        if self.settings.deadline is not None:
            self.settings.deadline.check(url)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        secret_headers: Mapping[str, str] | None,
        data: bytes | IO[bytes] | None = None,
        sink: BodySink | None = None,
    ) -> HttpResponse:
        started = time.monotonic()
        redirects: list[str] = []
        current_method, current_url, current_params, body = method, url, params, json_body
        send_secrets = True
        for _hop in range(MAX_REDIRECTS + 1):
            self._check_deadline(current_url)
            try:
                check_url(current_url, self.settings.allow_private)
            except (TargetRefused, DnsFailure) as exc:
                raise map_request_exception(exc, current_url) from None
            merged = dict(headers or {})
            if send_secrets and secret_headers:
                merged.update(secret_headers)
            request = requests.Request(
                current_method, current_url, params=current_params, json=body, data=data, headers=merged
            )
            # One slot per hop (a redirect may lead to another site), held until the body is read.
            # The slot wait is cut to the deadline too (time_left), like every other wait.
            with self._gate.slot(current_url, self._sleep, self.time_left(self.settings.politeness.wait_seconds)):
                hop_started = time.monotonic()  # the body deadline starts once the slot is ours
                try:
                    prepared = self.session.prepare_request(request)
                    response = self.session.send(
                        prepared,
                        stream=True,
                        allow_redirects=False,
                        timeout=self._timeouts(),
                    )
                except (requests.RequestException, TargetRefused, DnsFailure) as exc:
                    raise map_request_exception(exc, current_url) from None
                location = response.headers.get("Location")
                redirected = response.status_code in REDIRECT_STATUSES and bool(location)
                if redirected:
                    response.close()
                else:
                    content = self._read_capped(response, current_url, hop_started, sink)
            if redirected:
                assert location is not None
                next_url = urljoin(prepared.url or current_url, location)
                redirects.append(next_url)
                if current_method not in IDEMPOTENT_METHODS and response.status_code not in (307, 308):
                    # Following would turn a write into a GET; better to say where the site went.
                    raise PlatformError(
                        f"The site redirected a {current_method} request to {_loggable(next_url)}; "
                        "update the site URL to the address it redirects to.",
                        stage="http",
                        status_code=response.status_code,
                    )
                if not _same_origin_or_upgrade(prepared.url or current_url, next_url):
                    send_secrets = False
                current_url, current_params = next_url, None
                if response.status_code == 303:
                    current_method, body, data = "GET", None, None
                continue
            logger.debug(
                "%s %s -> %s (%d bytes) in %d ms",
                current_method,
                _loggable(current_url),
                response.status_code,
                len(content),
                int((time.monotonic() - started) * 1000),
            )
            return HttpResponse(
                status_code=response.status_code,
                headers=response.headers,
                content=content,
                url=response.url or current_url,
                elapsed_ms=int((time.monotonic() - started) * 1000),
                redirects=redirects,
            )
        raise PlatformError(f"Too many redirects (more than {MAX_REDIRECTS}).", stage="http")

    def _read_capped(
        self, response: requests.Response, url: str, started: float, sink: BodySink | None = None
    ) -> bytes:
        limit = self.settings.max_response_bytes
        # A per-read timeout does not stop a server that drips bytes; bound the whole body too.
        deadline = started + self.settings.connect_timeout + 2 * self.settings.read_timeout
        if self.settings.deadline is not None:
            deadline = min(deadline, self.settings.deadline.expires_at)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise ResponseTooLarge(
                f"The response is larger than the limit of {limit} bytes ({declared} bytes announced).",
                stage="http",
                status_code=response.status_code,
            )
        chunks: list[bytes] = []
        total = 0
        if sink is not None:
            sink.reset()
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                total += len(chunk)
                if total > limit:
                    raise ResponseTooLarge(
                        f"The response is larger than the limit of {limit} bytes; stopped reading.",
                        stage="http",
                        status_code=response.status_code,
                    )
                if time.monotonic() > deadline:
                    self._check_deadline(url)
                    raise PlatformError(
                        f"{_loggable(url)} sent its answer too slowly.", stage="timeout", transient=True
                    )
                if sink is None:
                    chunks.append(chunk)
                else:
                    sink.write(chunk)
        except requests.RequestException as exc:
            raise map_request_exception(exc, url) from None
        finally:
            response.close()
        return b"".join(chunks)


def _loggable(url: str) -> str:
    """The URL without its query string (queries are not secret here, but can be long)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
