"""Pacing of one service's requests at a rate learned from its 429s.

Providers limit requests (OpenAI by requests and tokens per minute, ElevenLabs
by concurrent requests). A fixed concurrency either underuses the limit or
hammers it; so each service client sends through one ``Throttle`` per process,
which learns the service's rate the way TCP learns a link's:

- slow start: from ``start_rate`` the rate doubles every second for as long as
  callers queue for it, until the first 429 (or until it is so high that pacing
  is pointless, and the throttle steps aside). A ``start_rate`` of None paces
  nothing until the first 429 (for a service that limits concurrent requests,
  which the caller's own concurrency already bounds);
- a 429 means the service's token bucket is empty. Between two 429s a second
  or more apart, the bucket went from empty to empty, so what the service
  accepted in between is exactly what it refilled: its rate. The rate is set
  3 % under that measure. (At the first 429 there is no earlier one; the last
  second's accepted requests, which include the bucket's burst, are cut by a
  quarter, and the rate then grows by 10 %/s until the second 429 measures.)
- between cuts it creeps up by 1 % per second, so that a raised limit, or a
  share left by another process on the same key, is found again.
- the 429s of one overshoot come together: one cut per second.
- a 429 after fewer than 4 requests measures nothing: a paced rate is cut by
  10 %, an unpaced one stays unpaced (a quiet process is not slowed down for
  one 429; the request itself waits for Retry-After or the backoff);
- a 429 while paced and no caller was queueing says something else (another
  process on the same key): the rate is halved, as TCP does; a measure taken
  while creeping (the bucket filled up while this process ran under the rate,
  and the refill it lost would hide in the measure) cuts no deeper than 10 %.

Against a token bucket of 3 to 100 requests/s this keeps over 94 % of the
limit with 2–4 % of requests refused (tests/test_throttle.py; bench/run.py).
Below 3/s a bucket holds a request or two, each 429 measures little, and the
result is poorer: 85 % of a 1/s limit with 8 % refused.
The rate grows only while callers queue: a quiet process does not learn a
rate it never used. Callers are served in the order they came.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

FIRST_CUT = 0.75
CUT = 0.97
AIMD_CUT = 0.9
MIN_SAMPLE = 4  # requests, for a measure of the service's rate
CREEP_PER_SECOND = 0.01
PROBE_PER_SECOND = 0.1
ESTIMATE_OVER_SECONDS = 30.0
ONE_CUT_PER_SECONDS = 1.0
MIN_RATE = 0.1  # requests per second
UNPACED_ABOVE = 1000.0  # requests per second; beyond this, pacing costs more than it saves


class Throttle:
    def __init__(self, start_rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._rate: float | None = start_rate  # None: not paced
        self._slow_start = True
        self._probing = False  # between the first cut and the second
        self._creep = 0.0  # requests per second gained per second, after the first cut
        self._next = 0.0  # the earliest time of the next request
        self._grown_at = clock()
        self._queued_at = float("-inf")  # when a caller last had to wait
        self._cut_at = float("-inf")
        self._sent: deque[float] = deque()  # send times since the last cut (at least the last second)
        self._refused: deque[float] = deque()  # send times of the requests refused, kept alike
        self._queue: deque[threading.Event] = deque()  # callers waiting, the first one on the clock

    @property
    def rate(self) -> float | None:
        """Requests per second, or None while not paced."""
        return self._rate

    def wait(self) -> None:
        """Block until this caller may send its request; callers go in the order they came."""
        turn = threading.Event()
        with self._lock:
            if self._rate is None and not self._queue:  # not paced: no turn to take
                self._record(self._clock())
                return
            self._queue.append(turn)
            if len(self._queue) == 1:
                turn.set()
        try:
            turn.wait()
            while True:
                with self._lock:
                    now = self._clock()
                    self._grow(now)
                    if self._rate is None or now >= self._next:
                        if self._rate is not None:
                            # A sleep that overslept by up to one interval is made up, not lost.
                            self._next = max(self._next, now - 1 / self._rate) + 1 / self._rate
                        self._record(now)
                        return
                    self._queued_at = now
                    delay = self._next - now
                # Short naps: a cut or a grown rate moves the time of the next request.
                self._sleep(min(delay, 0.1))
        finally:  # sent, or interrupted (while waiting for its turn, or in it): it leaves the queue
            with self._lock:
                first = self._queue[0] is turn
                self._queue.remove(turn)
                if first and self._queue:
                    self._queue[0].set()  # the next caller's turn

    def _record(self, now: float) -> None:
        self._sent.append(now)
        # Kept: the last second, and the time since a recent cut (the next cut measures over it).
        keep_from = now - 1
        if now - self._cut_at < ESTIMATE_OVER_SECONDS:
            keep_from = min(keep_from, self._cut_at)
        for times in (self._sent, self._refused):
            while times and times[0] < keep_from:
                times.popleft()

    def limited(self, sent_at: float | None = None) -> None:
        """The service answered 429 to a request sent at ``sent_at`` (this throttle's clock;
        default now): slow down (once per burst of 429s)."""
        with self._lock:
            now = self._clock()
            # By send time: a request sent before a cut and refused after it says nothing
            # about what the service accepted since.
            self._refused.append(now if sent_at is None else sent_at)
            if now - self._cut_at < ONE_CUT_PER_SECONDS:
                return
            self._grow(now)
            first, probing = self._slow_start, self._probing
            if now - self._cut_at < ESTIMATE_OVER_SECONDS:
                # The service's bucket was empty at the last cut and is empty now: what it
                # accepted in between is exactly what it refilled, its rate.
                since, seconds = self._cut_at, now - self._cut_at
            else:
                # The first 429: the service accepted its burst (taken as a second's
                # worth, as OpenAI's are) and then its rate.
                since = now - 1
                seconds = 1.0
            sent = sum(1 for at in self._sent if since < at <= now)
            current = self._rate if self._rate is not None else max(1.0, float(len(self._sent)))
            if sent < MIN_SAMPLE and self._rate is None:
                # Too few requests to measure a rate (a quiet process): it stays unpaced;
                # the request waits for Retry-After or the backoff. Not a cut.
                return
            if sent < MIN_SAMPLE:
                # A limit of a request or two a second: too few to measure; cut by 10 %.
                self._rate = current * AIMD_CUT
            elif self._rate is not None and now - self._queued_at > 1:
                # Paced, and callers were not queueing: the 429 says something else
                # (another process on the key); halve, as TCP does.
                self._rate = current / 2
            else:
                refused = sum(1 for at in self._refused if since < at <= now)
                measured = (sent - refused) / seconds * (FIRST_CUT if first else CUT)
                # Creeping, this process was under the service's rate for a while, its
                # bucket full, the refill lost: the measure is low. Cut no deeper than
                # plain AIMD would. (Probing overshoots: there the measure is the rate.)
                self._rate = measured if first or probing else max(measured, current * AIMD_CUT)
                if not first:
                    # No cut deeper than halving, as TCP's: a window in which every
                    # request was refused (others holding a concurrency limit) measures 0.
                    self._rate = max(self._rate, current / 2)
            self._cut_at = now
            self._rate = max(self._rate, MIN_RATE)
            self._probing, self._slow_start = first, False
            # After the first cut, whose estimate a burst can skew, the rate is probed
            # faster, until a second 429 measures the service's rate exactly.
            self._creep = self._rate * (PROBE_PER_SECOND if self._probing else CREEP_PER_SECOND)
            # The next request waits a full interval of the new rate.
            self._next = max(self._next, now + 1 / self._rate)

    def _grow(self, now: float) -> None:
        elapsed, self._grown_at = now - self._grown_at, now
        if self._rate is None or now - self._queued_at > 1:
            return  # not paced, or nobody has had to wait: the rate is not what limits
        if self._slow_start:
            self._rate *= 2 ** elapsed
            if self._rate > UNPACED_ABOVE:
                self._rate = None
        else:
            self._rate += self._creep * elapsed
