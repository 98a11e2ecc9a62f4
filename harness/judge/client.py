"""The judge model: any OpenAI-compatible chat endpoint, as a deepeval model, on one pool.

deepeval's own OpenAI model builds a new client for every call; at 300 judged answers
that connection churn costs seconds. Here one shared chat client (`harness.chat`, one
connection pool) serves every judge call of a run, and `JudgeModel` is the small
`DeepEvalBaseLLM` adapter that GEval and ConversationalGEval call through.

Transient failures (429, 5xx, timeouts, dropped connections) are retried by the client
under the judge's `RetryPolicy`; one that persists becomes a `JudgeError`. Judge output is
untrusted: structured answers are parsed as JSON and validated against the schema deepeval
asks for; a reply that does not parse is asked again (twice), then becomes a `JudgeError`,
which the check dispatcher records as a check error, never as the agent failing.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from ..chat import ChatClient, ChatResult
from ..errors import InfraError
from ..httpclient import RetryPolicy, excerpt
from ..spec import JudgeSpec
from ._deepeval import load_deepeval
from ._errors import JudgeError

load_deepeval()
from deepeval.models import DeepEvalBaseLLM  # noqa: E402  (imported after the quiet flags are set)

__all__ = ["JudgeError", "JudgeModel", "judge_client", "parse_structured"]

RETRIES = 3  # for transient HTTP failures (429, 5xx, timeouts, dropped connections)
JSON_ATTEMPTS = 3  # one call plus two retries when the judge's JSON does not parse
BACKOFF_S = 0.5
BACKOFF_MAX_S = 10.0
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def judge_client(spec: JudgeSpec, *, on_request: Callable[[], None] | None = None, retries: int = RETRIES,
                 backoff_s: float = BACKOFF_S) -> ChatClient:
    """The judge's chat client: at most `spec.concurrency` requests in flight, transient
    failures retried with backoff (honouring Retry-After), every request sent reported to
    `on_request`, and JSON mode dropped for good if the endpoint refuses it."""
    return ChatClient(spec.base_url, api_key=spec.api_key.get_secret_value() if spec.api_key else None,
                      headers=spec.headers, timeout_s=spec.timeout_s, max_connections=spec.concurrency,
                      retry=RetryPolicy(retries, backoff_s, BACKOFF_MAX_S), max_in_flight=spec.concurrency,
                      on_request=on_request, json_mode_fallback=True, who="the judge's reply")


class JudgeModel(DeepEvalBaseLLM):
    """deepeval's view of our judge: structured output parsed here, with retries.

    deepeval asks for a pydantic `schema` (evaluation steps, or a score with a reason);
    the prompt already asks for JSON, the request turns on JSON mode where the endpoint
    has it, and the reply is validated against the schema. A reply that is not valid JSON
    for the schema is asked again, up to `JSON_ATTEMPTS` times in all.
    """

    def __init__(self, chat: ChatClient, spec: JudgeSpec, *, on_reply: Callable[[ChatResult], None] | None = None,
                 attempts: int = JSON_ATTEMPTS):
        self._chat = chat
        self._spec = spec
        self._on_reply = on_reply or (lambda r: None)
        self._attempts = attempts
        self._model_name = spec.model
        super().__init__(spec.model)

    def load_model(self, *args: Any, **kwargs: Any) -> "JudgeModel":
        return self

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self._model_name

    async def a_generate(self, prompt: str, schema: type[BaseModel] | None = None, **_: Any) -> Any:
        problems: list[str] = []
        body = self._body(prompt, schema)
        while len(problems) < self._attempts:
            try:
                reply = await self._chat.complete(body)
            except InfraError as e:
                raise _failed(e) from None
            self._on_reply(reply)
            if (answer := _answer(reply.text, schema, problems)) is not None:
                return answer
        raise _malformed(problems)

    def generate(self, prompt: str, schema: type[BaseModel] | None = None, **_: Any) -> Any:
        """The same as `a_generate`, for deepeval's synchronous path (the harness uses the async one)."""
        problems: list[str] = []
        body = self._body(prompt, schema)
        while len(problems) < self._attempts:
            try:
                reply = self._chat.complete_blocking(body)
            except InfraError as e:
                raise _failed(e) from None
            self._on_reply(reply)
            if (answer := _answer(reply.text, schema, problems)) is not None:
                return answer
        raise _malformed(problems)

    def _body(self, prompt: str, schema: type[BaseModel] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._spec.model, "messages": [{"role": "user", "content": prompt}],
                                "temperature": self._spec.temperature}
        if schema is not None:
            body["response_format"] = {"type": "json_object"}
        return body

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


def _failed(e: InfraError) -> JudgeError:
    return JudgeError(f"judge request failed: {e.line()}")


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

