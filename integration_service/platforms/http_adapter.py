"""The connection layer under the transport: ``GuardedAdapter`` (a requests adapter whose
connections check the target address when they open, and whose sockets a deadline can cut),
the no-cookies policy, and ``map_request_exception`` (requests/urllib3/socket errors -> the
contract's connection-test stages)."""

from __future__ import annotations

import contextlib
import http.cookiejar
import socket
import threading
import weakref
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError

from .base import PlatformError
from .ssrf import DnsFailure, TargetRefused, guarded_pool_classes


class NoCookies(http.cookiejar.DefaultCookiePolicy):
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
