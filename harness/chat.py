"""The one OpenAI-compatible `/chat/completions` client: the openai target, the judge, the
LLM caller and the sim's live-model mode all send their chat bodies through `ChatClient`.

One client means one behaviour everywhere:

- streamed (SSE, when the body says `"stream": true`) and whole answers, with the turn's
  timing (first content token, whole answer), the model, the system fingerprint, the
  usage and the response headers (a gateway's `x-litellm-*` routing headers) on the
  `ChatResult`;
- every failure an `InfraError` naming the endpoint, mapped in `harness.httpclient` (a
  429 or 503 carries its Retry-After, LiteLLM's `llm_provider-retry-after` included); a
  base URL that is not http(s) is a `ConfigError` when the client is made;
- one `Masker` that blanks the API key and every credential header out of every error
  line and every text the client hands back, whatever the status (a 200 that echoes the
  key included);
- an optional `RetryPolicy` (the judge and the LLM caller retry here; a target's
  requests are retried by the runner, through `CallContext.request`, so a target's client
  has none) and an optional bound on requests in flight.

The streamed path is the harness's hot path (one request per turn of every call): it
adds nothing per event beyond decoding it.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from .errors import ConfigError, InfraError
from .tracing import chat_request
from .httpclient import (Masker, RetryPolicy, Session, SSEDecoder, excerpt, loads, merge_headers, parse_json,
                         rate_limit_wait, safe_endpoint, status_error)

__all__ = ["HINT_404", "ChatClient", "ChatResult"]

HINT_404 = "is base_url the API root that holds /chat/completions, usually ending in /v1?"
_DEFAULT_HEADERS = {"Content-Type": "application/json"}


@dataclass(slots=True)
class ChatResult:
    """One answer: its text, what the endpoint says about itself, and how long it took."""

    text: str
    model: str | None = None
    fingerprint: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    first_token_ms: float | None = None  # streamed answers only
    total_ms: float = 0.0
    finish_reason: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # names compared without case
    data: dict[str, Any] | None = None  # the decoded body of a whole (not streamed) answer, as it came

    @property
    def tokens_in(self) -> int | None:
        return _int(self.usage.get("prompt_tokens"))

    @property
    def tokens_out(self) -> int | None:
        return _int(self.usage.get("completion_tokens"))


class ChatClient:
    """POSTs chat bodies to `<base_url>/chat/completions` over one reused connection pool.

    - `api_key` is sent as a Bearer token (it replaces a user's Authorization header);
      `headers` are sent with every request, a user's Content-Type over ours.
    - `timeout_s` bounds connecting (at most 10 s) and each wait for bytes.
    - `retry`: retry transient failures here (None: the caller retries, as the runner does
      for targets). `max_in_flight`: at most that many requests at once, the others wait
      before their clock starts. `on_request` is told of every request sent, retries
      included (the judge meters its calls there).
    - `json_mode_fallback`: an endpoint that answers 400 naming `response_format` has no
      JSON mode: the body is sent again without it, and so are all later ones.
    - `who` names the answer in protocol errors ("the judge's answer").

    Made before the event loop runs; the HTTP session opens inside it on first use (or at
    `open()`). Close it with `await client.aclose()`.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, headers: Mapping[str, str] | None = None,
                 timeout_s: float, max_connections: int, retry: RetryPolicy | None = None,
                 max_in_flight: int | None = None, on_request: Callable[[], None] | None = None,
                 json_mode_fallback: bool = False, who: str = "the answer"):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url {safe_endpoint(base_url) or base_url[:40]!r}: expected an http:// or "
                              "https:// URL such as http://127.0.0.1:8000/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.endpoint = safe_endpoint(self.url)  # credentials stripped: this one goes into errors
        user = dict(headers or {})
        if api_key:  # the key wins over a user's Authorization header
            user = {k: v for k, v in user.items() if k.lower() != "authorization"}
            user["Authorization"] = f"Bearer {api_key}"
        self.headers = merge_headers(_DEFAULT_HEADERS, user)
        self.mask = Masker.of(api_key, self.headers, base_url)
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.retry = retry
        self.max_in_flight = max_in_flight
        self.on_request = on_request
        self.json_mode_fallback = json_mode_fallback
        self.who = who
        self.json_mode = True  # False once the endpoint has refused response_format
        self._gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._session: Session | None = None
        self._hold_until = 0.0  # monotonic time before which the endpoint said its limit is used up

    # --- the surface ----------------------------------------------------------------------

    def open(self) -> "ChatClient":
        """Open the HTTP session now, in the running loop (the first one imports aiohttp), so
        that never counts as a request's latency."""
        if self._session is None:
            self._session = Session(timeout=self.timeout_s, max_connections=self.max_connections,
                                    headers=self.headers).open()
        return self

    async def complete(self, body: dict[str, Any]) -> ChatResult:
        """The answer to `body`, retried under the client's policy if it has one."""
        if self.retry is None:
            return await self.send(body)
        return await self.retry.run(lambda: self.send(body))

    @chat_request  # a client span per request when the run is traced
    async def send(self, body: dict[str, Any]) -> ChatResult:
        """One request (one more if the endpoint refuses JSON mode), no retries."""
        if self._gate is None:
            return await self._send(body)
        async with self._gate:
            return await self._send(body)

    def complete_blocking(self, body: dict[str, Any]) -> ChatResult:
        """`complete`, for synchronous code, on a connection pool of its own in a worker thread
        (this client's pool belongs to its event loop)."""
        from concurrent.futures import ThreadPoolExecutor

        async def once() -> ChatResult:
            clone = copy.copy(self)
            clone._session = clone._gate = None
            try:
                return await clone.complete(body)
            finally:
                self.json_mode = self.json_mode and clone.json_mode
                await clone.aclose()

        with ThreadPoolExecutor(1, thread_name_prefix="chat-blocking") as pool:
            return pool.submit(asyncio.run, once()).result()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    # --- one request ------------------------------------------------------------------------

    async def _send(self, body: dict[str, Any]) -> ChatResult:
        if self._hold_until:  # the last answer said the rate limit was used up: wait for its reset
            wait = self._hold_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, self.timeout_s / 2))
        if not self.json_mode and "response_format" in body:
            body = {k: v for k, v in body.items() if k != "response_format"}
        session = self._session or self.open()._session
        assert session is not None
        if self.on_request is not None:
            self.on_request()
        payload = to_json(body)  # UTF-8 as it is, like json.dumps(ensure_ascii=False)
        json_mode = "response_format" in body
        try:
            if body.get("stream"):
                return await self._streamed(session, payload, json_mode)
            return await self._whole(session, payload, json_mode)
        except _RefusesJsonMode:
            self.json_mode = False
            return await self._send(body)
        except InfraError as e:
            raise self.mask.error(e) from None

    def _pace(self, headers: Mapping[str, str]) -> None:
        """Slow down before the 429: an answer saying no requests remain holds the next ones
        back until the limit resets (`x-ratelimit-remaining-requests` / `-reset-requests`)."""
        wait = rate_limit_wait(headers)
        if wait:
            self._hold_until = max(self._hold_until, time.monotonic() + wait)

    async def _whole(self, session: Session, payload: bytes, json_mode: bool) -> ChatResult:
        t0 = time.perf_counter()
        resp = await session.send("POST", self.url, payload, endpoint=self.endpoint)
        try:
            content = await resp.read()
        finally:
            await resp.aclose()
        total_ms = (time.perf_counter() - t0) * 1000
        self._pace(resp.headers)
        self._raise_for_status(resp.status, resp.headers, content, json_mode)
        data = parse_json(content, self.endpoint, redact=self.mask)
        try:
            message = data["choices"][0]["message"]
            text = message.get("content") or ""
            finish = data["choices"][0].get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise InfraError("protocol", f"{self.who} has no choices[0].message: {excerpt(content, redact=self.mask)}",
                             endpoint=self.endpoint, retryable=True) from None
        usage = data.get("usage")
        return ChatResult(self._masked(str(text)), _str(data.get("model")), _str(data.get("system_fingerprint")),
                          usage if isinstance(usage, dict) else {}, None, total_ms, _str(finish), resp.headers, data)

    async def _streamed(self, session: Session, payload: bytes, json_mode: bool) -> ChatResult:
        t0 = time.perf_counter()
        first_ms: float | None = None
        parts: list[str] = []
        model = fingerprint = finish = None
        usage: dict[str, Any] = {}
        done = False
        decoder = SSEDecoder()
        resp = await session.send("POST", self.url, payload, endpoint=self.endpoint)
        self._pace(resp.headers)
        try:
            if resp.status >= 300:
                self._raise_for_status(resp.status, resp.headers, await resp.read(), json_mode)
            async for chunk in resp.iter_bytes():
                for data in decoder.feed(chunk):
                    if data == b"[DONE]":
                        done = True
                        continue
                    event = self._event(data)
                    model = event.get("model") or model
                    fingerprint = event.get("system_fingerprint") or fingerprint
                    if event.get("usage"):
                        usage = event["usage"]
                    for choice in event.get("choices") or ():
                        if choice.get("index", 0) != 0:
                            continue
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            if first_ms is None:
                                first_ms = (time.perf_counter() - t0) * 1000
                            parts.append(text)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
        finally:
            await resp.aclose()
        for data in decoder.flush():
            done = done or data == b"[DONE]"
        if not (done or finish):
            raise InfraError("protocol", "the stream ended before [DONE]", endpoint=self.endpoint, retryable=True)
        total_ms = (time.perf_counter() - t0) * 1000
        return ChatResult(self._masked("".join(parts)), _str(model), _str(fingerprint),
                          usage if isinstance(usage, dict) else {}, first_ms, total_ms, _str(finish), resp.headers)

    def _event(self, data: bytes) -> dict[str, Any]:
        try:
            event = loads(data)
        except ValueError:  # invalid UTF-8 is one too
            raise InfraError("protocol", f"a stream event is not valid JSON: {excerpt(data, redact=self.mask)}",
                             endpoint=self.endpoint, retryable=True) from None
        if not isinstance(event, dict):
            raise InfraError("protocol", f"a stream event is not a JSON object: {excerpt(data, redact=self.mask)}",
                             endpoint=self.endpoint, retryable=True)
        if event.get("error"):
            # gateways report an upstream failure mid-stream this way
            err = event["error"]
            detail = err.get("message") if isinstance(err, dict) else err
            raise InfraError("server_error", f"error in the stream: {excerpt(str(detail), redact=self.mask)}",
                             endpoint=self.endpoint)
        return event

    def _raise_for_status(self, status: int, headers: Mapping[str, str], content: bytes, json_mode: bool) -> None:
        if status < 300:
            return
        if status == 400 and json_mode and self.json_mode_fallback and b"response_format" in content:
            raise _RefusesJsonMode
        err = status_error(status, headers, content, self.endpoint, redact=self.mask, hint_404=HINT_404)
        if err is not None:
            raise err

    def _masked(self, text: str) -> str:
        return self.mask(text) if self.mask.secrets else text


class _RefusesJsonMode(Exception):
    """The endpoint answered 400 naming response_format: it has no JSON mode."""


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
