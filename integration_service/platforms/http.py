"""Outbound HTTP for platform clients: one pooled ``requests.Session`` with timeouts, retries for
idempotent requests on transient failures, a response-size cap, manual redirects checked hop by
hop against the SSRF rules, and errors mapped to the contract's connection-test stages.

Nothing here logs headers or bodies: requests carry credentials and sites may echo them.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.cookiejar
import json
import logging
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import NameResolutionError

from .base import PlatformError
from .deadline import Deadline
from .politeness import PolitenessSettings, gate_for, report_rate_limited
from .ssrf import DnsFailure, TargetRefused, check_url, guarded_pool_classes

logger = logging.getLogger(__name__)

SERVICE_VERSION = "0.1.0"
USER_AGENT = f"IGNY8-Integration-Service/{SERVICE_VERSION} (+https://igny8.com; WordPress connector)"
MAX_REDIRECTS = 5
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# A Retry-After on these is the site asking for less load: every worker backs off (politeness.py).
SHARED_BACKOFF_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 64 * 1024
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


class ResponseTooLarge(PlatformError):
    """The body is over ``max_response_bytes`` (announced or read)."""


class BodySink(Protocol):
    """Where a streamed body goes instead of memory (``request(sink=...)``): ``reset`` before
    each attempt, then ``write`` per chunk; ``write`` may raise PlatformError to stop reading."""

    def reset(self) -> None: ...

    def write(self, chunk: bytes) -> object: ...


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 3
    max_response_bytes: int = 20 * 1024 * 1024
    allow_private: bool = False
    pool_size: int = 4
    # A Retry-After longer than this is not slept through: the error goes to the caller
    # (a sync job can be rescheduled; a request thread should not block for minutes).
    max_retry_wait: float = 30.0
    # One budget for everything this transport does (a connection test): every timeout and
    # wait below is cut to the time left, and a request past it fails with stage ``timeout``.
    deadline: Deadline | None = None
    # Per-site limits shared by every client in the process, and through Redis by every worker.
    politeness: PolitenessSettings = field(default_factory=PolitenessSettings)
    # Whose site this client talks to (``client_for`` sets it): the label of the rate-limit
    # metric. Limits stay keyed by host:port; the metric must not carry a customer's host.
    site_id: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpSettings:
        """The settings declared in ``config.Config`` (an app's ``app.config``)."""
        politeness = PolitenessSettings.from_config(config)
        return cls(
            connect_timeout=float(config["WP_CONNECT_TIMEOUT"]),
            read_timeout=float(config["WP_READ_TIMEOUT"]),
            max_retries=int(config["WP_MAX_RETRIES"]),
            max_response_bytes=int(config["WP_MAX_RESPONSE_BYTES"]),
            allow_private=bool(config["ALLOW_PRIVATE_TARGETS"]),
            pool_size=politeness.concurrency,
            max_retry_wait=float(config["WP_MAX_RETRY_WAIT"]),
            politeness=politeness,
        )


@dataclass
class HttpResponse:
    """A fully read (size-capped) response."""

    status_code: int
    headers: CaseInsensitiveDict
    content: bytes
    url: str  # the final URL, after redirects
    elapsed_ms: int
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The parsed JSON body; ``ValueError`` when it is not JSON."""
        if not self.content:
            raise ValueError("empty body")
        text = self.content.decode("utf-8-sig", errors="replace")
        return json.loads(text)

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None

    def text(self, limit: int | None = None) -> str:
        data = self.content if limit is None else self.content[:limit]
        return data.decode("utf-8", errors="replace")


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The client is stateless: a cookie set by a site is never sent back (WordPress would
    otherwise treat a cookie-authenticated request without a nonce as anonymous)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class _SocketRegistry:
    """The sockets an adapter opened, so that a deadline can cut them all at once: a timeout
    bounds each read, not a site that trickles a byte per second (headers or body)."""

    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._aborted = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            aborted = self._aborted
        if aborted:
            _shutdown(sock)

    @property
    def aborted(self) -> bool:
        return self._aborted

    def abort(self) -> None:
        """Shut every socket down (a blocked read returns at once); later ones are shut on open."""
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _tracking_pool(pool_class: Any, registry: _SocketRegistry) -> type:
    class TrackingConnection(pool_class.ConnectionCls):  # type: ignore[misc, name-defined]
        def connect(self) -> None:
            super().connect()
            if self.sock is not None:
                registry.add(self.sock)

    class TrackingPool(pool_class):  # type: ignore[misc, valid-type]
        ConnectionCls = TrackingConnection

    return TrackingPool


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections resolve and check the target address when they open."""

    def __init__(self, allow_private: bool, pool_size: int) -> None:
        self._allow_private = allow_private
        self.sockets = _SocketRegistry()
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        registry = self.__dict__.setdefault("sockets", _SocketRegistry())  # also after unpickling
        self.poolmanager.pool_classes_by_scheme = {
            scheme: _tracking_pool(pool_class, registry)
            for scheme, pool_class in guarded_pool_classes(self._allow_private).items()
        }

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_allow_private"] = self._allow_private
        return state


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _same_origin_or_upgrade(old_url: str, new_url: str) -> bool:
    """May credentials follow this redirect? Same scheme/host/port, or http→https on the same
    host with default ports (the common "force https" redirect)."""
    old, new = urlsplit(old_url), urlsplit(new_url)
    if (old.hostname or "").lower() != (new.hostname or "").lower():
        return False
    if old.scheme == new.scheme and old.port == new.port:
        return True
    return old.scheme == "http" and new.scheme == "https" and old.port in (None, 80) and new.port in (None, 443)


def _exception_chain(exc: BaseException):
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(current, attr, None)
            if isinstance(nxt, BaseException):
                current = nxt
                break
        else:
            # requests wraps urllib3 errors in args[0]
            nxt = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
            current = nxt


def map_request_exception(exc: BaseException, url: str) -> PlatformError:
    """Translate a requests/urllib3/socket error into a PlatformError with its stage."""
    host = urlsplit(url).hostname or url
    for item in _exception_chain(exc):
        if isinstance(item, TargetRefused):
            return PlatformError(str(item), stage="connect")
        if isinstance(item, DnsFailure):
            return PlatformError(str(item), stage="dns", transient=item.temporary)
        if isinstance(item, NameResolutionError | socket.gaierror):
            return PlatformError(f"The host name {host} could not be resolved.", stage="dns")
    if isinstance(exc, requests.exceptions.SSLError):
        return PlatformError(f"The TLS handshake with {host} failed (certificate or protocol error).", stage="tls")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return PlatformError(f"Connecting to {host} timed out.", stage="timeout", transient=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return PlatformError(f"{host} did not answer in time.", stage="timeout", transient=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return PlatformError(f"The response from {host} was cut off or malformed.", stage="http", transient=True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        refused = any(isinstance(item, ConnectionRefusedError) for item in _exception_chain(exc))
        reason = "the connection was refused" if refused else "the connection failed"
        return PlatformError(
            f"Could not connect to {host}: {reason}.", stage="connect", transient=True, connection_refused=refused
        )
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return PlatformError("The URL is not valid.", stage="connect")
    return PlatformError(f"The request to {host} failed.", stage="http")


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
        self.session.cookies.set_policy(_NoCookies())
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
