"""The caller's voice (TTS) and the harness's ears (STT), each a small registry of engines.

TTS engines turn a caller line into 8 kHz μ-law: `espeak` (espeak-ng, offline English and
many other languages; Debian package `espeak-ng`), `openjtalk` (offline Japanese; pip
`pyopenjtalk-plus` ships its dictionary and voice), `openai` (any OpenAI-compatible
`/v1/audio/speech`). `auto` picks OpenJTalk for Japanese and espeak-ng otherwise. Audio is
cached by engine, voice and text, in memory and, with `cache_dir`, on disk.

STT engines turn one agent utterance into text for text checks, outcomes and the judge:
`openai` (any OpenAI-compatible `/v1/audio/transcriptions`: OpenAI, Groq, a self-hosted
Whisper server), `pocketsphinx` (offline English; its model ships in the pip wheel) or
`none` (pace checks only; every reply's text is empty).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Literal

from pydantic import SecretStr

from ...errors import ConfigError, InfraError
from . import audio
from .config import SttConfig, TtsConfig

if TYPE_CHECKING:
    import numpy as np

Request = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]


# --- TTS --------------------------------------------------------------------------------------


class Tts:
    """Text → 8 kHz μ-law, cached. One instance per target; safe for concurrent calls."""

    _MEMORY = 512  # lines kept in memory

    def __init__(self, config: TtsConfig, root: str = "."):
        self.config = config
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._jtalk_lock = threading.Lock()
        self._session: Any = None
        self.cache_dir = None
        if config.cache_dir:
            self.cache_dir = config.cache_dir if os.path.isabs(config.cache_dir) else os.path.join(root, config.cache_dir)
        if config.kind == "espeak" and _espeak() is None:
            raise ConfigError("target.tts.kind: espeak needs the espeak-ng program (apt-get install espeak-ng)")
        if config.kind == "openjtalk" and not _has_module("pyopenjtalk"):
            raise ConfigError("target.tts.kind: openjtalk needs pyopenjtalk-plus (pip install 'harness[voice]')")
        if config.kind == "openai" and not config.base_url:
            raise ConfigError("target.tts: kind openai needs base_url")

    def engine_for(self, language: str | None) -> str:
        e = self.config.kind
        if e != "auto":
            return e
        return "openjtalk" if (language or "").lower().startswith("ja") else "espeak"

    async def speak(self, text: str, language: str | None, request: Request) -> bytes:
        engine = self.engine_for(language)
        voice = self.config.voice or ("" if engine == "openjtalk" else "alloy" if engine == "openai"
                                      else _espeak_voice(language))
        key = (engine, voice, self.config.rate, self.config.model if engine == "openai" else "", text)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if key in self._inflight:  # fifty calls saying the same line synthesise it once
            return await asyncio.shield(self._inflight[key])
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            data = self._from_disk(key)
            if data is None:
                pcm, rate = await self._synth(engine, voice, text, request)
                # filtering a few seconds of audio takes milliseconds the line's clock cannot spare
                data = await asyncio.to_thread(lambda: audio.ulaw_encode(audio.trim(audio.resample(pcm, rate))))
                self._to_disk(key, data)
            self._cache[key] = data
            if len(self._cache) > self._MEMORY:
                self._cache.popitem(last=False)
            fut.set_result(data)
            return data
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._inflight.pop(key, None)

    def _path(self, key: tuple) -> str | None:
        if not self.cache_dir:
            return None
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
        return os.path.join(self.cache_dir, f"{key[0]}-{digest}.ulaw")

    def _from_disk(self, key: tuple) -> bytes | None:
        path = self._path(key)
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
        return None

    def _to_disk(self, key: tuple, data: bytes) -> None:
        path = self._path(key)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)

    async def _synth(self, engine: str, voice: str, text: str, request: Request) -> tuple[np.ndarray, int]:
        if engine == "espeak":
            return await _espeak_synth(text, voice, self.config.rate)
        if engine == "openjtalk":
            return await asyncio.to_thread(self._jtalk, text)
        return await self._openai(text, voice, request)

    def _jtalk(self, text: str) -> tuple[np.ndarray, int]:
        import numpy as np
        import pyopenjtalk

        with self._jtalk_lock:  # OpenJTalk keeps global state
            pcm, rate = pyopenjtalk.tts(text)
        return audio.to_int16(np.asarray(pcm) / 32768.0), int(rate)

    async def _openai(self, text: str, voice: str, request: Request) -> tuple[np.ndarray, int]:
        c = self.config
        url = f"{c.base_url}/audio/speech"
        body = {"model": c.model, "input": text, "voice": voice, "response_format": "wav"}

        async def attempt() -> bytes:
            return await _post(self, url, c.api_key, json=body)

        data = await request(attempt, f"speech synthesis ({_safe(url)})")
        try:
            return audio.read_wav(data)
        except Exception as e:  # noqa: BLE001 — wave raises several kinds on a bad file
            raise InfraError("protocol", f"the speech endpoint did not return a WAV file: {e}",
                             endpoint=_safe(url), retryable=False) from None

    async def aclose(self) -> None:
        await _close(self)


def _espeak() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _espeak_voice(language: str | None) -> str:
    lang = (language or "en").lower()
    return "en-us" if lang in ("en", "en-us") else lang


async def _espeak_synth(text: str, voice: str, rate: int | None) -> tuple[np.ndarray, int]:
    exe = _espeak()
    if exe is None:
        raise ConfigError("the caller's voice needs espeak-ng (apt-get install espeak-ng) or another tts engine")
    args = [exe, "-v", voice, "--stdout"]
    if rate:
        args += ["-s", str(rate)]
    proc = await asyncio.create_subprocess_exec(*args, "--", text, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0 or not out:
        raise ConfigError(f"espeak-ng failed for voice {voice!r}: {err.decode(errors='replace').strip()[:200]}")
    return audio.read_wav(out)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --- STT --------------------------------------------------------------------------------------


class Stt:
    """One agent utterance (8 kHz int16) → text."""

    kind: ClassVar[str] = "none"

    async def transcribe(self, pcm: np.ndarray, language: str | None, request: Request) -> str:
        return ""

    async def aclose(self) -> None:
        return None


class PocketSphinxStt(Stt):
    """Offline English with CMU PocketSphinx (its US English model ships in the wheel)."""

    kind = "pocketsphinx"

    def __init__(self) -> None:
        if not _has_module("pocketsphinx"):
            raise ConfigError("target.stt.kind: pocketsphinx is not installed (pip install 'harness[voice]')")
        self._lock = threading.Lock()
        self._decoder: Any = None

    def _decode(self, pcm: np.ndarray) -> str:
        with self._lock:  # one decoder, one utterance at a time
            if self._decoder is None:
                from pocketsphinx import Decoder

                self._decoder = Decoder(samprate=16000, loglevel="FATAL")
            d = self._decoder
            d.start_utt()
            d.process_raw(audio.resample(pcm, audio.RATE, 16000).astype("<i2").tobytes(), full_utt=True)
            d.end_utt()
            hyp = d.hyp()
        return hyp.hypstr if hyp is not None else ""

    async def transcribe(self, pcm: np.ndarray, language: str | None, request: Request) -> str:
        if pcm.size == 0:
            return ""
        return await asyncio.to_thread(self._decode, pcm)


class OpenAIStt(Stt):
    """Any OpenAI-compatible `/v1/audio/transcriptions` (multipart WAV upload)."""

    kind = "openai"

    def __init__(self, config: SttConfig):
        if not config.base_url:
            raise ConfigError("target.stt: kind openai needs base_url")
        self.config = config
        self._session: Any = None

    async def transcribe(self, pcm: np.ndarray, language: str | None, request: Request) -> str:
        if pcm.size == 0:
            return ""
        import aiohttp

        c = self.config
        url = f"{c.base_url}/audio/transcriptions"
        wav = audio.wav_bytes(pcm)
        lang = c.language or language

        async def attempt() -> Any:
            form = aiohttp.FormData()
            form.add_field("file", wav, filename="utterance.wav", content_type="audio/wav")
            form.add_field("model", c.model)
            form.add_field("response_format", "json")
            if lang:
                form.add_field("language", lang.split("-")[0])
            return await _post(self, url, c.api_key, data=form)

        raw = await request(attempt, f"transcription ({_safe(url)})")
        from ...httpclient import parse_json

        data = parse_json(raw, _safe(url))
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise InfraError("protocol", "the transcription endpoint's answer has no text", endpoint=_safe(url),
                             retryable=False)
        return data["text"].strip()

    async def aclose(self) -> None:
        await _close(self)


def make_stt(config: SttConfig) -> Stt:
    engine = config.kind
    if engine == "auto":
        engine = "openai" if config.base_url else "pocketsphinx" if _has_module("pocketsphinx") else "none"
    if engine == "pocketsphinx":
        return PocketSphinxStt()
    if engine == "openai":
        return OpenAIStt(config)
    return Stt()


# --- the little HTTP both use ------------------------------------------------------------------


def _safe(url: str) -> str:
    from ...httpclient import safe_endpoint

    return safe_endpoint(url)


async def _post(owner: Any, url: str, api_key: SecretStr | None, **kwargs: Any) -> bytes:
    import aiohttp

    from ...httpclient import status_error, transport_error

    if owner._session is None:
        owner._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10))
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    where = _safe(url)
    try:
        async with owner._session.post(url, headers=headers, **kwargs) as resp:
            content = await resp.read()
            err = status_error(resp.status, resp.headers, content, where,
                               redact=[api_key.get_secret_value()] if api_key else ())
    except aiohttp.ClientError as e:
        raise transport_error(e, where) from None
    if err is not None:
        raise err
    return content


async def _close(owner: Any) -> None:
    session, owner._session = owner._session, None
    if session is not None:
        await session.close()
