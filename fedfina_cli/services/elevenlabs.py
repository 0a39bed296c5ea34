"""The ElevenLabs Conversational AI client (urllib3, with the environment's settings as requests reads them).

Retries connection errors, timeouts, 408, 429 and 5xx with jittered
exponential backoff (Retry-After wins when present); never retries other 4xx.
Error messages carry the status and ElevenLabs' detail, never the key.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, ProxySchemeUnknown, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from fedfina_cli.core.api_calls import ApiCall, Metrics, elapsed_ms
from fedfina_cli.core.conversation import MAX_SECONDS, AudioUnavailable, FetchedConversation, parse_conversation
from fedfina_cli.core.errors import InvalidValue, StageError
from fedfina_cli.core.jsonio import BadJSON, loads
from fedfina_cli.core.meta import __version__
from fedfina_cli.core.validation import conversation_id as valid_conversation_id
from fedfina_cli.services import deadline
from fedfina_cli.services.retry import RetryPolicy, parse_retry_after
from fedfina_cli.services.throttle import Throttle

RETRY_STATUSES = {408, 429} | set(range(500, 600))
# ElevenLabs limits concurrent requests, which --concurrency bounds already:
# nothing is paced until its first 429 (throttle.py).
START_RATE = None
AUDIO_CHUNK_BYTES = 256 * 1024
CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 30  # as requests


class ElevenLabsError(StageError):
    def __init__(self, message: str, status: int | None = None, retryable: bool = False):
        super().__init__(message, retryable=retryable)
        self.status = status


@dataclass(frozen=True)
class ListedConversation:
    conversation_id: str
    status: str | None
    start_time_unix_secs: int | None


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[ListedConversation]
    next_cursor: str | None
    has_more: bool
    rejected: list[str] = field(default_factory=list)  # items left out, and why


class _Pools:
    """urllib3 connection pools: direct, or through the proxy the environment names for a host.

    requests (which runs on urllib3) prepares every request anew and reads the
    environment's proxy and CA settings each time: about 0.7 ms of CPU a call.
    Here they are read as requests reads them (HTTP(S)_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE), once per host: they do not change during
    a run, and NO_PROXY still applies to each host a request is redirected to.
    """

    def __init__(self, pool_size: int, timeout: float):
        self._settings: dict[str, Any] = {
            "maxsize": pool_size,
            "timeout": urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout),
            "retries": False,  # retried by _request, which knows which failures may be
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where(),
        }
        self._direct = deadline.bound_pool_manager(urllib3.PoolManager(**self._settings))
        self._managers: dict[tuple[str, str], urllib3.PoolManager] = {}  # by (scheme, host)
        self._proxies: dict[str, urllib3.ProxyManager] = {}  # by proxy URL
        self._lock = threading.Lock()

    def manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        manager = self._managers.get(key)
        if manager is None:
            # requests' reading of the environment (only this, and only once per host).
            from requests.utils import get_environ_proxies, select_proxy  # noqa: PLC0415

            proxy = select_proxy(url, get_environ_proxies(url))
            with self._lock:
                manager = self._direct if not proxy else self._proxies.get(proxy) or self._proxy(proxy)
                self._managers[key] = manager
        return manager

    def _proxy(self, proxy: str) -> urllib3.ProxyManager:
        from requests.utils import get_auth_from_url  # noqa: PLC0415

        user, password = get_auth_from_url(proxy)
        headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
        try:
            manager = urllib3.ProxyManager(proxy, proxy_headers=headers, **self._settings)
        except ProxySchemeUnknown:
            raise ElevenLabsError(f"the proxy set in the environment for ElevenLabs ({urlsplit(proxy).scheme}://…) "
                                  "is not an http:// or https:// proxy; fix HTTPS_PROXY and HTTP_PROXY, "
                                  "or name the host in NO_PROXY") from None
        self._proxies[proxy] = deadline.bound_pool_manager(manager)
        return self._proxies[proxy]


class ElevenLabsClient:
    def __init__(self, api_key: str, base_url: str, metrics: Metrics,
                 retry: RetryPolicy = RetryPolicy(), timeout: float = 60.0, pool_size: int = 16,
                 redact: Callable[[str], str] = lambda s: s):
        self.base_url = base_url.rstrip("/")
        self.redact = redact
        self.host = urlsplit(self.base_url).netloc
        self.metrics = metrics
        self.retry = retry
        self.throttle = Throttle(START_RATE)
        self.total_timeout = timeout  # one attempt, connect to last byte (FEDFINA_HTTP_TIMEOUT)
        self.pools = _Pools(pool_size, timeout)
        self.headers = {"xi-api-key": api_key, "User-Agent": f"fedfina/{__version__}", "Accept": "application/json",
                        **urllib3.make_headers(accept_encoding=True)}

    # --- the calls ---------------------------------------------------------

    def get_conversation(self, conversation_id: str) -> FetchedConversation:
        path = f"/v1/convai/conversations/{_path_id(conversation_id)}"
        response = self._request("get_conversation", path, conversation_id=conversation_id)
        try:
            payload = loads(response.data)
        except BadJSON as exc:
            # Not retryable: the same body would fail every later run (and hold sync's watermark).
            raise ElevenLabsError(f"ElevenLabs returned a conversation that cannot be read "
                                  f"(HTTP {response.status}): {exc}", response.status) from None
        return FetchedConversation(parse_conversation(payload), response.data)

    def audio_chunks(self, conversation_id: str) -> Iterator[bytes]:
        """Stream the MP3 straight through; never holds the whole file.

        Only a 404 means "there is no recording" (AudioUnavailable). A connection
        broken mid-stream is retried like any passing failure, from the byte where
        it broke (``Range``; a server that ignores it sends the whole file again,
        and the bytes already passed on are skipped). Past the retries, or on a 5xx
        or 429 past them, the fetch fails as retryable: a later run gets the recording.
        """
        path = f"/v1/convai/conversations/{_path_id(conversation_id)}/audio"
        started = time.monotonic()
        try:
            response = self._request("get_audio", path, conversation_id=conversation_id, stream=True,
                                     record_success=False)
        except ElevenLabsError as exc:
            if exc.status == 404:
                raise AudioUnavailable(f"ElevenLabs has no recording ({exc})") from None
            raise
        return self._stream(response, path, conversation_id, started)

    def list_conversations(self, agent_id: str | None, cursor: str | None = None,
                           after_unix: int | None = None, page_size: int = 100) -> ConversationPage:
        params: dict = {"page_size": page_size}
        if agent_id:
            params["agent_id"] = agent_id
        if cursor:
            params["cursor"] = cursor
        if after_unix is not None:
            params["call_start_after_unix"] = after_unix
        response = self._request("list_conversations", "/v1/convai/conversations", params=params)
        try:
            body = loads(response.data)
        except BadJSON as exc:
            raise ElevenLabsError(f"ElevenLabs returned an unreadable conversation list: {exc}",
                                  response.status, retryable=True) from None
        if not isinstance(body, dict) or not isinstance(body.get("conversations", []), list):
            raise ElevenLabsError("ElevenLabs returned an unreadable conversation list "
                                  "(no conversations array)", response.status, retryable=True)
        listed, rejected = [], []
        for item in body.get("conversations") or []:
            # Every id becomes an object key, a file name and a URL path: checked
            # here, so a hostile list cannot write outside the data folder.
            try:
                conversation_id = valid_conversation_id(item.get("conversation_id") if isinstance(item, dict)
                                                        else None)
            except InvalidValue as exc:
                rejected.append(str(exc))
                continue
            start = item.get("start_time_unix_secs")
            listed.append(ListedConversation(
                conversation_id=conversation_id,
                status=item.get("status") if isinstance(item.get("status"), str) else None,
                start_time_unix_secs=start if type(start) is int and 0 <= start <= MAX_SECONDS else None,
            ))
        cursor = body.get("next_cursor")
        return ConversationPage(conversations=listed,
                                next_cursor=cursor if isinstance(cursor, str) and cursor else None,
                                has_more=body.get("has_more") is True, rejected=rejected)

    # --- plumbing ------------------------------------------------------------

    def _stream(self, response: urllib3.BaseHTTPResponse, path: str, conversation_id: str,
                started: float) -> Iterator[bytes]:
        received = 0
        error = None
        attempt = 1
        try:
            while True:
                try:
                    skip = _resumed_at(response, received)
                    # Bounded by the window deadline its connection got when it was asked for.
                    for chunk in response.stream(AUDIO_CHUNK_BYTES):
                        if skip:  # a server that ignored Range: the bytes already passed on, again
                            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                        received += len(chunk)
                        if chunk:
                            yield chunk
                    return
                except (HTTPError, OSError) as exc:
                    reason = _network_reason(exc, self.total_timeout, streaming=True)
                    if attempt >= self.retry.attempts:
                        error = f"download interrupted after {received} bytes ({reason})"
                        raise ElevenLabsError(f"ElevenLabs get_audio: recording {error}, {attempt} attempts; "
                                              "a later run fetches it again", retryable=True) from None
                _done(response)
                self.retry.sleep(attempt)
                attempt += 1
                response = self._request("get_audio", path, conversation_id=conversation_id, stream=True,
                                         record_success=False, headers={"Range": f"bytes={received}-"})
        finally:
            _done(response)
            self.metrics(ApiCall("elevenlabs", "get_audio", response.status,
                                 elapsed_ms(started), bytes=received, error=error,
                                 conversation_id=conversation_id))

    def _request(self, operation: str, path: str, *, conversation_id: str | None = None,
                 params: dict | None = None, stream: bool = False, record_success: bool = True,
                 headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        url = self.base_url + path
        for attempt in range(1, self.retry.attempts + 1):
            self.throttle.wait()
            started = time.monotonic()
            try:
                # A stream (the recording) has a window instead: it may take
                # long, but must keep moving (see deadline.py).
                with deadline.limit(self.total_timeout, window=stream):
                    response = self._get(url, params, {**self.headers, **(headers or {})}, stream)
            except (HTTPError, OSError) as exc:
                reason = _network_reason(exc, self.total_timeout)
                self.metrics(ApiCall("elevenlabs", operation, None, elapsed_ms(started), error=reason,
                                     conversation_id=conversation_id))
                if attempt < self.retry.attempts:
                    self.retry.sleep(attempt)
                    continue
                raise ElevenLabsError(f"ElevenLabs {operation}: {reason} at {self.host} "
                                      f"(gave up after {attempt} attempts)", retryable=True) from None
            ok = response.status < 300
            if not ok or record_success:
                self.metrics(ApiCall("elevenlabs", operation, response.status, elapsed_ms(started),
                                     bytes=None if stream else len(response.data),
                                     error=None if ok else _detail(response, self.redact),
                                     conversation_id=conversation_id))
            if ok:
                return response
            if response.status == 429:
                self.throttle.limited(started)
            if response.status in RETRY_STATUSES and attempt < self.retry.attempts:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                _done(response)
                self.retry.sleep(attempt, retry_after)
                continue
            raise self._error(operation, response, attempt)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _get(self, url: str, params: dict | None, headers: dict[str, str],
             stream: bool) -> urllib3.BaseHTTPResponse:
        """One GET, following redirects as requests does; the key is never sent to another host."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self.pools.manager(url).request("GET", url, fields=params, headers=headers,
                                                       preload_content=not stream, redirect=False)
            location = response.get_redirect_location()
            if not location:
                return response
            _done(response)
            target = urljoin(url, location)
            if urlsplit(target)[:2] != urlsplit(url)[:2]:  # another host, port or scheme
                headers = {name: value for name, value in headers.items() if name.lower() != "xi-api-key"}
            url, params = target, None  # the query is in the Location given
        raise ElevenLabsError(f"ElevenLabs at {self.host} redirected more than {MAX_REDIRECTS} times; "
                              "check ELEVENLABS_BASE_URL")

    def _error(self, operation: str, response: urllib3.BaseHTTPResponse, attempts: int) -> ElevenLabsError:
        status = response.status
        detail = _detail(response, self.redact)
        hint = {
            401: "check ELEVENLABS_API_KEY and that it has the convai_read permission",
            403: "check ELEVENLABS_API_KEY's permissions",
            404: "check the conversation id and ELEVENLABS_BASE_URL (residency host)",
        }.get(status)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = f"ElevenLabs {operation} failed: HTTP {status}{tries}"
        if detail:
            message += f": {detail}"
        if hint:
            message += f" ({hint})"
        _done(response)
        return ElevenLabsError(message, status, retryable=status in RETRY_STATUSES)


def _done(response: urllib3.BaseHTTPResponse) -> None:
    """An answer finished with. Read to its end, its connection went back to the pool already;
    otherwise the connection is closed (another request cannot follow a half-read answer)."""
    if not response.isclosed():  # type: ignore[attr-defined]  # urllib3's HTTPResponse has it
        response.close()
    response.release_conn()


def _resumed_at(response: urllib3.BaseHTTPResponse, received: int) -> int:
    """How many bytes of this answer were passed on already: none on the first answer or a 206 from
    where the last one broke; all ``received`` when the server ignored Range and sent the whole file."""
    if not received:
        return 0
    if response.status == 206:
        found = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        start = int(found.group(1)) if found else 0
        if start > received:
            raise ElevenLabsError(f"ElevenLabs get_audio: asked for the recording from byte {received}, "
                                  f"got it from byte {start}; a later run fetches it again", retryable=True)
        return received - start
    return received


def _detail(response: urllib3.BaseHTTPResponse, redact: Callable[[str], str]) -> str:
    """ElevenLabs' error detail in either body shape, or the start of a non-JSON body.

    Scrubbed of secrets before it is cut short: a cut first could leave part of
    a key that the scrubber would no longer recognise.
    """
    try:
        body = loads(response.data or b"null")
    except BadJSON:
        text = " ".join(redact(response.data.decode("utf-8", "replace")).split())
        return text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        message = detail.get("message")
        text = ": ".join(str(p) for p in (code, message) if p)
    elif isinstance(detail, list):  # 422 validation errors
        text = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    elif isinstance(detail, str):
        text = detail
    else:
        text = ""
    text = " ".join(redact(text).split())
    return text if len(text) <= 300 else text[:299] + "…"


def _path_id(conversation_id: str) -> str:
    """The id as one URL path segment (validated already; quoted all the same)."""
    return quote(valid_conversation_id(conversation_id), safe="")


def _network_reason(exc: Exception, timeout: float, streaming: bool = False) -> str:
    if isinstance(exc, NewConnectionError):  # urllib3 files it under connect timeouts
        return "cannot connect"
    # Our deadline's TimeoutError, urllib3's read and connect timeouts.
    if isinstance(exc, (Urllib3Timeout, TimeoutError)):
        return f"timed out (FEDFINA_HTTP_TIMEOUT is {timeout:g} s)"
    if isinstance(exc, SSLError):
        return "TLS error"
    if streaming and isinstance(exc, (ProtocolError, OSError)):
        return "connection broken"
    if isinstance(exc, (HTTPError, OSError)):
        return "cannot connect"
    return type(exc).__name__
