"""The ElevenLabs Conversational AI client (requests).

Retries connection errors, timeouts, 408, 429 and 5xx with jittered
exponential backoff (Retry-After wins when present); never retries other 4xx.
Error messages carry the status and ElevenLabs' detail, never the key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

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
MAX_REDIRECTS = 30  # requests' own limit, named in the message


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


class _Session(requests.Session):
    """A requests session that reads the environment's proxy and CA settings once per host.

    requests reads them again for every request (about 0.5 ms of CPU each);
    they do not change during a run. Per host, as requests does, so NO_PROXY
    still applies to each host a request is redirected to.
    """

    def __init__(self):
        super().__init__()
        self._environments: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or verify is not None or cert is not None:  # set for this request: not cached
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream)
        if key not in self._environments:
            self._environments[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings = self._environments[key]
        return {**settings, "proxies": dict(settings["proxies"])}

    def rebuild_auth(self, prepared_request, response):
        """requests strips only Authorization on a redirect to another host: the key goes too."""
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            prepared_request.headers.pop("xi-api-key", None)


class _BoundedAdapter(requests.adapters.HTTPAdapter):
    """Connections whose calls keep to the deadline of deadline.limit()."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        deadline.bound_pool_manager(self.poolmanager)

    def proxy_manager_for(self, proxy, **kwargs):
        # A SOCKS manager's pools are SOCKS pools: bounding them (which swaps the pool
        # classes) would connect straight to ElevenLabs, past the proxy. Refused instead.
        if not proxy.lower().startswith(("http://", "https://")):
            raise ElevenLabsError(f"the proxy set in the environment for ElevenLabs ({urlsplit(proxy).scheme}://…) "
                                  "is not an http:// or https:// proxy; fix HTTPS_PROXY and HTTP_PROXY, "
                                  "or name the host in NO_PROXY")
        manager = super().proxy_manager_for(proxy, **kwargs)
        return deadline.bound_pool_manager(manager)


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
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self.session = _Session()
        self.session.max_redirects = MAX_REDIRECTS
        adapter = _BoundedAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"xi-api-key": api_key, "User-Agent": f"fedfina/{__version__}",
                                     "Accept": "application/json"})

    # --- the calls ---------------------------------------------------------

    def get_conversation(self, conversation_id: str) -> FetchedConversation:
        path = f"/v1/convai/conversations/{_path_id(conversation_id)}"
        response = self._request("get_conversation", path, conversation_id=conversation_id)
        try:
            payload = loads(response.content)
        except BadJSON as exc:
            # Not retryable: the same body would fail every later run (and hold sync's watermark).
            raise ElevenLabsError(f"ElevenLabs returned a conversation that cannot be read "
                                  f"(HTTP {response.status_code}): {exc}", response.status_code) from None
        return FetchedConversation(parse_conversation(payload), response.content)

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
            body = loads(response.content)
        except BadJSON as exc:
            raise ElevenLabsError(f"ElevenLabs returned an unreadable conversation list: {exc}",
                                  response.status_code, retryable=True) from None
        if not isinstance(body, dict) or not isinstance(body.get("conversations", []), list):
            raise ElevenLabsError("ElevenLabs returned an unreadable conversation list "
                                  "(no conversations array)", response.status_code, retryable=True)
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

    def _stream(self, response: requests.Response, path: str, conversation_id: str,
                started: float) -> Iterator[bytes]:
        received = 0
        error = None
        attempt = 1
        try:
            while True:
                try:
                    skip = _resumed_at(response, received)
                    for chunk in response.iter_content(AUDIO_CHUNK_BYTES):
                        if skip:  # a server that ignored Range: the bytes already passed on, again
                            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                        received += len(chunk)
                        if chunk:
                            yield chunk
                    return
                except requests.RequestException as exc:
                    reason = _network_reason(exc, self.total_timeout)
                    if attempt >= self.retry.attempts:
                        error = f"download interrupted after {received} bytes ({reason})"
                        raise ElevenLabsError(f"ElevenLabs get_audio: recording {error}, {attempt} attempts; "
                                              "a later run fetches it again", retryable=True) from None
                response.close()
                self.retry.sleep(attempt)
                attempt += 1
                response = self._request("get_audio", path, conversation_id=conversation_id, stream=True,
                                         record_success=False, headers={"Range": f"bytes={received}-"})
        finally:
            response.close()
            self.metrics(ApiCall("elevenlabs", "get_audio", response.status_code,
                                 elapsed_ms(started), bytes=received, error=error,
                                 conversation_id=conversation_id))

    def _request(self, operation: str, path: str, *, conversation_id: str | None = None,
                 params: dict | None = None, stream: bool = False, record_success: bool = True,
                 headers: dict[str, str] | None = None) -> requests.Response:
        url = self.base_url + path
        for attempt in range(1, self.retry.attempts + 1):
            self.throttle.wait()
            started = time.monotonic()
            try:
                # A stream (the recording) has a window instead: it may take
                # long, but must keep moving (see deadline.py).
                with deadline.limit(self.total_timeout, window=stream):
                    response = self.session.get(url, params=params, timeout=self.timeout, stream=stream,
                                                headers=headers)
            except requests.TooManyRedirects:
                raise ElevenLabsError(f"ElevenLabs at {self.host} redirected more than {MAX_REDIRECTS} times; "
                                      "check ELEVENLABS_BASE_URL") from None
            except requests.RequestException as exc:
                reason = _network_reason(exc, self.total_timeout)
                self.metrics(ApiCall("elevenlabs", operation, None, elapsed_ms(started), error=reason,
                                     conversation_id=conversation_id))
                if attempt < self.retry.attempts:
                    self.retry.sleep(attempt)
                    continue
                raise ElevenLabsError(f"ElevenLabs {operation}: {reason} at {self.host} "
                                      f"(gave up after {attempt} attempts)", retryable=True) from None
            ok = response.status_code < 300
            if not ok or record_success:
                self.metrics(ApiCall("elevenlabs", operation, response.status_code, elapsed_ms(started),
                                     bytes=None if stream else len(response.content),
                                     error=None if ok else _detail(response, self.redact),
                                     conversation_id=conversation_id))
            if ok:
                return response
            if response.status_code == 429:
                self.throttle.limited(started)
            if response.status_code in RETRY_STATUSES and attempt < self.retry.attempts:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                self.retry.sleep(attempt, retry_after)
                continue
            raise self._error(operation, response, attempt)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _error(self, operation: str, response: requests.Response, attempts: int) -> ElevenLabsError:
        status = response.status_code
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
        response.close()
        return ElevenLabsError(message, status, retryable=status in RETRY_STATUSES)


def _resumed_at(response: requests.Response, received: int) -> int:
    """How many bytes of this answer were passed on already: none on the first answer or a 206 from
    where the last one broke; all ``received`` when the server ignored Range and sent the whole file."""
    if not received:
        return 0
    if response.status_code == 206:
        found = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        start = int(found.group(1)) if found else 0
        if start > received:
            raise ElevenLabsError(f"ElevenLabs get_audio: asked for the recording from byte {received}, "
                                  f"got it from byte {start}; a later run fetches it again", retryable=True)
        return received - start
    return received


def _detail(response: requests.Response, redact: Callable[[str], str]) -> str:
    """ElevenLabs' error detail in either body shape, or the start of a non-JSON body.

    Scrubbed of secrets before it is cut short: a cut first could leave part of
    a key that the scrubber would no longer recognise.
    """
    try:
        body = loads(response.content or b"null")
    except BadJSON:
        text = " ".join(redact(response.content.decode("utf-8", "replace")).split())
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


def _network_reason(exc: requests.RequestException, timeout: float) -> str:

    # While a body is read, requests wraps a read timeout in ConnectionError:
    # it is still a timeout, not "cannot connect".
    if isinstance(exc, requests.Timeout) or any(isinstance(a, ReadTimeoutError) for a in exc.args):
        return f"timed out (FEDFINA_HTTP_TIMEOUT is {timeout:g} s)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    return type(exc).__name__

