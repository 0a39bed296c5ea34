"""The ElevenLabs Conversational AI client (requests).

Retries connection errors, timeouts, 408, 429 and 5xx with jittered
exponential backoff (Retry-After wins when present); never retries other 4xx.
Error messages carry the status and ElevenLabs' detail, never the key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote, urlsplit

import requests

from . import __version__
from .conversation import AudioUnavailable, FetchedConversation, parse_conversation
from .errors import StageError
from .metrics import ApiCall, Metrics, elapsed_ms
from .retry import RetryPolicy, parse_retry_after

RETRY_STATUSES = {408, 429} | set(range(500, 600))
AUDIO_CHUNK_BYTES = 256 * 1024
CONNECT_TIMEOUT = 10.0


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


class ElevenLabsClient:
    def __init__(self, api_key: str, base_url: str, metrics: Metrics,
                 retry: RetryPolicy = RetryPolicy(), read_timeout: float = 30.0, pool_size: int = 16):
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.metrics = metrics
        self.retry = retry
        self.timeout = (CONNECT_TIMEOUT, read_timeout)
        self.session = _Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"xi-api-key": api_key, "User-Agent": f"fedfina/{__version__}",
                                     "Accept": "application/json"})

    # --- the calls ---------------------------------------------------------

    def get_conversation(self, conversation_id: str) -> FetchedConversation:
        path = f"/v1/convai/conversations/{quote(conversation_id)}"
        response = self._request("get_conversation", path, conversation_id=conversation_id)
        try:
            payload = response.json()
            conversation = parse_conversation(payload)
        except ValueError:
            raise ElevenLabsError(f"ElevenLabs returned a body that is not JSON for {conversation_id} "
                                  f"(HTTP {response.status_code})", response.status_code,
                                  retryable=True) from None
        return FetchedConversation(conversation, response.content)

    def audio_chunks(self, conversation_id: str) -> Iterator[bytes]:
        """Stream the MP3 straight through; never holds the whole file."""
        path = f"/v1/convai/conversations/{quote(conversation_id)}/audio"
        started = time.monotonic()
        try:
            response = self._request("get_audio", path, conversation_id=conversation_id, stream=True,
                                     record_success=False)
        except ElevenLabsError as exc:
            raise AudioUnavailable(f"ElevenLabs did not return the audio ({exc})") from None
        return self._stream(response, conversation_id, started)

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
            body = response.json()
            items = body.get("conversations") or []
        except (ValueError, AttributeError):
            raise ElevenLabsError("ElevenLabs returned an unreadable conversation list",
                                  response.status_code, retryable=True) from None
        return ConversationPage(
            conversations=[
                ListedConversation(
                    conversation_id=str(item.get("conversation_id")),
                    status=item.get("status"),
                    start_time_unix_secs=item.get("start_time_unix_secs")
                    if isinstance(item.get("start_time_unix_secs"), int) else None,
                )
                for item in items if isinstance(item, dict) and item.get("conversation_id")
            ],
            next_cursor=body.get("next_cursor") or None,
            has_more=bool(body.get("has_more")),
        )

    # --- plumbing ------------------------------------------------------------

    def _stream(self, response: requests.Response, conversation_id: str, started: float) -> Iterator[bytes]:
        received = 0
        error = None
        try:
            for chunk in response.iter_content(AUDIO_CHUNK_BYTES):
                received += len(chunk)
                yield chunk
        except requests.RequestException as exc:
            error = f"download interrupted after {received} bytes ({type(exc).__name__})"
            raise AudioUnavailable(error) from None
        finally:
            response.close()
            self.metrics(ApiCall("elevenlabs", "get_audio", response.status_code,
                                 elapsed_ms(started), bytes=received, error=error,
                                 conversation_id=conversation_id))

    def _request(self, operation: str, path: str, *, conversation_id: str | None = None,
                 params: dict | None = None, stream: bool = False,
                 record_success: bool = True) -> requests.Response:
        url = self.base_url + path
        for attempt in range(1, self.retry.attempts + 1):
            started = time.monotonic()
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=stream)
            except requests.RequestException as exc:
                reason = _network_reason(exc)
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
                                     error=None if ok else _detail(response),
                                     conversation_id=conversation_id))
            if ok:
                return response
            if response.status_code in RETRY_STATUSES and attempt < self.retry.attempts:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                self.retry.sleep(attempt, retry_after)
                continue
            raise self._error(operation, response, attempt)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _error(self, operation: str, response: requests.Response, attempts: int) -> ElevenLabsError:
        status = response.status_code
        detail = _detail(response)
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


def _detail(response: requests.Response) -> str:
    """ElevenLabs' error detail in either body shape, or the start of a non-JSON body."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        text = response.content[:200].decode("utf-8", "replace").strip()
        return " ".join(text.split())
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        message = detail.get("message")
        return ": ".join(str(p) for p in (code, message) if p)
    if isinstance(detail, list):  # 422 validation errors
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    if isinstance(detail, str):
        return detail
    return ""


def _network_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    return type(exc).__name__

