"""What the agent just asked for, read from its words (Japanese and English).

A rule-based caller has to hear the agent the way a person does: from the text alone,
whatever target it is talking to. The order of the rules matters: a reply often says
several things ("満席です。19時半でしたら…"), and the most specific cue decides.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["hear", "ASKS"]


def _rx(*alts: str) -> re.Pattern[str]:
    return re.compile("|".join(alts), re.I)


# (cue, pattern) in priority order
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("transfer", _rx(r"おつなぎ", r"つなぎます", r"\btransfer", r"connecting you", r"connect you")),
    ("booked", _rx(r"予約番号は\s*B\s*\d", r"番号は\s*B\s*\d", r"ご予約を承りました", r"ご予約が完了", r"予約しました", r"booking number is",
                   r"reservation number is", r"table is booked", r"^booked\.")),
    ("cancelled", _rx(r"キャンセル(?:いた|され)?(?:し)?ました", r"(?:has been|is) cancelled", r"\bcancelled\.")),
    ("kept", _rx(r"そのままにして", r"残しておきます", r"予約はそのまま", r"keep your booking", r"stays in place",
                 r"booking kept")),
    ("not_found", _rx(r"見つかりません", r"確認できません", r"一致しません", r"合いません", r"couldn'?t find",
                      r"no reservation under", r"no booking", r"doesn'?t match", r"different name")),
    ("other_day", _rx(r"別の日", r"ほかの日", r"another day")),
    ("other_time", _rx(r"別の時間", r"ほかのお時間", r"another time")),
    ("alternative", _rx(r"満席", r"いっぱい", r"fully booked", r"is full", r"instead\?")),
    ("confirm_cancel", _rx(r"キャンセルしてよろしい", r"キャンセルしてもよろしい", r"キャンセルしますか", r"shall i cancel",
                           r"want me to cancel", r"cancel it\?")),
    ("confirm", _rx(r"よろしいでしょうか", r"お間違いない", r"よろしいですか", r"is that correct", r"shall i book",
                    r"book it\?", r"is that right")),
    ("booking_id", _rx(r"予約番号", r"booking number", r"reservation number")),
    ("name", _rx(r"お名前", r"名前は", r"your name", r"what name")),
    ("party_size", _rx(r"何名", r"人数", r"how many")),
    ("time", _rx(r"何時", r"お時間", r"時間は", r"what time")),
    ("date", _rx(r"日にち", r"何日", r"what date", r"which day", r"which date")),
    ("phone", _rx(r"電話番号", r"phone number", r"contact number")),
    ("anything_else", _rx(r"ほかにご用件", r"何かございますか", r"ほかには", r"anything else")),
    ("hello", _rx(r"もしもし", r"are you still there", r"can you hear me", r"^hello\?$")),
    ("not_understood", _rx(r"聞き取れ", r"もう一度", r"didn'?t catch", r"say that again", r"again\?")),
    ("goodbye", _rx(r"失礼いたします", r"ありがとうございました", r"goodbye", r"have a great day", r"\bbye\b")),
    ("how_help", _rx(r"ご用件", r"how can i help", r"what can i do", r"what do you need")),
]

ASKS = ("booking_id", "name", "party_size", "time", "date", "phone")


def hear(text: str) -> str:
    """The cue of the agent's reply: what it asks or tells (`unknown` when no rule matches)."""
    flat = unicodedata.normalize("NFKC", text or "").strip()
    for cue, rx in _RULES:
        if rx.search(flat):
            return cue
    return "unknown"
