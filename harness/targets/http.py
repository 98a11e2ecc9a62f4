"""The `http` target: the phone service's own webhook, one request per caller turn.

This tests the whole service (its prompts, tools and state machine), not just a model. Each
caller turn is POSTed to `url` with a body rendered from the `body` template; the answer and
the agent's state are picked out of the JSON response with JSONPath:

```yaml
target:
  kind: http
  url: https://phone-ai.internal/test/turn
  headers: {Authorization: "Bearer ${WEBHOOK_TOKEN}"}
  body: '{"session": "{{ call_id }}", "utterance": {{ text | tojson }}, "lang": "{{ case.language }}"}'
  reply_path: $.response.text
  intent_path: $.state.intent
  slots_path: $.state.slots
  version_path: $.build.version    # or version_header: X-Agent-Version
```

`version_path` / `version_header` name where the service reports its own version; it is
stored with each turn and folded into the result's input fingerprint (a deploy is our side).

Template variables: `call_id` (unique per call), `case` (id, topic, tags, language),
`turn` (caller turn number, 1-based; 0 for the greeting), `text` (what the caller said; the
digits for dtmf, empty for silence), `kind` (say, silence, dtmf, greeting) and `history`
(earlier turns as {caller, agent}). The template runs in Jinja's immutable sandbox and is
compiled and tried once when the target is made, so a typo or an attempt to reach Python
internals is a configuration error before anything runs. Without `body`, a JSON object of
all the variables is sent.

Only the reply path is required in a response; the state paths are optional and default
to top-level keys (`$.intent`, `$.slots`, …). The call's outcome is the state reported
across the turns, or, when `end_url` is set, what that URL returns for the call at its end.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import Field, field_validator

from ..errors import ConfigError, InfraError
from ..httpclient import Session, parse_json, safe_endpoint, status_error
from ..records import AgentReply, Outcome
from ..spec import CaseSpec
from ..tracing import http_request
from ._replystate import STATE_KEYS, ends_call, outcome_from, service_version_of
from .base import CallContext, Conversation, Target, TargetConfig, register

TEMPLATE_VARIABLES = ("call_id", "case", "turn", "text", "kind", "history")


class HttpConfig(TargetConfig):
    """Settings of the `http` target."""

    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="request headers (never recorded)")
    body: str | None = Field(default=None, description="Jinja template of the request body")
    content_type: str = "application/json"
    greet: bool = Field(default=False, description="ask for the agent's opening line (turn 0, kind greeting)")
    reply_path: str = "$.reply"
    intent_path: str | None = "$.intent"
    slots_path: str | None = "$.slots"
    transferred_path: str | None = "$.transferred"
    transfer_reason_path: str | None = "$.transfer_reason"
    ended_path: str | None = "$.ended"
    side_effects_path: str | None = "$.side_effects"
    end_url: str | None = Field(default=None, description="POSTed {call_id, case_id} at the end; returns the end state")
    # the service's own version, when it reports one: part of our side of a call (drift attribution)
    version_header: str | None = Field(default=None, min_length=1, max_length=100,
                                       description="response header naming the service's version")
    version_path: str | None = Field(default=None, description="JSONPath of the service's version in a response")

    @field_validator("url", "end_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v


def _compile_path(field: str, expr: str) -> JSONPath:
    try:
        return parse_jsonpath(expr)
    except Exception as e:  # noqa: BLE001 — jsonpath-ng's lexer raises plain Exceptions
        raise ConfigError(f"target.{field}: not a valid JSONPath {expr!r}: {' '.join(str(e).split())}") from None


def _pick(path: JSONPath, data: Any) -> tuple[bool, Any]:
    """(found, value) of the first match of `path` in `data`."""
    matches = path.find(data)
    if not matches:
        return False, None
    return True, matches[0].value


@register
class HttpTarget(Target):
    kind = "http"
    config_model = HttpConfig
    description = "the phone service's own webhook: one JSON request per caller turn"
    config: HttpConfig

    root: str = "."  # nothing here reads files; kept so every target can be given its project root

    def __init__(self, config: HttpConfig):
        super().__init__(config)
        self.safe_url = safe_endpoint(config.url)
        self._env = _sandbox()
        self._template = self._compile_body(config.body)
        self._reply_path = _compile_path("reply_path", config.reply_path)
        self._state_paths = {
            name: _compile_path(f"{name}_path", expr)
            for name in STATE_KEYS
            if (expr := getattr(config, f"{name}_path")) is not None
        }
        self._version_path = (_compile_path("version_path", config.version_path)
                              if config.version_path is not None else None)
        self._session: Session | None = None

    def _compile_body(self, body: str | None) -> jinja2.Template | None:
        if body is None:
            return None
        try:
            template = self._env.from_string(body)
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"target.body: template line {e.lineno}: {e.message}") from None
        # A dry run with sample values: unknown variables and sandbox refusals show up now,
        # as configuration errors, rather than once per call in the middle of a run.
        sample = _variables("dry-run", _case_vars(None), 1, "こんにちは", "say", [{"caller": "hi", "agent": "hello"}])
        self._render(template, sample)
        return template

    def _render(self, template: jinja2.Template, variables: dict[str, Any]) -> str:
        try:
            return template.render(variables)
        except SecurityError as e:
            raise ConfigError(f"target.body: the template tried something the sandbox forbids: {e}") from None
        except jinja2.UndefinedError as e:
            raise ConfigError(f"target.body: {e.message} (variables: {', '.join(TEMPLATE_VARIABLES)})") from None
        except jinja2.TemplateError as e:
            raise ConfigError(f"target.body: {e}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"target.body: the template failed: {e}") from None

    def body_for(self, variables: dict[str, Any]) -> bytes:
        if self._template is None:
            return json.dumps(variables, ensure_ascii=False).encode()
        return self._render(self._template, variables).encode()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.safe_url, "method": self.config.method}

    def inputs(self) -> dict[str, Any]:
        c = self.config
        return {"kind": self.kind, "method": c.method, "body": c.body, "content_type": c.content_type,
                "greet": c.greet, "headers": sorted(c.headers)}  # header names only: values may be secrets

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        call_id = f"{case.id}.{ctx.repeat_index}.{uuid.uuid4().hex[:12]}"
        return HttpConversation(self, ctx, call_id, _case_vars(case))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    def session(self) -> Session:
        """The target's one HTTP session, reused for every call; connections open on first use."""
        if self._session is None:
            # opened now, in the event loop: a request's clock starts after this (Session.open)
            self._session = Session.for_target(self.config.limits, self.config.headers,
                                               {"Content-Type": self.config.content_type}).open()
        return self._session

    @http_request  # a client span per request when the run is traced
    async def post(self, method: str, url: str, body: bytes) -> tuple[Any, float, str | None]:
        """One request: (the decoded JSON response, milliseconds it took, the service's version
        from `version_header` when the suite names one)."""
        where = safe_endpoint(url)
        session = self.session()  # before the clock starts: the first one imports aiohttp
        t0 = time.perf_counter()
        resp = await session.send(method, url, body, endpoint=where)
        try:
            content = await resp.read()
        finally:
            await resp.aclose()
        ms = (time.perf_counter() - t0) * 1000
        err = status_error(resp.status, resp.headers, content, where)
        if err is not None:
            raise err
        version = resp.headers.get(self.config.version_header) if self.config.version_header else None
        return parse_json(content, where), ms, version

    def state_of(self, data: Any) -> dict[str, Any]:
        state = {}
        for name, path in self._state_paths.items():
            found, value = _pick(path, data)
            if found and value is not None:
                state[name] = value
        return state

    def reply_of(self, data: Any, ms: float, version: str | None = None) -> AgentReply:
        found, text = _pick(self._reply_path, data)
        if not found:
            raise InfraError("protocol", f"the response has nothing at reply_path {self.config.reply_path}",
                             endpoint=self.safe_url, retryable=False)
        state = self.state_of(data)
        if self._version_path is not None:
            found, value = _pick(self._version_path, data)
            version = value if found and value is not None else version
        return AgentReply(text="" if text is None else str(text), total_ms=ms, route="primary",
                          state=state, ended=ends_call(state), service_version=service_version_of(version))


class HttpConversation(Conversation):
    def __init__(self, target: HttpTarget, ctx: CallContext, call_id: str, case_vars: dict[str, Any]):
        self.target = target
        self.ctx = ctx
        self.call_id = call_id
        self.case_vars = case_vars
        self.history: list[dict[str, str]] = []
        self.replies: list[AgentReply] = []

    async def _turn(self, index: int, text: str, kind: str) -> AgentReply:
        t = self.target
        body = t.body_for(_variables(self.call_id, self.case_vars, index, text, kind, list(self.history)))
        attempts = 0

        async def attempt() -> AgentReply:
            nonlocal attempts
            attempts += 1
            data, ms, version = await t.post(t.config.method, t.config.url, body)
            return t.reply_of(data, ms, version)

        reply = await self.ctx.request(attempt, what=f"webhook turn ({t.safe_url})")
        reply.attempts = attempts
        self.history.append({"caller": text, "agent": reply.text})
        self.replies.append(reply)
        return reply

    async def greet(self) -> AgentReply | None:
        if not self.target.config.greet:
            return None
        return await self._turn(0, "", "greeting")

    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        # the greeting, when asked for, is history entry 0, so caller turns count from 1 either way
        turn = len(self.history) + (0 if self.target.config.greet else 1)
        return await self._turn(turn, caller, kind)

    async def close(self) -> Outcome:
        outcome = outcome_from(self.replies)
        t = self.target
        if t.config.end_url is None:
            return outcome
        body = json.dumps({"call_id": self.call_id, "case_id": self.case_vars["id"]}, ensure_ascii=False).encode()

        async def attempt() -> Any:
            data, _, _ = await t.post("POST", t.config.end_url or "", body)
            return data

        data = await self.ctx.request(attempt, what=f"webhook end of call ({safe_endpoint(t.config.end_url)})")
        final = AgentReply(text="", state=t.state_of(data))
        end = outcome_from([*self.replies, final])
        end.ended_by = outcome.ended_by
        return end


def _sandbox() -> ImmutableSandboxedEnvironment:
    """Jinja's immutable sandbox, strict about unknown variables, even inside `tojson`."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)

    def dumps(obj: Any, **kwargs: Any) -> str:
        def default(o: Any) -> Any:
            if isinstance(o, jinja2.Undefined):
                str(o)  # a StrictUndefined raises UndefinedError, naming the variable
            raise TypeError(f"{type(o).__name__} is not JSON serialisable")

        return json.dumps(obj, default=default, **kwargs)

    env.policies["json.dumps_function"] = dumps
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return env


def _case_vars(case: CaseSpec | None) -> dict[str, Any]:
    if case is None:
        return {"id": "sample-case", "topic": "reservation", "tags": ["sample"], "language": "ja", "title": ""}
    return {"id": case.id, "topic": case.resolved_topic or case.topic or "", "tags": list(case.resolved_tags),
            "language": case.resolved_language or case.language or "", "title": case.title or ""}


def _variables(call_id: str, case: dict[str, Any], turn: int, text: str, kind: str,
               history: list[dict[str, str]]) -> dict[str, Any]:
    return {"call_id": call_id, "case": case, "turn": turn, "text": text, "kind": kind, "history": history}
