"""The HTTP transport: retries, size cap, redirects, timeouts and error stages."""

from __future__ import annotations

import io
import socket

import pytest
import requests
import responses

from integration_service.platforms.base import PlatformError
from integration_service.platforms.http import USER_AGENT, HttpTransport
from integration_service.platforms.http_types import HttpSettings, parse_retry_after
from tests.platforms.fakes import Sleeps, fake_dns_fixture, mocked_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("fake_dns")

URL = "https://wp.example.test/wp-json/"


def transport(sleeps: Sleeps | None = None, **settings) -> HttpTransport:
    defaults = {"connect_timeout": 2, "read_timeout": 5, "max_retries": 2, "allow_private": False}
    return HttpTransport(HttpSettings(**{**defaults, **settings}), sleep=sleeps if sleeps is not None else Sleeps())


def test_get_retries_503_honouring_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=503, headers={"Retry-After": "3"})
    mocked.get(URL, status=503, headers={"Retry-After": "7"})
    mocked.get(URL, json={"ok": True})
    sleeps = Sleeps()
    response = transport(sleeps).request("GET", URL)
    assert response.status_code == 200
    # The site's back-off, waited out before each next attempt (no real time passes here).
    assert sleeps == pytest.approx([3.0, 7.0], abs=0.5)
    assert len(mocked.calls) == 3


def test_retries_stop_after_the_configured_count(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=502)
    sleeps = Sleeps()
    response = transport(sleeps, max_retries=2).request("GET", URL)
    assert response.status_code == 502
    assert len(mocked.calls) == 3
    assert len(sleeps) == 2 and all(0 < wait <= 8 for wait in sleeps)


def test_retry_after_longer_than_the_cap_is_not_slept(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=429, headers={"Retry-After": "3600"})
    sleeps = Sleeps()
    response = transport(sleeps, max_retry_wait=30).request("GET", URL)
    assert response.status_code == 429
    assert sleeps == [] and len(mocked.calls) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_no_retry_on_non_transient_status(mocked: responses.RequestsMock, status: int) -> None:
    mocked.get(URL, status=status)
    sleeps = Sleeps()
    assert transport(sleeps).request("GET", URL).status_code == status
    assert len(mocked.calls) == 1 and sleeps == []


def test_post_is_not_retried(mocked: responses.RequestsMock) -> None:
    mocked.post(URL, status=503, headers={"Retry-After": "1"})
    sleeps = Sleeps()
    assert transport(sleeps).request("POST", URL, json_body={"a": 1}).status_code == 503
    assert len(mocked.calls) == 1 and sleeps == []


def test_connection_errors_are_retried_for_get(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=requests.ConnectionError("Connection refused"))
    mocked.get(URL, json={"ok": True})
    sleeps = Sleeps()
    assert transport(sleeps).request("GET", URL).status_code == 200
    assert len(sleeps) == 1


def test_user_agent_names_the_service(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, json={})
    transport().request("GET", URL)
    assert mocked.calls[0].request.headers["User-Agent"] == USER_AGENT
    assert "Integration-Service" in USER_AGENT


class EndlessBody(io.RawIOBase):
    """An endless response body that counts what was read from it."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        buffer[:size] = b"x" * size
        self.served += size
        return size


def test_huge_response_is_cut_off_while_streaming(mocked: responses.RequestsMock) -> None:
    raw = EndlessBody()
    mocked.get(URL, body=io.BufferedReader(raw), content_type="application/json", auto_calculate_content_length=False)
    with pytest.raises(PlatformError) as excinfo:
        transport(max_response_bytes=256 * 1024).request("GET", URL)
    assert excinfo.value.stage == "http"
    assert "larger than the limit" in excinfo.value.message
    assert raw.served < 2 * 1024 * 1024  # it stopped reading soon after the limit


def test_announced_huge_response_is_refused_before_reading(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=b"x" * 2048, content_type="application/json", headers={"Content-Length": "2048"})
    with pytest.raises(PlatformError, match="2048 bytes announced"):
        transport(max_response_bytes=1024).request("GET", URL)


def test_redirect_to_a_private_address_is_refused(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    mocked.get("http://169.254.169.254/latest/meta-data", body="secret")
    with pytest.raises(PlatformError) as excinfo:
        transport().request("GET", URL)
    assert excinfo.value.stage == "connect"
    assert "not allowed" in excinfo.value.message
    assert len(mocked.calls) == 1  # the private hop was never requested


def test_redirect_to_a_host_resolving_privately_is_refused(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=301, headers={"Location": "http://private.example.test/wp-json/"})
    with pytest.raises(PlatformError, match="not allowed"):
        transport().request("GET", URL)


def test_redirects_are_followed_and_credentials_dropped_across_origins(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=301, headers={"Location": "https://other.example.test/wp-json/"})
    mocked.get("https://other.example.test/wp-json/", json={"ok": True})
    response = transport().request("GET", URL, secret_headers={"X-API-Key": "k" * 20})
    assert response.status_code == 200
    assert response.url.startswith("https://other.example.test/wp-json/")
    assert mocked.calls[0].request.headers["X-API-Key"] == "k" * 20
    assert "X-API-Key" not in mocked.calls[1].request.headers


def test_credentials_follow_an_https_upgrade_on_the_same_host(mocked: responses.RequestsMock) -> None:
    mocked.get("http://wp.example.test/wp-json/", status=301, headers={"Location": URL})
    mocked.get(URL, json={"ok": True})
    transport().request("GET", "http://wp.example.test/wp-json/", secret_headers={"Authorization": "Basic abc"})
    assert mocked.calls[1].request.headers["Authorization"] == "Basic abc"


def test_too_many_redirects(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, status=302, headers={"Location": URL})
    with pytest.raises(PlatformError, match="Too many redirects"):
        transport().request("GET", URL)
    assert len(mocked.calls) == 6


def test_a_write_redirected_with_301_is_not_turned_into_a_get(mocked: responses.RequestsMock) -> None:
    mocked.post(URL, status=301, headers={"Location": "https://www.example.test/wp-json/"})
    with pytest.raises(PlatformError, match="redirected a POST request"):
        transport().request("POST", URL, json_body={"title": "x"})


def test_dns_failure_stage(mocked: responses.RequestsMock) -> None:
    with pytest.raises(PlatformError) as excinfo:
        transport().request("GET", "https://nx.example.test/wp-json/")
    assert excinfo.value.stage == "dns"


@pytest.mark.parametrize(
    ("error", "stage"),
    [
        (requests.exceptions.ConnectTimeout("timed out"), "timeout"),
        (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
        (requests.exceptions.SSLError("certificate verify failed"), "tls"),
        (requests.ConnectionError("Connection reset"), "connect"),
    ],
)
def test_network_errors_map_to_stages(mocked: responses.RequestsMock, error: Exception, stage: str) -> None:
    mocked.get(URL, body=error)
    with pytest.raises(PlatformError) as excinfo:
        transport(max_retries=0).request("GET", URL)
    assert excinfo.value.stage == stage


def test_refused_connection_on_a_real_socket() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the kernel refuses the connection.
    with pytest.raises(PlatformError) as excinfo:
        transport(allow_private=True, max_retries=0).request("GET", f"http://127.0.0.1:{port}/wp-json/")
    assert excinfo.value.stage == "connect"
    assert "refused" in excinfo.value.message
    assert excinfo.value.transient


def test_parse_retry_after_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("12") == 12
    assert parse_retry_after("soon") is None


def _self_signed(tmp_path, hostname: str):
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    import http.server
    import ssl
    import threading

    cert_file, key_file = _self_signed(tmp_path, "tls.example.test")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert_file
    server.shutdown()
    server.server_close()


def test_tls_to_a_pinned_address_still_verifies_the_host_name(monkeypatch, tls_server) -> None:
    """The socket goes to the checked IP, but SNI and certificate checks use the host name."""
    import ipaddress

    from integration_service.platforms import ssrf

    port, cert_file = tls_server
    monkeypatch.setattr(ssrf, "resolve_host", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    trusting = transport(allow_private=True, max_retries=0)
    trusting.session.verify = str(cert_file)
    assert trusting.request("GET", f"https://tls.example.test:{port}/").status_code == 200
    # The same server under another name fails the hostname check.
    with pytest.raises(PlatformError) as wrong_name:
        trusting.request("GET", f"https://other.example.test:{port}/")
    assert wrong_name.value.stage == "tls"
    # And an untrusted certificate is a TLS error, not retried.
    with pytest.raises(PlatformError) as untrusted:
        transport(allow_private=True).request("GET", f"https://tls.example.test:{port}/")
    assert untrusted.value.stage == "tls" and not untrusted.value.transient


def test_mocked_sites_need_no_real_dns_when_private_targets_are_allowed(
    mocked: responses.RequestsMock, monkeypatch
) -> None:
    """Tests of other modules fake WordPress with ``responses`` under TestingConfig: the early
    check must not depend on a resolver (the connect-time check still runs for real sockets)."""
    from integration_service.platforms import ssrf

    def no_dns(host, port):
        raise AssertionError("resolved " + host)

    monkeypatch.setattr(ssrf, "resolve_host", no_dns)
    mocked.get("https://blog.example.com/wp-json/", json={"ok": True})
    assert transport(allow_private=True).request("GET", "https://blog.example.com/wp-json/").status_code == 200


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.chunks = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)


def test_a_sink_gets_the_body_instead_of_memory_and_starts_over_on_a_retry(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=requests.ConnectionError("reset"))
    mocked.get(URL, body=b"x" * 200_000)
    sink = ListSink()
    response = transport().request("GET", URL, sink=sink)
    assert response.status_code == 200 and response.content == b""
    assert b"".join(sink.chunks) == b"x" * 200_000 and sink.resets == 1


def test_the_size_cap_is_a_response_too_large_error(mocked: responses.RequestsMock) -> None:
    from integration_service.platforms.http import ResponseTooLarge

    mocked.get(URL, body=b"x" * 5000)
    with pytest.raises(ResponseTooLarge):
        transport(max_response_bytes=4096).request("GET", URL, sink=ListSink())
    mocked.get(
        URL + "announced", body=b"x" * 5000, headers={"Content-Length": "5000"}, auto_calculate_content_length=False
    )
    with pytest.raises(ResponseTooLarge):
        transport(max_response_bytes=4096).request("GET", URL + "announced")


def test_a_raw_body_is_sent_as_is_with_its_headers_and_not_retried(mocked: responses.RequestsMock) -> None:
    mocked.post(URL, status=503)
    body = io.BytesIO(b"\x89PNG raw bytes")
    response = transport().request("POST", URL, data=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 503 and len(mocked.calls) == 1
    sent = mocked.calls[0].request
    assert sent.headers["Content-Type"] == "image/png"
    assert (sent.body.getvalue() if hasattr(sent.body, "getvalue") else sent.body) == b"\x89PNG raw bytes"
