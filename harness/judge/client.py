"""The judge model: any OpenAI-compatible chat endpoint, as a deepeval model, on one pool.

deepeval's own OpenAI model builds a new client for every call; at 300 judged answers
that connection churn costs seconds. Here one `ChatClient` (one pooled HTTP client)
serves every judge call of a run, and `JudgeModel` is the small `DeepEvalBaseLLM`
adapter that GEval and ConversationalGEval call through.

Judge output is untrusted: structured answers are parsed as JSON and validated against
the schema deepeval asks for; a reply that does not parse is asked again (twice), then
becomes a `JudgeError`, which the check dispatcher records as a check error, never as
the agent failing.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
from pydantic import BaseModel, ValidationError

from ..errors import InfraError
from ..httpclient import excerpt, make_client, parse_json, safe_endpoint, status_error, transport_error
from ..spec import JudgeSpec
from ._deepeval import load_deepeval
from ._errors import JudgeError

load_deepeval()
from deepeval.models import DeepEvalBaseLLM  # noqa: E402  (imported after the quiet flags are set)

__all__ = ["ChatClient", "ChatReply", "JudgeError", "JudgeModel", "parse_structured"]

RETRIES = 3  # for transient HTTP failures (429, 5xx, timeouts, dropped connections)
JSON_ATTEMPTS = 3  # one call plus two retries when the judge's JSON does not parse
BACKOFF_S = 0.5
BACKOFF_MAX_S = 10.0
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass(slots=True)
class ChatReply:
    """One answer from the judge endpoint, with what it says about itself."""

    text: str
    model: str | None = None
    fingerprint: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None


class ChatClient:
    """POSTs prompts to `<base_url>/chat/completions` over one reused connection pool.

    At most `spec.concurrency` requests are in flight. Transient failures are retried with
    backoff (honouring Retry-After); every request sent is counted in `requests`, and
    every request sent is reported to `on_request` and every reply to `on_reply` (the
    service meters calls, tokens, cost and the judge's fingerprint there).
    """

    def __init__(self, spec: JudgeSpec, *, on_reply: Callable[[ChatReply], None] | None = None,
                 on_request: Callable[[], None] | None = None, retries: int = RETRIES, backoff_s: float = BACKOFF_S):
        self.spec = spec
        self.url = spec.base_url.rstrip("/") + "/chat/completions"
        self.endpoint = safe_endpoint(self.url)
        self._key = spec.api_key.get_secret_value() if spec.api_key is not None else None
        self._headers = {"content-type": "application/json", **spec.headers}
        if self._key:
            self._headers["authorization"] = f"Bearer {self._key}"
        self._client: httpx.AsyncClient | None = None
        self._sync: httpx.Client | None = None
        self._sem: asyncio.Semaphore | None = None
        self._json_mode = True  # dropped for good if the endpoint rejects response_format
        self.on_reply = on_reply or (lambda r: None)
        self.on_request = on_request or (lambda: None)
        self.retries = retries
        self.backoff_s = backoff_s
        self.requests = 0
        self._rng = random.Random()

    # --- async ---------------------------------------------------------------------
    async def complete(self, prompt: str, *, json_mode: bool = False) -> ChatReply:
        """The judge's answer to one prompt; raises JudgeError when it cannot be had."""
        if self._client is None:
            self._client = make_client(timeout=self.spec.timeout_s, max_connections=self.spec.concurrency,
                                       headers=self._headers)
            self._sem = asyncio.Semaphore(self.spec.concurrency)
        assert self._sem is not None
        attempt = 0
        while True:
            try:
                async with self._sem:
                    return await self._once(prompt, json_mode)
            except InfraError as e:
                if not e.retryable or attempt >= self.retries:
                    raise JudgeError(f"judge request failed: {e.line()}") from None
                await asyncio.sleep(self._backoff(attempt, e))
                attempt += 1

    async def _once(self, prompt: str, json_mode: bool) -> ChatReply:
        assert self._client is not None
        body = self._body(prompt, json_mode)
        self.requests += 1
        self.on_request()
        try:
            resp = await self._client.post(self.url, json=body)
        except httpx.HTTPError as e:
            raise transport_error(e, self.endpoint) from None
        if self._rejects_json_mode(resp.status_code, resp.content, body):
            return await self._once(prompt, json_mode)
        return self._reply(resp.status_code, resp.headers, resp.content)

    # --- sync (deepeval's synchronous path; the harness itself only uses the async one) ---
    def complete_sync(self, prompt: str, *, json_mode: bool = False) -> ChatReply:
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.spec.timeout_s, headers=self._headers)
        attempt = 0
        while True:
            body = self._body(prompt, json_mode)
            self.requests += 1
            self.on_request()
            try:
                try:
                    resp = self._sync.post(self.url, json=body)
                except httpx.HTTPError as e:
                    raise transport_error(e, self.endpoint) from None
                if self._rejects_json_mode(resp.status_code, resp.content, body):
                    continue
                return self._reply(resp.status_code, resp.headers, resp.content)
            except InfraError as e:
                if not e.retryable or attempt >= self.retries:
                    raise JudgeError(f"judge request failed: {e.line()}") from None
                time.sleep(self._backoff(attempt, e))
                attempt += 1

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # --- shared ----------------------------------------------------------------------
    def _body(self, prompt: str, json_mode: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.spec.temperature,
        }
        if json_mode and self._json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def _rejects_json_mode(self, status: int, content: bytes, body: dict[str, Any]) -> bool:
        """A 400 naming response_format: this endpoint has no JSON mode; ask without it."""
        if status == 400 and "response_format" in body and b"response_format" in content:
            self._json_mode = False
            return True
        return False

    def _reply(self, status: int, headers: Any, content: bytes) -> ChatReply:
        err = status_error(status, headers, content, self.endpoint, redact=[self._key] if self._key else [])
        if err is not None:
            raise err
        data = parse_json(content, self.endpoint)
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise InfraError("protocol", f"the judge's reply has no choices[0].message.content: {excerpt(content)}",
                             endpoint=self.endpoint, retryable=True) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        reply = ChatReply(
            text=str(text),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            fingerprint=data.get("system_fingerprint") if isinstance(data.get("system_fingerprint"), str) else None,
            tokens_in=_int(usage.get("prompt_tokens")),
            tokens_out=_int(usage.get("completion_tokens")),
        )
        self.on_reply(reply)
        return reply

    def _backoff(self, attempt: int, err: InfraError) -> float:
        base = min(BACKOFF_MAX_S, self.backoff_s * (2**attempt))
        delay = self._rng.uniform(base / 2, base)
        if err.retry_after is not None:
            delay = max(delay, min(err.retry_after, BACKOFF_MAX_S))
        return delay


class JudgeModel(DeepEvalBaseLLM):
    """deepeval's view of our judge: structured output parsed here, with retries.

    deepeval asks for a pydantic `schema` (evaluation steps, or a score with a reason);
    the prompt already asks for JSON, the request turns on JSON mode where the endpoint
    has it, and the reply is validated against the schema. A reply that is not valid JSON
    for the schema is asked again, up to `JSON_ATTEMPTS` times in all.
    """

    def __init__(self, chat: ChatClient, *, attempts: int = JSON_ATTEMPTS):
        self._chat = chat
        self._attempts = attempts
        self._model_name = chat.spec.model
        super().__init__(chat.spec.model)

    def load_model(self, *args: Any, **kwargs: Any) -> "JudgeModel":
        return self

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self._model_name

    async def a_generate(self, prompt: str, schema: type[BaseModel] | None = None, **_: Any) -> Any:
        problems: list[str] = []
        while len(problems) < self._attempts:
            reply = await self._chat.complete(prompt, json_mode=schema is not None)
            if (answer := _answer(reply.text, schema, problems)) is not None:
                return answer
        raise _malformed(problems)

    def generate(self, prompt: str, schema: type[BaseModel] | None = None, **_: Any) -> Any:
        """The same as `a_generate`, for deepeval's synchronous path."""
        problems: list[str] = []
        while len(problems) < self._attempts:
            reply = self._chat.complete_sync(prompt, json_mode=schema is not None)
            if (answer := _answer(reply.text, schema, problems)) is not None:
                return answer
        raise _malformed(problems)

    def supports_structured_outputs(self) -> bool:
        return True

    def supports_json_mode(self) -> bool:
        return True


def _answer(text: str, schema: type[BaseModel] | None, problems: list[str]) -> Any:
    """One reply as deepeval wants it (the text, or `schema` parsed); None, with the problem
    noted in `problems`, when it must be asked again."""
    if schema is None:
        return text
    try:
        return parse_structured(text, schema)
    except ValueError as e:
        problems.append(str(e))
        return None


def _malformed(problems: list[str]) -> JudgeError:
    return JudgeError(f"the judge returned malformed JSON {len(problems)} times ({problems[-1] if problems else ''})")


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """The judge's reply as `schema`; ValueError (with a short excerpt) when it is not.

    Tolerates code fences and prose around the JSON object; rejects a score outside the
    0–10 scale GEval uses, since a misread scale would turn into a silent pass.
    """
    s = _FENCE.sub("", text.strip())
    start, end = s.find("{"), s.rfind("}")
    if start < 0 or end < start:
        raise ValueError(f"no JSON object in: {excerpt(text)[:80]!r}")
    try:
        data = json.loads(s[start : end + 1])
        obj = schema.model_validate(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg}) in: {excerpt(text)[:80]!r}") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise ValueError(f"{where}: {first['msg']}") from None
    score = getattr(obj, "score", None)
    if isinstance(score, (int, float)) and not 0 <= score <= 10:
        raise ValueError(f"score {score!r} is outside 0..10")
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list) and not [s for s in steps if str(s).strip()]:
        raise ValueError("no evaluation steps")
    return obj


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
