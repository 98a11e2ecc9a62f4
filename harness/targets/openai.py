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
answer, and asks for usage in the final chunk (`stream_options.include_usage`). The requests
go through the shared chat client (`harness.chat`); the runner retries them.

Behind a gateway (`gateway:`, LiteLLM's response headers by default) each turn records what
actually served it: the route (`fallback` when the gateway fell back to another model group),
the deployment (the upstream model name and the host of its API base, never a key), the
upstream attempts and the gateway's cost. The deployment, not the alias in `model:`, is the
model identity drift is judged on, and it reads the same streamed or not. A gateway's refusal
of our own configuration (an unknown model alias, a rejected key) stops the run as a
configuration error; a 5xx whose body says every upstream failed counts towards the breaker.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ..chat import HINT_404, ChatClient, ChatResult
from ..errors import ConfigError, InfraError
from ..httpclient import safe_endpoint
from ..records import AgentReply, Outcome
from ..spec import CaseSpec
from ._replystate import ends_call, outcome_from, service_version_of, split_structured
from .base import CallContext, Conversation, Target, TargetConfig, register
from .pricing import Price, cost_of

__all__ = ["HINT_404", "OpenAIConfig", "OpenAITarget", "caller_message"]


class GatewayHeaders(BaseModel):
    """Which response headers name the deployment that served (LiteLLM's by default; rename them
    for another gateway, or `kind: none` to read none)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["litellm", "none"] = "litellm"
    model_name: str = "x-litellm-model-name"
    model_id: str = "x-litellm-model-id"
    api_base: str = "x-litellm-model-api-base"
    model_group: str = "x-litellm-model-group"
    attempted_fallbacks: str = "x-litellm-attempted-fallbacks"
    attempted_retries: str = "x-litellm-attempted-retries"
    response_cost: str = "x-litellm-response-cost"


# A gateway's 5xx whose body says its upstreams failed (LiteLLM names the provider's exception
# and whether the fallbacks failed too): the service behind it is down, not just slow.
_UPSTREAM_DOWN = re.compile(r"litellm\.\w*(?:InternalServerError|ServiceUnavailableError|APIConnectionError|Timeout)"
                            r"|No deployments available|[Ff]allback to \S+ also failed")
# A 400/404 that names the model: the endpoint does not know the alias we sent.
_UNKNOWN_MODEL = re.compile(r"invalid model|model[^.]{0,80}(?:not found|does not exist|unknown)|unknown model",
                            re.IGNORECASE)
# LiteLLM without a database answers a key other than its master key this way.
_KEY_UNCHECKED = "no_db_connection"


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
    gateway: GatewayHeaders = Field(default_factory=GatewayHeaders,
                                    description="response headers naming the deployment that served")
    version_header: str | None = Field(default=None, min_length=1, max_length=100,
                                       description="response header in which the service under test names its "
                                                   "own version (part of our inputs for drift attribution)")

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("the key is empty (is the ${ENV} variable it comes from set?); leave api_key out "
                             "if the endpoint needs none")
        return v

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
        self._client: ChatClient | None = None
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

    def inputs(self) -> dict[str, Any]:
        c = self.config
        return {"kind": self.kind, "model": c.model, "system_prompt": self.system_prompt, "temperature": c.temperature,
                "max_tokens": c.max_tokens, "seed": c.seed, "response_format": c.response_format}

    # --- the surface ------------------------------------------------------------------------

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        system = self.system_prompt
        messages = [{"role": "system", "content": system}] if system else []
        return OpenAIConversation(self, ctx, messages)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # --- one request -------------------------------------------------------------------------

    def client(self) -> ChatClient:
        """The target's one chat client, reused for every call; no retries of its own (the
        runner's guard retries). Its session opens here, in the event loop, so a request's
        clock starts after aiohttp is imported."""
        if self._client is None:
            c = self.config
            self._client = ChatClient(c.base_url, api_key=c.api_key.get_secret_value() if c.api_key else None,
                                      headers=c.headers, timeout_s=c.limits.timeout_s,
                                      max_connections=c.limits.concurrency + 4, who="the response").open()
        return self._client

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

    async def complete(self, messages: list[dict[str, Any]]) -> tuple[str, AgentReply]:
        """One chat completion: (the raw assistant content, the reply as the harness sees it)."""
        client = self.client()  # before the request: the first one opens the session
        try:
            answer = await client.send(self.payload(messages))
        except InfraError as e:
            raise self._explained(e) from None
        return self._reply(answer)

    def _explained(self, err: InfraError) -> InfraError:
        """`err`, said the way a user can act on: our own mistakes named as such, a gateway's
        report that its upstreams are down marked for the breaker."""
        if self.config.gateway.kind == "none" or err.misconfigured:
            return err
        if err.status in (400, 404) and _UNKNOWN_MODEL.search(err.detail):
            return InfraError("protocol", f"HTTP {err.status}: the endpoint does not know model {self.config.model!r} "
                                          "(check the model name or key)", endpoint=err.endpoint, status=err.status,
                              misconfigured=True)
        if err.status in (400, 401, 403) and _KEY_UNCHECKED in err.detail:
            return InfraError("protocol", f"HTTP {err.status}: the gateway could not accept the API key (check the "
                                          "model name or key)", endpoint=err.endpoint, status=err.status,
                              misconfigured=True)
        if err.kind == "server_error" and not err.down and _UPSTREAM_DOWN.search(err.detail):
            return InfraError(err.kind, err.detail, endpoint=err.endpoint, retry_after=err.retry_after,
                              retryable=err.retryable, status=err.status, down=True)
        return err

    def _reply(self, answer: ChatResult) -> tuple[str, AgentReply]:
        content = answer.text
        model = answer.model
        tokens_in, tokens_out = answer.tokens_in, answer.tokens_out
        route, deployment, deployment_id, upstream, gateway_cost = "primary", None, None, None, None
        gw = self.config.gateway
        if gw.kind != "none" and answer.headers:
            h = answer.headers
            name = h.get(gw.model_name)
            if name:
                model = name  # the deployment's model: the same streamed or not, unlike the body's
                host = _host_of(h.get(gw.api_base))
                deployment = f"{name}@{host}" if host else name
                deployment_id = h.get(gw.model_id) or None
            fallbacks, retries = _count(h.get(gw.attempted_fallbacks)), _count(h.get(gw.attempted_retries))
            group = h.get(gw.model_group)
            if fallbacks or (group and group != self.config.model):
                route = "fallback"
            if fallbacks is not None or retries is not None:
                upstream = 1 + (fallbacks or 0) + (retries or 0)
            gateway_cost = _cost(h.get(gw.response_cost))
        text, state = content, {}
        structured = split_structured(content)
        if structured is not None:
            text, state = structured
        version = None
        if self.config.version_header and answer.headers:
            version = service_version_of(answer.headers.get(self.config.version_header))
        return content, AgentReply(
            text=text,
            first_token_ms=answer.first_token_ms,
            total_ms=answer.total_ms,
            model=model,
            fingerprint=answer.fingerprint,
            route=route,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=_first(cost_of(self.config.prices, (model, answer.model, self.config.model), tokens_in, tokens_out),
                        gateway_cost),
            state=state,
            ended=ends_call(state),
            deployment=deployment,
            deployment_id=deployment_id,
            upstream_attempts=upstream,
            service_version=version,
        )


def _host_of(url: str | None) -> str | None:
    """host[:port] of a URL: never its user info, path or query (where keys hide)."""
    if not url:
        return None
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port else host


def _count(v: str | None) -> int | None:
    try:
        return max(0, int(v)) if v else None
    except ValueError:
        return None


def _cost(v: str | None) -> float | None:
    try:
        cost = float(v) if v else None
    except ValueError:
        return None
    return cost if cost is not None and cost >= 0 and cost == cost and cost != float("inf") else None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


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
