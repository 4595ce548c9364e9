"""The Redis side of the politeness gate (``politeness``): one sorted set per site holds
everything a request needs to know, so taking a turn is one script call and giving it back one
pipelined round trip.

Key ``igny8:wp:slots:<host:port>``, scores in Redis's own clock (``TIME``, milliseconds, so
machines with skewed clocks agree):

* a member per request in flight: a random token, scored with its lease's expiry;
* ``~backoff``, scored with the end of the site's shared back-off (a 429/503 ``Retry-After``);
* ``~wait``, scored with the end of the longest current ``BLPOP`` of a waiter: a release pushes
  a wake-up only while it is there, so the common case (nobody waiting) costs no list command.

Acquire (``_ACQUIRE``, one ``EVALSHA``) reads the whole set once (at most ``WP_CONCURRENCY`` + 2
members), drops what has expired (a killed worker's lease), answers "back off for N ms", takes a
slot, or registers the caller as a waiter and answers how long until the oldest lease lapses.
Commands Redis counts per uncontended request: EVALSHA, TIME, ZRANGE, ZADD, PEXPIRE to acquire;
ZREM and ZSCORE (one pipeline, no script) to release; the old gate sent PTTL + 6 + 5.

The release need not be atomic: a waiter registers in the same script run that found the set
full, so either that run came before the ZREM (and the ZSCORE after it sees ``~wait``) or after
it (and found the freed slot itself).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

KEY_PREFIX = "igny8:wp"
BACKOFF = "~backoff"
WAITING = "~wait"
# Waiters wake at least this often to re-check (a lost wake-up costs at most this much).
MAX_BLOCK_SECONDS = 1.0

# ARGV: limit, lease ms, token, "1" to honour the back-off, how long the caller would block (ms).
# Returns {0, 0} (slot taken), {1, ms} (back off that long) or {2, ms} (full: the oldest lease
# lapses in ms; the caller is now registered as a waiter).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local live, oldest, latest, expired, backoff, waiting = 0, nil, now, false, 0, 0
for i = 1, #entries, 2 do
  local member, score = entries[i], tonumber(entries[i + 1])
  if score <= now then
    expired = true
  else
    if score > latest then latest = score end
    if member == '~backoff' then
      backoff = score
    elseif member == '~wait' then
      waiting = score
    else
      live = live + 1
      if oldest == nil or score < oldest then oldest = score end
    end
  end
end
if expired then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
if backoff > 0 and ARGV[4] == '1' then return {1, backoff - now} end
if live < tonumber(ARGV[1]) then
  local expiry = now + tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], expiry, ARGV[3])
  if expiry > latest then latest = expiry end
  redis.call('PEXPIRE', KEYS[1], latest - now)
  return {0, 0}
end
local ends = now + tonumber(ARGV[5])
if ends > waiting then
  redis.call('ZADD', KEYS[1], ends, '~wait')
  if ends > latest then redis.call('PEXPIRE', KEYS[1], ends - now) end
end
return {2, oldest - now}
"""

# Only for requests held past a third of the lease (a slow site); never shortens the key's TTL
# (a back-off may keep it longer).
_RENEW = """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
  return 1
end
return 0
"""

# Keeps the longer of two back-offs: a short Retry-After must not cut a long one.
_BACK_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = now + tonumber(ARGV[1])
local current = redis.call('ZSCORE', KEYS[1], '~backoff')
if current == false or tonumber(current) < ends then
  redis.call('ZADD', KEYS[1], ends, '~backoff')
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
end
return 0
"""

_BACKOFF_REMAINING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], '~backoff')
if ends == false then return 0 end
return math.max(0, tonumber(ends) - now)
"""


class WaitTimeout(Exception):
    """The caller's deadline passed while waiting for ``what``."""

    def __init__(self, what: str, retry_after: float | None) -> None:
        self.what = what
        self.retry_after = retry_after


BACKOFF_WAIT = "the site's Retry-After to pass"
SLOT_WAIT = "a free request slot"


def slots_key(key: str) -> str:
    return f"{KEY_PREFIX}:slots:{key}"


def _wake_key(key: str) -> str:
    return f"{KEY_PREFIX}:wake:{key}"


class RedisSlots:
    """Back-off and concurrency for every site, shared through one Redis by every process."""

    def __init__(self, client: Any, limit: int, lease_seconds: float) -> None:
        self._client = client
        self._limit = limit
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._back_off = client.register_script(_BACK_OFF)
        self._backoff_remaining = client.register_script(_BACKOFF_REMAINING)
        # token -> (site key, when to renew): one thread renews the leases held long enough.
        self._held: dict[str, tuple[str, float]] = {}
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def acquire(self, key: str, deadline: float, sleep: Callable[[float], None], local_backoff: float = 0.0) -> str:
        """A slot's token, once the site's back-off has passed (the longer of the shared one and
        ``local_backoff``, this process's own record, waited out once) and a slot is free."""
        token = uuid.uuid4().hex
        honour_backoff = "1"
        while True:
            remaining = deadline - time.monotonic()
            block = max(0.01, min(remaining, MAX_BLOCK_SECONDS))
            outcome, wait_ms = self._acquire(
                keys=[slots_key(key)], args=[self._limit, self._lease_ms, token, honour_backoff, int(block * 1000)]
            )
            wait = int(wait_ms) / 1000
            if int(outcome) == 0 and (honour_backoff == "0" or local_backoff <= 0):
                self._hold(token, key)
                return token
            if int(outcome) != 2:  # a back-off: Redis's, or only this process's (slot given back)
                if int(outcome) == 0:
                    self.release(key, token)
                wait = max(wait if int(outcome) == 1 else 0.0, local_backoff)
                if time.monotonic() + wait > deadline:
                    raise WaitTimeout(BACKOFF_WAIT, wait)
                sleep(wait)
                # Waited out once: a sleep that does not pass Redis's time (an injected one)
                # must not loop here; a longer back-off set meanwhile holds the next request.
                honour_backoff = "0"
                continue
            if remaining <= 0:
                raise WaitTimeout(SLOT_WAIT, wait)
            # Woken by a release, or when the oldest lease (perhaps a dead worker's) expires.
            self._client.blpop([_wake_key(key)], timeout=max(0.01, min(wait, block)))

    def release(self, key: str, token: str) -> None:
        with self._held_lock:
            self._held.pop(token, None)
        pipe = self._client.pipeline(transaction=False)
        pipe.zrem(slots_key(key), token)
        pipe.zscore(slots_key(key), WAITING)
        removed, waiting = pipe.execute()
        if removed and waiting is not None:
            wake = self._client.pipeline(transaction=False)
            wake.rpush(_wake_key(key), "1")
            wake.ltrim(_wake_key(key), -self._limit, -1)
            wake.pexpire(_wake_key(key), 10_000)
            wake.execute()

    def back_off(self, key: str, seconds: float) -> None:
        ms = int(seconds * 1000)
        if ms > 0:
            self._back_off(keys=[slots_key(key)], args=[ms])

    def backoff_remaining(self, key: str) -> float:
        return int(self._backoff_remaining(keys=[slots_key(key)])) / 1000

    def in_flight(self, key: str) -> int:
        return sum(1 for member in self._client.zrange(slots_key(key), 0, -1) if not member.startswith(b"~"))

    def _hold(self, token: str, key: str) -> None:
        with self._held_lock:
            self._held[token] = (key, time.monotonic() + self._lease_ms / 3000)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_forever, name="wp-slot-leases", daemon=True)
                self._renewer.start()

    def _renew_forever(self) -> None:
        # A request shorter than a third of the lease (nearly all) is never renewed.
        interval = self._lease_ms / 3000
        while True:
            time.sleep(interval / 2)
            now = time.monotonic()
            with self._held_lock:
                due = [(token, key) for token, (key, renew_at) in self._held.items() if renew_at <= now]
                for token, key in due:
                    self._held[token] = (key, now + interval)
            for token, key in due:
                try:
                    if not self._renew(keys=[slots_key(key)], args=[self._lease_ms, token]):
                        with self._held_lock:
                            still_held = token in self._held
                        if still_held:
                            logger.warning("the request slot lease for %s expired while held", key)
                except Exception:  # Redis unreachable: the lease may lapse; the request goes on
                    logger.warning("could not renew the request slot lease for %s", key, exc_info=True)
