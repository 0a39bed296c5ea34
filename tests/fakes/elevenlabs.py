"""A fake ElevenLabs Conversational AI API: the real paths, headers and error bodies."""

from __future__ import annotations

import base64
import json
import re
import time

from .http_base import FakeHTTPServer, Request, Response, json_response

CONVERSATION = re.compile(r"^/v1/convai/conversations/([^/]+)$")
AUDIO = re.compile(r"^/v1/convai/conversations/([^/]+)/audio$")
LIST = "/v1/convai/conversations"


class FakeElevenLabs(FakeHTTPServer):
    def __init__(self, api_key: str):
        super().__init__()
        self.api_key = api_key
        self.conversations: dict[str, dict] = {}
        self.audio: dict[str, bytes] = {}
        self.cut_audio_after: int | None = None  # bytes of the recording; then the connection drops
        self.cut_audio_times: int | None = None  # how many answers are cut so (None: every one)
        self.honour_range = True  # answer "Range: bytes=N-" with 206 and the rest, as the real API's CDN does
        self.page_cap = 100  # like the real API, never more per page than this
        self.delay = 0.0  # seconds before every conversation answer (bulk timing tests)
        self.audio_delay = 0.0  # seconds before every audio answer
        self.audio_sizes: dict[str, int] = {}  # generated audio of this many bytes, never held whole
        self.extra_list_items: list[dict] = []  # listed as they are (hostile or broken items)

    def add(self, payload: dict, audio: bytes | None = None) -> str:
        conversation_id = payload["conversation_id"]
        self.conversations[conversation_id] = payload
        if audio is not None:
            self.audio[conversation_id] = audio
        return conversation_id

    def route(self, request: Request) -> Response:
        if request.headers.get("xi-api-key") != self.api_key:
            return json_response({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, 401)
        if request.path == LIST:
            return self._list(request)
        if match := AUDIO.match(request.path):
            return self._audio(match.group(1), request.headers.get("range"))
        if match := CONVERSATION.match(request.path):
            if self.delay:
                time.sleep(self.delay)
            payload = self.conversations.get(match.group(1))
            if payload is None:
                return json_response({"detail": {"type": "not_found", "code": "conversation_not_found",
                                                 "message": "Conversation not found",
                                                 "status": "conversation_not_found",
                                                 "request_id": "req_fake"}}, 404)
            return json_response(payload)
        return json_response({"detail": "Not Found"}, 404)

    def _audio(self, conversation_id: str, range_header: str | None = None) -> Response:
        if self.audio_delay:
            time.sleep(self.audio_delay)
        if conversation_id in self.audio_sizes:
            size = self.audio_sizes[conversation_id]
            return Response(200, headers={"Content-Type": "audio/mpeg", "Content-Length": str(size)},
                            chunks=_generated(size))
        data = self.audio.get(conversation_id)
        if data is None:
            return json_response({"detail": {"status": "audio_not_found", "message": "Audio not found"}}, 404)
        start, status = 0, 200
        if range_header and self.honour_range and (found := re.fullmatch(r"bytes=(\d+)-", range_header)):
            start, status = int(found.group(1)), 206
        headers = {"Content-Type": "audio/mpeg", "Content-Length": str(len(data) - start)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        cut = self.cut_audio_after is not None and self.cut_audio_times != 0
        if not cut:
            return Response(status, headers=headers, chunks=_slices(data[start:], 64 * 1024))
        if self.cut_audio_times is not None:
            self.cut_audio_times -= 1
        return Response(status, headers=headers, chunks=_cut(data, start, self.cut_audio_after))

    def _list(self, request: Request) -> Response:
        items = [c for c in self.conversations.values()
                 if request.query.get("agent_id") in (None, c.get("agent_id"))]
        after = request.query.get("call_start_after_unix")
        if after is not None:
            items = [c for c in items if c["metadata"]["start_time_unix_secs"] > int(after)]
        items.sort(key=lambda c: c["metadata"]["start_time_unix_secs"], reverse=True)
        offset = int(json.loads(base64.b64decode(request.query["cursor"]))["offset"]) \
            if request.query.get("cursor") else 0
        size = min(int(request.query.get("page_size", 30)), self.page_cap)
        page = items[offset:offset + size]
        more = offset + size < len(items)
        cursor = base64.b64encode(json.dumps({"offset": offset + size}).encode()).decode() if more else None
        return json_response({
            "conversations": (self.extra_list_items if offset == 0 else []) + [{
                "agent_id": c.get("agent_id"), "conversation_id": c["conversation_id"],
                "start_time_unix_secs": c["metadata"]["start_time_unix_secs"],
                "call_duration_secs": c["metadata"].get("call_duration_secs", 0),
                "message_count": len(c.get("transcript") or []), "status": c["status"],
                "call_successful": (c.get("analysis") or {}).get("call_successful", "unknown"),
            } for c in page],
            "next_cursor": cursor,
            "has_more": more,
        })


def _slices(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _generated(size: int, chunk: int = 256 * 1024):
    block = b"ID3" + bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < size:
        piece = block[:min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def _cut(data: bytes, start: int, after: int):
    """From ``start``; the connection drops at byte ``after`` of the whole recording."""
    if start < after:
        yield data[start:after]
    raise ConnectionResetError("fake: connection dropped mid-stream")
