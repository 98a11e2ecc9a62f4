"""The `openai` target: any OpenAI-compatible chat completions endpoint.

OpenAI itself, a LiteLLM gateway with fallback models, vLLM, Ollama: anything that serves
`POST {base_url}/chat/completions`. `base_url` is the API root that holds
`/chat/completions`, exactly as in the openai SDK (so usually ending in `/v1`).

A call is a chat: the system prompt, then the caller's turns as user messages and the
model's answers as assistant messages, carried across turns. Silence is sent as the text
"(silence)" and keypad digits as "(keypad: 123)", so a text model sees what a phone agent
would hear.

Structured state: when a reply is a JSON object (bare or in a ```json fenced block) with a
string `reply` key, `reply` is the spoken text and the other keys (`intent`, `slots`,
`transferred`, `transfer_reason`, `ended`) are the turn's state, from which the call's
outcome is built. Ask for it in the system prompt, optionally with `response_format`.

Streaming (the default) records the time to the first content token as well as the whole
answer, and asks for usage in the final chunk (`stream_options.include_usage`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import to_json

from ..errors import ConfigError, InfraError
from ..httpclient import Session, SSEDecoder, excerpt, loads, parse_json, safe_endpoint, status_error
from ..records import AgentReply, Outcome
from ..spec import CaseSpec
from ._replystate import ends_call, outcome_from, split_structured
from .base import CallContext, Conversation, Target, TargetConfig, register
from .pricing import Price, cost_of

HINT_404 = "is base_url the API root that holds /chat/completions, usually ending in /v1?"


class OpenAIConfig(TargetConfig):
    """Settings of the `openai` target."""

    base_url: str = Field(description="API root that holds /chat/completions, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1)
    api_key: SecretStr | None = Field(default=None, description="sent as a Bearer token; write ${ENV_VAR}")
    system_prompt: str | None = None
    system_prompt_file: str | None = Field(default=None, description="path relative to the project root")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stream: bool = True
    include_usage: bool = Field(default=True, description="ask for usage in the last chunk when streaming")
    response_format: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (never recorded)")
    prices: dict[str, Price] = Field(default_factory=dict, description="model → USD per million tokens")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL such as http://127.0.0.1:8000/v1")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _one_prompt(self) -> "OpenAIConfig":
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise ValueError("give system_prompt or system_prompt_file, not both")
        return self


def caller_message(text: str, kind: str) -> str:
    """What a text model is told for one caller turn."""
    if kind == "silence":
        return "(silence)"
    if kind == "dtmf":
        return f"(keypad: {text})"
    return text


@register
class OpenAITarget(Target):
    kind = "openai"
    config_model = OpenAIConfig
    description = "an OpenAI-compatible chat completions endpoint (OpenAI, LiteLLM, vLLM, Ollama, …)"
    config: OpenAIConfig

    def __init__(self, config: OpenAIConfig, *, root: str | None = None):
        super().__init__(config)
        self.endpoint = f"{config.base_url}/chat/completions"
        self.safe_endpoint = safe_endpoint(self.endpoint)
        self._session: Session | None = None
        self._root = "."
        self._system: str | None = config.system_prompt
        self._system_loaded = config.system_prompt_file is None
        if root is not None:
            self.root = root

    # --- configuration ---------------------------------------------------------------

    @property
    def root(self) -> str:
        """The project root `system_prompt_file` is read from; setting it reads the file now,
        so a missing prompt is a configuration error before the run, not one per call."""
        return self._root

    @root.setter
    def root(self, value: str) -> None:
        self._root = str(value)
        if self.config.system_prompt_file is not None:
            self._system = self._read_system_prompt()
            self._system_loaded = True

    def _read_system_prompt(self) -> str:
        rel = self.config.system_prompt_file or ""
        path = rel if os.path.isabs(rel) else os.path.join(self._root, rel)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            raise ConfigError(f"target.system_prompt_file: file not found: {rel} (looked in {self._root})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"target.system_prompt_file: cannot read {rel}: {e}") from None

    @property
    def system_prompt(self) -> str | None:
        if not self._system_loaded:
            self._system = self._read_system_prompt()
            self._system_loaded = True
        return self._system

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "base_url": safe_endpoint(self.config.base_url),
                               "model": self.config.model, "stream": self.config.stream}
        for key in ("temperature", "seed", "max_tokens"):
            if getattr(self.config, key) is not None:
                out[key] = getattr(self.config, key)
        if self.config.system_prompt_file:
            out["system_prompt_file"] = self.config.system_prompt_file
        return out

    # --- the surface ------------------------------------------------------------------------

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        system = self.system_prompt
        messages = [{"role": "system", "content": system}] if system else []
        return OpenAIConversation(self, ctx, messages)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    # --- one request -------------------------------------------------------------------------

    def session(self) -> Session:
        """The target's one HTTP session, reused for every call; connections open on first use."""
        if self._session is None:
            headers = dict(self.config.headers)
            if self.config.api_key is not None:  # the key wins over a user's Authorization header
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
            # opened now, in the event loop: a request's clock starts after this (Session.open)
            self._session = Session.for_target(self.config.limits, headers, {"Content-Type": "application/json"}).open()
        return self._session

    def payload(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        c = self.config
        body: dict[str, Any] = {"model": c.model, "messages": messages, "stream": c.stream}
        if c.stream and c.include_usage:
            body["stream_options"] = {"include_usage": True}
        for key in ("temperature", "max_tokens", "seed", "response_format"):
            value = getattr(c, key)
            if value is not None:
                body[key] = value
        return body

    def _redact(self) -> tuple[str, ...]:
        key = self.config.api_key
        return (key.get_secret_value(),) if key is not None else ()

    async def complete(self, messages: list[dict[str, Any]]) -> tuple[str, AgentReply]:
        """One chat completion: (the raw assistant content, the reply as the harness sees it)."""
        body = to_json(self.payload(messages))  # UTF-8 as it is, like json.dumps(ensure_ascii=False)
        if self.config.stream:
            return await self._streamed(body)
        return await self._whole(body)

    async def _whole(self, body: bytes) -> tuple[str, AgentReply]:
        session = self.session()  # before the clock starts: the first one imports aiohttp
        t0 = time.perf_counter()
        resp = await session.send("POST", self.endpoint, body, endpoint=self.safe_endpoint)
        try:
            content_bytes = await resp.read()
        finally:
            await resp.aclose()
        total_ms = (time.perf_counter() - t0) * 1000
        self._raise_for_status(resp.status, resp.headers, content_bytes)
        data = parse_json(content_bytes, self.safe_endpoint)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise InfraError("protocol", f"the response has no choices[0].message: {excerpt(content_bytes)}",
                             endpoint=self.safe_endpoint, retryable=False) from None
        content = message.get("content") or ""
        usage = data.get("usage") or {}
        return content, self._reply(content, None, total_ms, data.get("model"), data.get("system_fingerprint"),
                                    usage)

    async def _streamed(self, body: bytes) -> tuple[str, AgentReply]:
        session = self.session()  # before the clock starts: the first one imports aiohttp
        t0 = time.perf_counter()
        first_ms: float | None = None
        parts: list[str] = []
        model = fingerprint = None
        usage: dict[str, Any] = {}
        done = finished = False
        decoder = SSEDecoder()
        resp = await session.send("POST", self.endpoint, body, endpoint=self.safe_endpoint)
        try:
            if resp.status >= 300:
                self._raise_for_status(resp.status, resp.headers, await resp.read())
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
                            finished = True
        finally:
            await resp.aclose()
        for data in decoder.flush():
            done = done or data == b"[DONE]"
        if not (done or finished):
            raise InfraError("protocol", "the stream ended before [DONE]", endpoint=self.safe_endpoint,
                             retryable=True)
        total_ms = (time.perf_counter() - t0) * 1000
        content = "".join(parts)
        return content, self._reply(content, first_ms, total_ms, model, fingerprint, usage)

    def _event(self, data: bytes) -> dict[str, Any]:
        try:
            event = loads(data)
        except ValueError:  # invalid UTF-8 is one too
            raise InfraError("protocol", f"a stream event is not valid JSON: {excerpt(data)}",
                             endpoint=self.safe_endpoint, retryable=True) from None
        if not isinstance(event, dict):
            raise InfraError("protocol", f"a stream event is not a JSON object: {excerpt(data)}",
                             endpoint=self.safe_endpoint, retryable=True)
        if event.get("error"):
            # gateways report an upstream failure mid-stream this way
            err = event["error"]
            detail = err.get("message") if isinstance(err, dict) else err
            raise InfraError("server_error", f"error in the stream: {excerpt(str(detail), redact=self._redact())}",
                             endpoint=self.safe_endpoint)
        return event

    def _raise_for_status(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        err = status_error(status, headers, body, self.safe_endpoint, redact=self._redact(), hint_404=HINT_404)
        if err is not None:
            raise err

    def _reply(self, content: str, first_ms: float | None, total_ms: float, model: str | None,
               fingerprint: str | None, usage: dict[str, Any]) -> AgentReply:
        tokens_in = usage.get("prompt_tokens")
        tokens_out = usage.get("completion_tokens")
        text, state = content, {}
        structured = split_structured(content)
        if structured is not None:
            text, state = structured
        return AgentReply(
            text=text,
            first_token_ms=first_ms,
            total_ms=total_ms,
            model=model,
            fingerprint=fingerprint,
            route="primary",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost_of(self.config.prices, (model, self.config.model), tokens_in, tokens_out),
            state=state,
            ended=ends_call(state),
        )


class OpenAIConversation(Conversation):
    """One call: the message history grows by a user and an assistant message per turn."""

    def __init__(self, target: OpenAITarget, ctx: CallContext, messages: list[dict[str, Any]]):
        self.target = target
        self.ctx = ctx
        self.messages = messages
        self.replies: list[AgentReply] = []

    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        user = {"role": "user", "content": caller_message(caller, kind)}
        attempts = 0

        async def attempt() -> tuple[str, AgentReply]:
            nonlocal attempts
            attempts += 1
            return await self.target.complete([*self.messages, user])

        content, reply = await self.ctx.request(attempt, what=f"chat completion ({self.target.safe_endpoint})")
        reply.attempts = attempts
        # the model sees its own raw answer (JSON envelope included) on the next turn
        self.messages += [user, {"role": "assistant", "content": content}]
        self.replies.append(reply)
        return reply

    async def close(self) -> Outcome:
        return outcome_from(self.replies)
