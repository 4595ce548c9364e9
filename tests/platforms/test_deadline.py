"""The shared deadline of the HTTP transport: against a slow site on a real socket (stalling,
trickling headers, trickling the body), and retry waits that would pass it."""

from __future__ import annotations

import time

import pytest
import responses

from integration_service.platforms.base import PlatformError
from integration_service.platforms.deadline import Deadline
from integration_service.platforms.http import HttpTransport
from integration_service.platforms.http_types import HttpSettings
from tests.platforms.fakes import Sleeps, mocked_fixture  # noqa: F401 - fixture
from tests.support.slow_site import SlowSite

# The slack allowed past the deadline: thread scheduling on a loaded 2-core machine.
SLACK = 0.8


def transport(deadline: Deadline, sleeps: Sleeps | None = None, **settings) -> HttpTransport:
    defaults = {"connect_timeout": 2, "read_timeout": 10, "max_retries": 3, "allow_private": True}
    return HttpTransport(
        HttpSettings(**{**defaults, **settings}, deadline=deadline), **({"sleep": sleeps} if sleeps is not None else {})
    )


@pytest.mark.parametrize("mode", ["stall", "trickle", "trickle_body"])
def test_a_slow_site_fails_with_stage_timeout_at_the_deadline(mode: str) -> None:
    with SlowSite(mode, interval=0.1) as site:
        client = transport(Deadline(1.5))
        started = time.monotonic()
        with pytest.raises(PlatformError) as excinfo:
            client.request("GET", site.url + "wp-json/")
        elapsed = time.monotonic() - started
        client.close()
    # Without the deadline: 10 s read timeout per attempt, 4 attempts (stall), or the whole
    # trickle (6 s for the headers and body at 10 bytes a second), each retried.
    assert 1.4 <= elapsed < 1.5 + SLACK
    assert excinfo.value.stage == "timeout"
    assert "1.5 s allowed for the whole test" in excinfo.value.message


def test_the_deadline_runs_out_mid_retry() -> None:
    with SlowSite("stall") as site:
        # Each attempt times out after 1 s; the back-off is ~0.5 s; a 1.7 s budget ends during
        # the second attempt, whose read timeout was cut to the ~0.2 s left.
        client = transport(Deadline(1.7), read_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(PlatformError) as excinfo:
            client.request("GET", site.url + "wp-json/")
        elapsed = time.monotonic() - started
        client.close()
        connections = site.connections
    assert excinfo.value.stage == "timeout"
    assert elapsed < 1.7 + SLACK
    assert connections == 2  # the first attempt and the retry, then no more


def test_no_retry_wait_sleeps_past_the_deadline(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/wp-json/"
    mocked.get(url, status=503, headers={"Retry-After": "3"})
    sleeps = Sleeps()
    response = transport(Deadline(2.0), sleeps).request("GET", url)
    # Waiting 3 s would end past the 2 s budget: the 503 is the answer, nothing is slept.
    assert response.status_code == 503
    assert sleeps == [] and len(mocked.calls) == 1


def test_a_retry_that_fits_is_still_made(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/wp-json/"
    mocked.get(url, status=502, headers={"Retry-After": "1"})
    mocked.get(url, json={"namespaces": []})
    sleeps = Sleeps()
    response = transport(Deadline(5.0), sleeps).request("GET", url)
    assert response.status_code == 200 and sleeps == [1.0]


def test_a_spent_deadline_sends_nothing(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/wp-json/"
    mocked.get(url, json={})
    with pytest.raises(PlatformError) as excinfo:
        transport(Deadline(0.0)).request("GET", url)
    assert excinfo.value.stage == "timeout" and len(mocked.calls) == 0


def test_every_wait_is_cut_to_the_time_left() -> None:
    now = [100.0]
    deadline = Deadline(10.0, clock=lambda: now[0])
    client = transport(deadline)
    # A slot wait (per-site politeness) or a timeout asks the same question.
    assert client.time_left(5.0) == 5.0
    now[0] = 108.0
    assert client.time_left(5.0) == pytest.approx(2.0)
    now[0] = 111.0
    assert client.time_left(5.0) == 0.0 and deadline.expired
    assert HttpTransport(HttpSettings()).time_left(5.0) == 5.0  # no deadline: unchanged


def test_a_slot_wait_is_cut_to_the_deadline(mocked: responses.RequestsMock) -> None:
    url = "http://127.0.0.1:9/wp-json/"
    mocked.get(url, json={})
    sleeps = Sleeps()
    client = transport(Deadline(1.0), sleeps, max_retries=0)
    client._gate.back_off(url, 3.0, 503)  # every worker waits 3 s before its next request there
    with pytest.raises(PlatformError) as excinfo:
        client.request("GET", url)
    # The slot wait (5 s for a test) was cut to the 1 s left: no 3 s sleep, no request.
    assert excinfo.value.stage == "timeout"
    assert sleeps == [] and len(mocked.calls) == 0
