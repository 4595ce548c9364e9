"""Outbound safety: a customer's ``site_url`` may only make the service reach public addresses.

Two layers use the same rules:

* ``check_url`` runs before every request and every redirect hop: http(s) only, no credentials
  in the URL, the host must resolve, and every address it resolves to must be allowed (with
  ``allow_private`` host names are left to the connect-time check).
* ``GuardedHTTPConnection`` / ``GuardedHTTPSConnection`` (mounted by ``http_adapter``) resolve again
  when the socket is opened and connect only to an address that passes the check.  The address
  that was checked is the address that is connected to, so a DNS answer that changes between the
  check and the connect (DNS rebinding) cannot smuggle in a private address.  TLS still verifies
  the certificate against the host name (SNI and hostname checks use ``host``, not the IP).

``allow_private`` (config ``ALLOW_PRIVATE_TARGETS``: development and tests only) allows loopback
and private networks; link-local (cloud metadata), multicast, reserved and unspecified addresses
are refused even then.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The URL or the address it resolves to is not allowed.

    Deliberately not an ``OSError``: urllib3 and requests let it through unchanged instead of
    wrapping it into a retried connection error.
    """

    stage = "connect"


class DnsFailure(Exception):
    """The host name does not resolve (``temporary`` for EAI_AGAIN, which may be retried)."""

    stage = "dns"

    def __init__(self, message: str, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


def refusal_reason(ip: IPAddress, allow_private: bool) -> str | None:
    """Why the address may not be reached, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that embeds an IPv4 one is judged by the IPv4 address it reaches.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            # On an IPv6-only host with DNS64 every IPv4 site has such an address.
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal_reason(embedded, allow_private)
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if ip.is_loopback:
        return None if allow_private else "loopback"
    if ip.is_reserved or ip == _BROADCAST:
        return "reserved"
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if ip.is_private or site_local or not ip.is_global:
        return None if allow_private else "private"
    return None


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host`` (an IP literal resolves to itself). Tests monkeypatch this."""
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        temporary = exc.errno == socket.EAI_AGAIN
        raise DnsFailure(f"The host name {host} could not be resolved.", temporary=temporary) from exc
    except UnicodeError as exc:
        raise DnsFailure(f"The host name {host} is not valid.") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DnsFailure(f"The host name {host} has no addresses.")
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def allowed_addresses(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses; refuse when any of them is not allowed.

    Refusing when *any* address is private (rather than picking a public one) keeps a host that
    mixes public and private records from being used to probe the private one.
    """
    addresses = resolve_host(host, port)
    for address in addresses:
        reason = refusal_reason(address, allow_private)
        if reason is not None:
            logger.warning("outbound request refused: %s resolves to a %s address", host, reason)
            raise TargetRefused(f"The address is not allowed: {host} resolves to a {reason} address.")
    return addresses


def check_url(url: str, allow_private: bool) -> list[IPAddress]:
    """Validate one URL (scheme, credentials, resolved addresses) before it is requested."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"The URL is not valid: {exc}.") from exc
    if parts.scheme not in ALLOWED_SCHEMES:
        raise TargetRefused(f"The address is not allowed: only http and https URLs, not {parts.scheme or 'none'}.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("The address is not allowed: the URL must not contain credentials.")
    host = parts.hostname
    if not host:
        raise TargetRefused("The address is not allowed: the URL has no host.")
    literal = _ip_literal(host)
    if allow_private and literal is None:
        # Development and tests: the connect-time check still resolves and refuses link-local,
        # multicast and reserved targets; skipping the early lookup here keeps tests that fake
        # WordPress with ``responses`` (no socket is ever opened) independent of real DNS.
        return []
    return allowed_addresses(host, port or (443 if parts.scheme == "https" else 80), allow_private)


class _GuardedConnectionMixin:
    """Resolve and check at socket-open time, then connect to the checked address only."""

    allow_private: bool = False
    _dns_host: str
    host: str
    port: int

    def _new_conn(self):  # type: ignore[no-untyped-def]
        host = self._dns_host
        addresses = allowed_addresses(host, self.port, self.allow_private)
        last_error: Exception | None = None
        try:
            for address in addresses:
                # urllib3 connects to _dns_host; TLS keeps using self.host for SNI and checks.
                self._dns_host = str(address)
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except NewConnectionError as exc:
                    last_error = exc
        finally:
            self._dns_host = host
        assert last_error is not None
        raise last_error


def guarded_pool_classes(allow_private: bool) -> dict[str, type]:
    """Pool classes for urllib3's PoolManager whose connections apply the check."""

    class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
        pass

    class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
        pass

    GuardedHTTPConnection.allow_private = allow_private
    GuardedHTTPSConnection.allow_private = allow_private

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
