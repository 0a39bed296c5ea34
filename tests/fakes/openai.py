"""A fake OpenAI Chat Completions server: the real path, auth header and error bodies.

By default it answers with a valid summary built from the transcript it was
given, so tests can check that the whole transcript reached the model.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time

from .http_base import FakeHTTPServer, Request, Response, json_response


class FakeOpenAI(FakeHTTPServer):
    def __init__(self, api_key: str):
        super().__init__()
        self.api_key = api_key
        self.replies: list[str] = []  # scripted message contents, used before the default
        self.reject_json_schema = False  # like servers without structured output
        # Answer as another OpenAI-compatible server does (see _as_flavour): "vllm", "llama.cpp",
        # "ollama" (structured output supported), "llama-cpp-python", "tgi", "invalid-request",
        # "fenced" (ignores response_format, fences its JSON).
        self.flavour = "openai"
        self.delay = 0.0  # seconds per completion (benchmarks)
        self.models: set[str] | None = None  # the models it has (None: any)
        self.serves_model_lookup = True  # False: like gateways without GET /models/{id}
        self.quota_exhausted = False  # 429 insufficient_quota, as for an account out of credit
        self.accepted: list[float] = []  # arrival times of the completions answered (rate limit)
        self.refused = 0  # completions answered 429
        self.in_flight = self.most_in_flight = 0  # completions being answered at once
        self._bucket: TokenBucket | None = None

    def limit_rate(self, per_second: float | None) -> None:
        """Allow ``per_second`` completions a second (a one-second burst), 429 beyond, as OpenAI
        does; None lifts the limit."""
        self._bucket = TokenBucket(per_second) if per_second else None

    def completions(self) -> list[dict]:
        return [json.loads(r.body) for r in self.requests if r.path.endswith("/chat/completions")]

    def route(self, request: Request) -> Response:
        if request.path.startswith("/openai/"):
            return self._azure(request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return json_response({"error": {"message": "Incorrect API key provided.", "type":
                                            "invalid_request_error", "code": "invalid_api_key"}}, 401)
        if request.path.startswith("/v1/models/") and self.serves_model_lookup:
            model = request.path.rsplit("/", 1)[1]
            if self.models is not None and model not in self.models:
                return json_response({"error": {"message": f"The model '{model}' does not exist",
                                                "type": "invalid_request_error", "param": "model",
                                                "code": "model_not_found"}}, 404)
            return json_response({"id": model, "object": "model", "owned_by": "fake"})
        if request.path != "/v1/chat/completions":
            return json_response({"error": {"message": "Not found", "type": "invalid_request_error"}}, 404)
        return self._completion(request)

    def _azure(self, request: Request) -> Response:
        """Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=…, key in `api-key`."""
        if request.headers.get("api-key") != self.api_key:
            return json_response({"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                            "key or wrong API endpoint. Make sure to provide a valid key for an "
                                            "active subscription and use a correct regional API endpoint for your "
                                            "resource."}}, 401)
        found = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", request.path)
        if not request.query.get("api-version"):
            return json_response({"error": {"code": "404", "message": "Resource not found"}}, 404)
        if found is None or (self.models is not None and found.group(1) not in self.models):
            return json_response({"error": {"code": "DeploymentNotFound", "message": "The API deployment for "
                                            "this resource does not exist. If you created the deployment within "
                                            "the last 5 minutes, please wait a moment and try again."}}, 404)
        return self._completion(request)

    def _completion(self, request: Request) -> Response:
        if self.quota_exhausted:
            return json_response({"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}, 429)
        if self._bucket is not None:
            wait = self._bucket.take()
            if wait:
                with self._lock:
                    self.refused += 1
                limit = round(self._bucket.rate * 60)
                return json_response({"error": {
                    "message": f"Rate limit reached for gpt-bench in organization org-fake on requests per "
                               f"min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in "
                               f"{wait * 1000:.0f}ms.",
                    "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, 429,
                    headers={"Retry-After": str(math.ceil(wait)),
                             "x-ratelimit-limit-requests": str(limit)})
            with self._lock:
                self.accepted.append(request.at)
        body = json.loads(request.body)
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        refusal = self._as_flavour(body)
        if refusal is not None:
            return refusal
        if self.reject_json_schema and body.get("response_format", {}).get("type") == "json_schema":
            return json_response({"error": {
                "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                           "with this model.", "type": "invalid_request_error", "param": "response_format",
                "code": None}}, 400)
        content = self.replies.pop(0) if self.replies else json.dumps(summary_for(body), ensure_ascii=False)
        if self.flavour == "fenced":
            content = f"Here is the summary you asked for:\n\n```json\n{content}\n```\nLet me know if you need more."
        return json_response({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1763451800,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        })


    def _as_flavour(self, body: dict) -> Response | None:
        """The refusal of response_format each server gives (status and body as they send them)."""
        kind = (body.get("response_format") or {}).get("type")
        if self.flavour == "llama-cpp-python" and kind not in (None, "text", "json_object"):
            # Its route handler turns the request model's validation error into a 500.
            detail = [{"type": "literal_error", "loc": ("body", "response_format", "type"),
                       "msg": "Input should be 'text' or 'json_object'", "input": kind,
                       "ctx": {"expected": "'text' or 'json_object'"}}]
            return json_response({"error": {"message": str(detail), "type": "internal_server_error",
                                            "param": None, "code": None}}, 500)
        if self.flavour == "tgi" and kind not in (None, "json", "regex"):
            return json_response({"error": f"Failed to deserialize the JSON body into the target type: "
                                           f"response_format.type: unknown variant `{kind}`, expected `json` or "
                                           f"`regex` at line 1 column 52", "error_type": "validation"}, 422)
        if self.flavour == "invalid-request" and kind == "json_schema":
            return json_response({"error": {"message": "Invalid request", "type": "invalid_request_error",
                                            "param": None, "code": None}}, 400)
        return None


def summary_for(body: dict) -> dict:
    """A valid summary that reflects what was sent: amounts and line count of the user message."""
    system = body["messages"][0]["content"]
    text = body["messages"][-1]["content"]
    inside = re.search(r"<(transcript|summaries)>\n(.*)\n</\1>", text, re.DOTALL)
    text = inside.group(2) if inside else text  # what the model is given to read
    lines = [line for line in text.splitlines() if line.strip()]
    amounts = re.findall(r"₹\d+(?:,\d+)*", text)
    merging = "summaries of consecutive parts" in system
    return {
        "title": "Merged summary" if merging else "Loan interview summary",
        # Words, not a count: a count the transcript never says would be an unsupported figure.
        "overview": "Summary of the transcript." if lines else "Summary of an empty transcript.",
        "sections": [{"heading": "Loan request", "points": amounts or ["No amounts stated."]}],
        "action_items": ["Verify the stated figures."],
        "sentiment": "positive",
        "language": "Hindi and English" if re.search(r"[\u0900-\u097F]", text) else "English",
    }


class TokenBucket:
    """``rate`` tokens a second, at most a second's worth saved up (and at least one)."""

    def __init__(self, rate: float, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, max(rate, 1.0), clock
        self.tokens, self.at = self.burst, clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate
