"""Settings of the caller's voice (TTS) and the harness's ears (STT); see `speech` for the engines."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _http_url(v: str | None) -> str | None:
    if v is not None and not v.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL such as https://api.openai.com/v1")
    return v.rstrip("/") if v else v


class TtsConfig(_Model):
    """How the caller speaks."""

    kind: Literal["auto", "espeak", "openjtalk", "openai"] = "auto"
    voice: str | None = Field(default=None, description="espeak voice (en-us), or the endpoint's voice (alloy)")
    rate: int | None = Field(default=None, ge=80, le=450, description="espeak words per minute")
    base_url: str | None = Field(default=None, description="openai: API root holding /audio/speech")
    model: str = "tts-1"
    api_key: SecretStr | None = None
    cache_dir: str | None = Field(default=None, description="keep synthesised lines here between runs")

    _url = field_validator("base_url")(classmethod(lambda cls, v: _http_url(v)))


class SttConfig(_Model):
    """How the harness hears the agent."""

    kind: Literal["auto", "none", "pocketsphinx", "openai"] = "auto"
    base_url: str | None = Field(default=None, description="openai: API root holding /audio/transcriptions")
    model: str = "whisper-1"
    api_key: SecretStr | None = None
    language: str | None = Field(default=None, description="sent to the endpoint; default: the case's language")

    _url = field_validator("base_url")(classmethod(lambda cls, v: _http_url(v)))
