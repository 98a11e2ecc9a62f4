"""One OpenAI-compatible `/chat/completions` endpoint that a helper model answers on.

The LLM caller brain and the sim's live-model mode both send a chat body and want the
first choice's text back, with every failure as an `InfraError` (through
`harness.httpclient`) and the API key kept out of every message. The target adapters and
the judge have their own clients: they stream, time turns or run synchronously.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InfraError
from .httpclient import make_client, parse_json, safe_endpoint, status_error, transport_error

__all__ = ["ChatEndpoint"]


class ChatEndpoint:
    """POSTs chat bodies to `<base_url>/chat/completions` over one reused connection pool."""

    def __init__(self, base_url: str, *, api_key: str | None, headers: Mapping[str, str], timeout_s: float,
                 max_connections: int, who: str = "the answer"):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.endpoint = safe_endpoint(self.url)  # credentials stripped: this one goes into errors
        self._who = who  # names the model in a protocol error: "the caller model's answer"
        self._secret = api_key or ""
        hdrs = dict(headers)
        if self._secret:
            hdrs["Authorization"] = f"Bearer {self._secret}"
        self._client = make_client(timeout=timeout_s, max_connections=max_connections, headers=hdrs)

    async def complete(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The first choice's text and the whole decoded answer (for usage and model fields).

        An answer without `choices[0].message.content` is a retryable protocol error: a
        gateway glitch more often than a model that means it.
        """
        try:
            resp = await self._client.post(self.url, json=body)
            content = await resp.aread()
        except InfraError:
            raise
        except Exception as e:  # transport failures become InfraErrors here, in one place
            raise transport_error(e, self.endpoint) from None
        err = status_error(resp.status_code, resp.headers, content, self.endpoint, redact=[self._secret])
        if err is not None:
            raise err
        data = parse_json(content, self.endpoint)
        try:
            text = str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise InfraError("protocol", f"{self._who} has no choices[0].message.content", endpoint=self.endpoint,
                             retryable=True) from None
        return text, data

    async def aclose(self) -> None:
        await self._client.aclose()
