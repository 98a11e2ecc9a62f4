"""Which simulated model answers a turn: the primary, the fallback, or none.

A real phone service calls its LLM through a gateway with a fallback model. What the
harness must notice is visible here: the route that served, a different model name and
fingerprint, slower answers on the fallback, and a silent update that keeps the model
name but changes the fingerprint and the wording.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...errors import InfraError
from .faults import Faults

__all__ = ["Route", "PRIMARY", "PRIMARY_UPDATED", "FALLBACK", "ENDPOINT", "pick_route"]

ENDPOINT = "sim://sakura"


@dataclass(frozen=True)
class Route:
    name: str  # what AgentReply.route reports
    model: str
    fingerprint: str
    style: int  # which wording variant the phrasebook uses
    latency_factor: float
    extra_ms: float


PRIMARY = Route("primary", "sim-sakura-1", "fp_sim_7f3a1c", 0, 1.0, 0.0)
# A silent update: the gateway still says "sim-sakura-1", only the fingerprint moves.
PRIMARY_UPDATED = Route("primary", "sim-sakura-1", "fp_sim_9b2e4d", 1, 1.0, 0.0)
FALLBACK = Route("fallback", "sim-sakura-fallback-mini", "fp_sim_fb0310", 2, 2.0, 40.0)


def pick_route(faults: Faults, rng: random.Random) -> Route | None:
    """One attempt at a model request. Raises InfraError for transient faults; None = no route serves.

    Draws from `rng` only for active faults, so a fault-free run never touches it and
    repeats of a case answer identically.
    """
    if faults.rate_limit and rng.random() < faults.rate_limit:
        raise InfraError("rate_limited", "429 Too Many Requests (simulated burst)", endpoint=ENDPOINT,
                         retry_after=0.05, status=429)
    if faults.server_error and rng.random() < faults.server_error:
        raise InfraError("server_error", "503 Service Unavailable (simulated)", endpoint=ENDPOINT, status=503)
    if faults.full_outage and rng.random() < faults.full_outage:
        return None
    if faults.primary_outage and rng.random() < faults.primary_outage:
        return FALLBACK
    return PRIMARY_UPDATED if faults.model_update else PRIMARY
