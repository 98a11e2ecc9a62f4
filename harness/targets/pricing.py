"""What a call cost, from the token counts an endpoint reports and the prices a suite gives.

Prices are the suite's own data (providers change them, gateways add margins), so nothing
here is built in: a model without a price simply has no cost.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


def cost_of(
    prices: dict[str, Price], models: tuple[str | None, ...], tokens_in: int | None, tokens_out: int | None
) -> float | None:
    """The cost of one request in USD, or None when no price or no usage is known.

    `models` are tried in order: the model the endpoint says answered (a dated snapshot such
    as gpt-4o-2024-08-06), then the name the suite asked for (an alias such as `primary`).
    """
    if tokens_in is None and tokens_out is None:
        return None
    price = next((prices[m] for m in models if m and m in prices), None)
    if price is None:
        return None
    return ((tokens_in or 0) * price.input_per_mtok + (tokens_out or 0) * price.output_per_mtok) / 1_000_000
