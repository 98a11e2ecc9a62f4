"""Telephone audio: G.711 μ-law at 8 kHz in 20 ms frames, resampling, tones, WAV, and a VAD.

Everything here is numpy on small arrays; nothing touches the network. A frame is 160
samples (20 ms at 8 kHz), one byte each in μ-law, as Twilio Media Streams sends them.
"""

from __future__ import annotations

import io
import wave
from functools import lru_cache
from typing import Protocol

import numpy as np

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160
SILENCE_BYTE = 0xFF  # μ-law of 0
SILENT_FRAME = bytes([SILENCE_BYTE]) * FRAME_SAMPLES

_BIAS = 0x84


@lru_cache(maxsize=1)
def _decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


@lru_cache(maxsize=1)
def _encode_table() -> np.ndarray:
    """μ-law byte for every 16-bit sample (65536 entries, built once; G.711 on 14 bits)."""
    v = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag, side="left")
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F))
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes → int16 samples."""
    return _decode_table()[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples → μ-law bytes."""
    return _encode_table()[pcm.astype(np.int32) + 32768].tobytes()


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] (or any int array) as int16, clipped."""
    if x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    return np.clip(x, -32768, 32767).astype(np.int16)


def resample(pcm: np.ndarray, rate_in: int, rate_out: int = RATE) -> np.ndarray:
    """int16 (or float) mono audio from one rate to another, polyphase-filtered."""
    if rate_in == rate_out:
        return to_int16(pcm)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    x = pcm.astype(np.float32)
    if np.issubdtype(pcm.dtype, np.integer):
        x /= 32768.0
    return to_int16(resample_poly(x, rate_out // g, rate_in // g))


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(mono int16 samples, sample rate) of a PCM WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2")
    elif width == 1:
        x = ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8)
    elif width == 4:
        x = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    else:
        raise ValueError(f"unsupported WAV sample width {width}")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return x, rate


def wav_bytes(pcm: np.ndarray, rate: int = RATE, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file (`pcm` interleaved when channels > 1)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(pcm).astype("<i2").tobytes())
    return buf.getvalue()


def frames_of(ulaw: bytes) -> list[bytes]:
    """μ-law audio cut into 20 ms frames, the last padded with silence."""
    out = [ulaw[i:i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES)]
    if out and len(out[-1]) < FRAME_SAMPLES:
        out[-1] = out[-1] + bytes([SILENCE_BYTE]) * (FRAME_SAMPLES - len(out[-1]))
    return out


def trim(pcm: np.ndarray, threshold: int = 300) -> np.ndarray:
    """Leading and trailing near-silence cut off (so "end of speech" is the last sound)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm[:0]
    return pcm[loud[0]:loud[-1] + 1]


_DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


def dtmf_tone(digit: str, ms: int = 100) -> np.ndarray:
    """The in-band dual tone of one keypad digit (ITU-T Q.23), `ms` long."""
    low, high = _DTMF[digit]
    t = np.arange(RATE * ms // 1000) / RATE
    return to_int16(0.35 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)))


class Vad(Protocol):
    def is_speech(self, pcm: np.ndarray) -> bool: ...


class EnergyVad:
    """Speech when a frame's RMS is above a floor: for tones and clean synthetic audio."""

    name = "energy"

    def __init__(self, threshold: float = 300.0):
        self.threshold = threshold

    def is_speech(self, pcm: np.ndarray) -> bool:
        return float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) > self.threshold


class WebRtcVad:
    """WebRTC's voice activity detector (the `webrtcvad-wheels` package), gated by a small
    energy floor so a line's hiss is never speech."""

    name = "webrtc"

    def __init__(self, aggressiveness: int = 2, floor: float = 100.0):
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)
        self._floor = EnergyVad(floor)

    def is_speech(self, pcm: np.ndarray) -> bool:
        return self._floor.is_speech(pcm) and self._vad.is_speech(pcm.astype("<i2").tobytes(), RATE)


def make_vad(kind: str, aggressiveness: int = 2) -> Vad:
    if kind == "energy":
        return EnergyVad()
    return WebRtcVad(aggressiveness)
