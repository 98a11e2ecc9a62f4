"""How a simulated caller words its facts, in Japanese and English.

Facts come from YAML as people write them: an ISO date or a word ("明日", "tomorrow"), a
time "19:00", a party size 4. A caller says them the way a person on the phone would
("19時半です", "7:30 pm"), so the agent's own understanding is what the call tests.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")

LINES: dict[str, dict[str, str]] = {
    "open_reservation": {"ja": "予約をお願いしたいのですが。", "en": "Hi, I'd like to make a reservation."},
    "open_cancellation": {"ja": "予約をキャンセルしたいのですが。", "en": "Hi, I'd like to cancel a reservation."},
    "open_transfer": {"ja": "担当者の方とお話ししたいのですが。", "en": "Can I speak to a member of staff, please?"},
    "yes": {"ja": "はい、お願いします。", "en": "Yes, that's right."},
    "yes_cancel": {"ja": "はい、キャンセルしてください。", "en": "Yes, please cancel it."},
    "accept_alt": {"ja": "はい、その時間でお願いします。", "en": "Yes, that works."},
    "refuse_alt": {"ja": "いいえ、その時間は難しいです。", "en": "No, that time doesn't work for me."},
    "only_day": {"ja": "いいえ、その日しか行けません。", "en": "No, that's the only day I can do."},
    "dont_know": {"ja": "すみません、わかりません。", "en": "Sorry, I don't know."},
    "closing": {"ja": "いいえ、以上です。ありがとうございました。", "en": "No, that's all. Thank you."},
    "here": {"ja": "はい、聞こえています。", "en": "Yes, I'm here."},
}


def line(key: str, lang: str) -> str:
    return LINES[key][lang]


def say_date(value: Any, lang: str) -> str:
    d = _iso(value)
    if d is None:
        return str(value)
    return f"{d.month}月{d.day}日" if lang == "ja" else f"{_EN_MONTHS[d.month - 1]} {d.day}"


def say_time(value: Any, lang: str) -> str:
    m = _HHMM.match(str(value).strip())
    if not m:
        return str(value)
    h, mi = int(m.group(1)), int(m.group(2))
    if lang == "ja":
        return f"{h}時" + ("半" if mi == 30 else f"{mi}分" if mi else "")
    h12, suffix = (h % 12 or 12), ("am" if h < 12 else "pm")
    return f"{h12}:{mi:02d} {suffix}" if mi else f"{h12} {suffix}"


def say_fact(slot: str, value: Any, lang: str) -> str:
    """The phrase for one fact, as an answer to the agent's question."""
    if slot == "date":
        v = say_date(value, lang)
        return f"{v}です。" if lang == "ja" else f"{v}, please."
    if slot == "time":
        v = say_time(value, lang)
        return f"{v}でお願いします。" if lang == "ja" else f"{v}, please."
    if slot == "party_size":
        return f"{value}名です。" if lang == "ja" else f"{value} {'person' if str(value) == '1' else 'people'}."
    if slot == "name":
        return f"{value}です。" if lang == "ja" else f"The name is {value}."
    return f"{value}です。" if lang == "ja" else f"It's {value}."


def say_change(slot: str, value: Any, lang: str) -> str:
    """A correction: 'actually, make it five people'."""
    if slot == "party_size":
        v = f"{value}名" if lang == "ja" else f"{value} {'person' if str(value) == '1' else 'people'}"
    elif slot == "time":
        v = say_time(value, lang)
    elif slot == "date":
        v = say_date(value, lang)
    else:
        v = str(value)
    if lang == "ja":
        return f"やっぱり{v}に変更でお願いします。"
    return f"Actually, make it {v} instead."


def say_no_but(slot: str, value: Any, lang: str) -> str:
    """The agent read back a wrong value: 'No, 4 people.'"""
    fact = say_fact(slot, value, lang)
    return f"いいえ、違います。{fact}" if lang == "ja" else f"No, that's wrong. {fact}"


def _iso(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        return None
