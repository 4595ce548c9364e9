"""SSRF guard: refused URLs and addresses, and the connect-time check (DNS rebinding)."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator

import pytest
import requests

from integration_service.platforms import ssrf
from integration_service.platforms.base import PlatformError
from integration_service.platforms.http import HttpTransport
from integration_service.platforms.http_types import HttpSettings
from tests.platforms.fakes import PUBLIC_IP, fake_dns_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fake_dns")

REFUSED = [
    "http://127.0.0.1",
    "http://localhost",
    "http://10.0.0.1",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]",
    "http://[::ffff:127.0.0.1]",
    "file:///etc/passwd",
    "http://user:pass@example.com",
    "http://private.example.test/",  # a host name that resolves to a private address
    "http://mixed.example.test/",  # one public and one private record
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://192.168.0.1/",
    "http://172.16.5.4/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
    "ftp://example.com/",
    "gopher://example.com/",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls(url: str) -> None:
    with pytest.raises(ssrf.TargetRefused) as excinfo:
        ssrf.check_url(url, allow_private=False)
    assert "not allowed" in str(excinfo.value) or "not valid" in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://93.184.216.34:8080/x",
        "https://[2606:4700::1111]/",
        "http://[64:ff9b::5db8:d822]/",
    ],
)
def test_public_urls_pass(url: str) -> None:
    addresses = ssrf.check_url(url, allow_private=False)
    assert all(ssrf.refusal_reason(address, False) is None for address in addresses)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8881/", "http://localhost/", "http://10.0.0.1/", "http://[::1]/"])
def test_allow_private_allows_loopback_and_private(url: str) -> None:
    ssrf.check_url(url, allow_private=True)  # no exception
    host = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0] if "[" not in url else "::1"
    assert ssrf.allowed_addresses(host, 80, allow_private=True)


def test_allow_private_leaves_host_names_to_the_connect_time_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Development: a host name resolving to the metadata address is refused when connecting."""
    transport = HttpTransport(HttpSettings(allow_private=True, max_retries=0))
    with pytest.raises(PlatformError) as excinfo:
        transport.request("GET", "http://metadata.example.test/latest/meta-data")
    assert excinfo.value.stage == "connect" and "link-local" in excinfo.value.message
    with pytest.raises(PlatformError) as unresolvable:
        transport.request("GET", "http://nx.example.test/")
    assert unresolvable.value.stage == "dns"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "file:///etc/passwd",
        "http://user:pass@127.0.0.1/",
    ],
)
def test_allow_private_still_refuses_metadata_multicast_and_schemes(url: str) -> None:
    with pytest.raises(ssrf.TargetRefused):
        ssrf.check_url(url, allow_private=True)


def test_unresolvable_host_is_a_dns_failure() -> None:
    with pytest.raises(ssrf.DnsFailure):
        ssrf.check_url("https://nx.example.test/", allow_private=False)


def test_real_resolver_handles_numeric_host_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2130706433 is 127.0.0.1 in decimal; the real resolver turns it into the loopback address.
    monkeypatch.undo()
    assert ssrf.resolve_host("2130706433", 80) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(ssrf.TargetRefused):
        ssrf.check_url("http://2130706433/", allow_private=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_GET(self) -> None:
        _Handler.hosts.append(self.headers.get("Host", ""))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def local_server() -> Iterator[int]:
    _Handler.hosts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_connection_is_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch, local_server: int) -> None:
    """DNS rebinding: the pre-flight lookup says public, the lookup at connect time says loopback.
    The connect-time check refuses, and the server never sees a request."""
    answers = iter([[ipaddress.ip_address(PUBLIC_IP)], [ipaddress.ip_address("127.0.0.1")]])
    monkeypatch.setattr(ssrf, "resolve_host", lambda host, port: next(answers))
    transport = HttpTransport(HttpSettings(allow_private=False, max_retries=0))
    with pytest.raises(PlatformError) as excinfo:
        transport.request("GET", f"http://rebind.example.test:{local_server}/")
    assert excinfo.value.stage == "connect"
    assert "not allowed" in excinfo.value.message
    assert _Handler.hosts == []


def test_connection_goes_to_the_resolved_address_with_the_original_host(
    monkeypatch: pytest.MonkeyPatch, local_server: int
) -> None:
    monkeypatch.setattr(ssrf, "resolve_host", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    transport = HttpTransport(HttpSettings(allow_private=True, max_retries=0))
    response = transport.request("GET", f"http://pinned.example.test:{local_server}/")
    assert response.status_code == 200
    assert _Handler.hosts == [f"pinned.example.test:{local_server}"]


def test_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch, local_server: int) -> None:
    # A proxy would connect on the service's behalf and bypass the address check.
    monkeypatch.setenv("HTTP_PROXY", "http://203.0.113.9:3128")
    transport = HttpTransport(HttpSettings(allow_private=True, max_retries=0))
    assert transport.request("GET", f"http://127.0.0.1:{local_server}/").status_code == 200
    assert isinstance(transport.session, requests.Session) and transport.session.trust_env is False
