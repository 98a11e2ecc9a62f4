"""The reference call flow: greet → intent → slots → confirm → done, or transfer to a human.

`CallFlow` decides what the agent says next from what the caller said and what it asked
last (`pending`). It returns `Part`s (what to say); `phrases.render` words them. It holds
the call's state (intent, slots, transfer, side effects) and never sleeps or fails: timing
and faults belong to the conversation around it.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable

from .backend import Backend, Booking
from .knowledge import Knowledge
from .nlu import Reading, detect_language, normalize, read
from .phrases import Part

__all__ = ["CallFlow"]

SLOTS = ("date", "time", "party_size", "name")
_ASK = {"date": "ask_date", "time": "ask_time", "party_size": "ask_party", "name": "ask_name"}
_RESERVATION_STEPS = {*SLOTS, "confirm_booking", "accept_alt", "change_what"}
_CANCEL_STEPS = {"booking_id", "confirm_cancel"}
MAX_MISSES = 3  # misunderstandings in a row before a human takes over
MAX_SILENCES = 3
MAX_NOT_FOUND = 3
MAX_REFUSED_ALTERNATIVES = 2  # offers turned down before a human looks for a table


class CallFlow:
    def __init__(self, backend: Backend, knowledge: Knowledge, lang: str | None,
                 hallucinate: Callable[[], bool]):
        self.backend = backend
        self.knowledge = knowledge
        self.lang = lang  # None until the caller's first words show it
        self._hallucinate = hallucinate
        self.intent: str | None = None
        self.slots: dict[str, Any] = {}
        self.pending: str | None = None  # what the agent asked for last
        self.alt_time: str | None = None
        self.found: Booking | None = None
        self.transferred = False
        self.transfer_reason: str | None = None
        self.ended = False
        self.ended_by: str | None = None
        self.side_effects: dict[str, Any] = {}
        self._misses = 0
        self._missed = False
        self._silences = 0
        self._not_found = 0
        self._refused_alts = 0
        self._accepted_full: tuple[str, str] | None = None  # a full slot the agent wrongly called free

    # --- entry points --------------------------------------------------------------------
    def on_say(self, raw: str, reading: Reading | None = None) -> list[Part]:
        """The agent's answer to the caller's words; `reading` replaces the rules' reading (live model)."""
        text = normalize(raw or "")
        if self.lang is None:
            self.lang = detect_language(text)
        self._silences = 0
        return self._counting(lambda: self._say(text, reading))

    def on_dtmf(self, digits: str) -> list[Part]:
        self._silences = 0
        return self._counting(lambda: self._dtmf(digits.strip()))

    def on_silence(self) -> list[Part]:
        self._silences += 1
        if self._silences >= MAX_SILENCES:
            self._end("agent")
            return [Part("silence_end")]
        return [Part("silence_prompt")]

    def on_outage(self) -> list[Part]:
        """No model could answer: a human takes the call rather than leaving the caller hanging."""
        return self._transfer("outage")

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"intent": self.intent, "slots": dict(self.slots), "transferred": self.transferred}
        if self.transferred:
            out["transfer_reason"] = self.transfer_reason
        return out

    # --- dispatch ------------------------------------------------------------------------
    def _counting(self, step: Callable[[], list[Part]]) -> list[Part]:
        self._missed = False
        parts = step()
        if not self._missed:
            self._misses = 0
        return parts

    def _say(self, text: str, reading: Reading | None = None) -> list[Part]:
        if not text:
            return self._miss()
        r = reading if reading is not None else read(text, self.backend.today, expecting=self.pending)
        if r.emergency:
            return self._transfer("emergency")
        if r.anger:
            return self._transfer("anger")
        if r.transfer:
            self.intent = "transfer_request"
            return self._transfer("request")
        if r.cancel and self.pending not in _CANCEL_STEPS:
            return self._start_cancel(r)
        if self.pending in _CANCEL_STEPS:
            return self._cancellation(r)
        if self.pending in _RESERVATION_STEPS:
            return self._reservation(r)
        # nothing asked, or a task is finished
        if r.reserve:
            return self._reservation(r)
        topics = self.knowledge.match(r.text)
        if topics:
            return self._answer(topics)
        if r.slots.keys() & {"date", "time", "party_size"}:
            return self._reservation(r)
        if r.closing or (self.pending == "anything_else" and r.no):
            self._end("caller")
            return [Part("goodbye")]
        if self.pending == "anything_else" and r.yes:
            self.pending = None
            return [Part("how_help")]
        return self._miss()

    def _dtmf(self, digits: str) -> list[Part]:
        if self.pending == "booking_id" and digits.isdigit() and len(digits) >= 3:
            return self._lookup(f"B{digits}")
        if self.pending == "party_size" and digits.isdigit():
            return self._reservation(Reading(text=digits, slots={"party_size": int(digits)}))
        if digits == "0":
            self.intent = "transfer_request"
            return self._transfer("request")
        if self.pending in (None, "anything_else"):
            if digits == "1":
                return self._reservation(Reading(text=""))
            if digits == "2":
                return self._start_cancel(Reading(text=""))
        return self._miss()

    # --- reservation ---------------------------------------------------------------------
    def _reservation(self, r: Reading) -> list[Part]:
        new = {k: v for k, v in r.slots.items()}
        if r.name:
            new["name"] = r.name
        first = self.intent != "reservation" or self.pending not in _RESERVATION_STEPS and "booking" in self.side_effects
        parts: list[Part] = []
        if first:
            self.intent, self.slots, self._accepted_full = "reservation", {}, None
            parts.append(Part("reservation_start"))
        step = self.pending
        if r.bad_date and "date" not in new:
            self.pending = "date"
            return parts + [Part("bad_date")]
        if not first:
            if step == "accept_alt" and "time" not in new:
                if r.yes:
                    new["time"] = self.alt_time
                elif r.no:
                    self._refused_alts += 1
                    if self._refused_alts >= MAX_REFUSED_ALTERNATIVES:
                        return self._transfer("no_availability")
                    self.pending = "time"
                    return [Part("ask_time")]
            if step == "confirm_booking" and not new:
                if r.yes:
                    return self._book()
                if r.no or r.correction:
                    self.pending = "change_what"
                    return [Part("what_to_change")]
            if not new:
                if r.closing and not r.yes:
                    self._end("caller")
                    return [Part("goodbye")]
                topics = self.knowledge.match(r.text)
                if topics:
                    return self._answer(topics)
                if r.reserve or r.correction:
                    return [self._reask()]
                return self._miss()
        correcting = not first and step in ("confirm_booking", "change_what")
        self.slots.update(new)
        problem = self._validate()
        if problem:
            return parts + problem
        if correcting:
            parts.append(Part("changed"))
        missing = next((s for s in SLOTS if s not in self.slots), None)
        if missing is None:
            self.pending = "confirm_booking"
            parts.append(self._reask())
            return parts
        if new.keys() & {"date", "time", "party_size"}:
            parts.append(Part("ack", dict(self.slots)))
        self.pending = missing
        parts.append(Part(_ASK[missing]))
        return parts

    def _validate(self) -> list[Part]:
        """Refuse what the restaurant cannot do; the caller is asked again for that slot."""
        s, facts = self.slots, self.backend.facts
        n = s.get("party_size")
        if n is not None and n > facts.max_party:
            return self._transfer("group", party_size=n)
        if n is not None and n < 1:
            del s["party_size"]
            self.pending = "party_size"
            return [Part("ask_party")]
        d = date.fromisoformat(s["date"]) if "date" in s else None
        if d is not None and d < self.backend.today:
            del s["date"]
            self.pending = "date"
            return [Part("bad_date")]
        if d is not None and self.backend.is_closed(d):
            del s["date"]
            self.pending = "date"
            return [Part("closed_day", {"date": d.isoformat()})]
        t = s.get("time")
        if t is not None and not self.backend.in_hours(t):
            del s["time"]
            self.pending = "time"
            return [Part("out_of_hours")]
        if d is not None and t is not None and not self.backend.is_free(d, t):
            if self._accepted_full == (d.isoformat(), t) or self._hallucinate():
                self._accepted_full = (d.isoformat(), t)
                return []
            del s["time"]
            alt = self.backend.alternative(d, t)
            if alt is None:
                del s["date"]
                self.pending = "date"
                return [Part("full_day", {"date": d.isoformat()})]
            self.alt_time = alt
            self.pending = "accept_alt"
            return [Part("fully_booked", {"date": d.isoformat(), "time": t, "alt": alt})]
        return []

    def _book(self) -> list[Part]:
        s = self.slots
        b = self.backend.book(date.fromisoformat(s["date"]), s["time"], s["party_size"], s["name"], s.get("phone"))
        self.side_effects["booking"] = b.as_dict()
        self.pending = "anything_else"
        return [Part("booked", {"id": b.id, "name": b.name}), Part("anything_else")]

    # --- cancellation --------------------------------------------------------------------
    def _start_cancel(self, r: Reading) -> list[Part]:
        self.intent, self.slots, self.found, self._not_found = "cancellation", {}, None, 0
        if r.name:
            self.slots["name"] = r.name
        parts = [Part("cancel_start")]
        if r.booking_id:
            return parts + self._lookup(r.booking_id)
        self.pending = "booking_id"
        return parts + [Part("ask_booking_id")]

    def _cancellation(self, r: Reading) -> list[Part]:
        if r.name:
            self.slots["name"] = r.name
        if r.booking_id and (self.pending == "booking_id" or r.booking_id != self.slots.get("booking_id")):
            return self._lookup(r.booking_id)
        if self.pending == "confirm_cancel" and self.found is not None:
            if r.yes:
                self.backend.cancel(self.found.id)
                self.side_effects["cancelled"] = self.found.id
                self.pending = "anything_else"
                return [Part("cancelled", {"id": self.found.id}), Part("anything_else")]
            if r.no:
                self.pending = "anything_else"
                return [Part("kept", {"id": self.found.id}), Part("anything_else")]
        topics = self.knowledge.match(r.text)
        if topics:
            return self._answer(topics)
        return self._miss()

    def _lookup(self, booking_id: str) -> list[Part]:
        b = self.backend.find(booking_id)
        name = self.slots.get("name")
        if b is None or (name and not _same_name(name, b.name)):
            self._not_found += 1
            self.slots.pop("booking_id", None)
            self.found = None
            if self._not_found >= MAX_NOT_FOUND:
                return self._transfer("not_found")
            self.pending = "booking_id"
            return [Part("not_found" if b is None else "name_mismatch", {"id": booking_id})]
        self.found = b
        self.slots["booking_id"] = b.id
        self.pending = "confirm_cancel"
        return [self._reask()]

    # --- shared --------------------------------------------------------------------------
    def _answer(self, topics: list[str]) -> list[Part]:
        parts = [Part("faq", {"topic": t}) for t in topics]
        if self.intent in (None, "unknown"):
            self.intent = "question"
        if self.pending is None:
            self.pending = "anything_else"
        parts.append(self._reask())
        return parts

    def _reask(self) -> Part:
        """The question the agent is waiting on, asked again."""
        p = self.pending
        if p in _ASK:
            return Part(_ASK[p])
        if p == "confirm_booking":
            return Part("confirm", dict(self.slots))
        if p == "accept_alt":
            return Part("ask_alt", {"alt": self.alt_time})
        if p == "change_what":
            return Part("what_to_change")
        if p == "booking_id":
            return Part("ask_booking_id")
        if p == "confirm_cancel" and self.found is not None:
            b = self.found
            return Part("confirm_cancel", {"id": b.id, "name": b.name, "date": b.date, "time": b.time,
                                           "party_size": b.party_size})
        if p == "anything_else":
            return Part("anything_else")
        return Part("how_help")

    def _miss(self) -> list[Part]:
        self._missed = True
        self._misses += 1
        if self.intent is None:
            self.intent = "unknown"
        if self._misses >= MAX_MISSES:
            return self._transfer("misunderstanding")
        return [Part("not_understood"), self._reask()]

    def _transfer(self, reason: str, **fields: Any) -> list[Part]:
        self.transferred, self.transfer_reason = True, reason
        self.pending = None
        self._end("agent")
        return [Part(f"transfer_{reason}", fields)]

    def _end(self, by: str) -> None:
        self.ended, self.ended_by = True, by


def _same_name(said: str, booked: str) -> bool:
    a, b = said.casefold().replace(" ", ""), booked.casefold().replace(" ", "")
    return a in b or b in a
