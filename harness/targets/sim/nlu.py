"""Reading a caller's words: language, cues (yes, no, anger, …) and slot values.

Rules, not a model, so the agent is deterministic and runs offline. Each value is read
from the caller's own words and the matched span is blanked out before the next slot is
read, so "7 pm for 4" never reads the 7 as a party size. Japanese has no spaces, so
Japanese patterns use digit lookarounds instead of word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from ...normalize import normalize_text

__all__ = ["Reading", "detect_language", "read", "read_name", "normalize"]

_JA_CHARS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_EN_WORD = re.compile(r"[A-Za-z]{2,}")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII) and single spaces; case kept for names."""
    return normalize_text(text, casefold=False)


def detect_language(text: str) -> str | None:
    """'ja' when the caller uses kana or kanji, 'en' for Latin words, None for digits or noise."""
    if _JA_CHARS.search(text):
        return "ja"
    if _EN_WORD.search(text):
        return "en"
    return None


# --- numbers ---------------------------------------------------------------------------

_KANJI = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_BEFORE_COUNTER = re.compile(r"([〇零一二三四五六七八九十]+)(?=名|人|時|分|日|月)")
_EN_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
_EN_NUMBER_WORD = re.compile(r"\b(" + "|".join(_EN_NUMBERS) + r")\b", re.I)


def _kanji_number(token: str) -> str:
    if "十" not in token:
        return str(int("".join(str(_KANJI[c]) for c in token)))
    tens, _, ones = token.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return token
    return str((_KANJI[tens] if tens else 1) * 10 + (_KANJI[ones] if ones else 0))


def _digits(text: str) -> str:
    """Kanji numerals before a counter ('四名', '七時') and English number words become digits."""
    text = _KANJI_BEFORE_COUNTER.sub(lambda m: _kanji_number(m.group(1)), text)
    text = text.replace("ひとり", "1人").replace("ふたり", "2人")
    return _EN_NUMBER_WORD.sub(lambda m: str(_EN_NUMBERS[m.group(1).lower()]), text)


# --- cues ------------------------------------------------------------------------------


def _rx(*alts: str) -> re.Pattern[str]:
    return re.compile("|".join(alts), re.I)


_EMERGENCY = _rx(r"救急", r"緊急", r"アナフィラキシー", r"アレルギー反応", r"息ができ", r"呼吸が", r"倒れ", r"意識が",
                 r"火事", r"けが人", r"怪我", r"(?<!\d)119(?!\d)", r"\bemergency\b", r"allergic reaction",
                 r"anaphyla", r"can'?t breathe", r"cannot breathe", r"\bambulance\b", r"\bunconscious\b",
                 r"\bcollapsed\b", r"\bchoking\b", r"\bfire\b", r"(?<!\d)911(?!\d)")
_ANGER = _rx(r"ふざけ", r"いい加減にし", r"いいかげんにし", r"怒って", r"むかつ", r"ムカつ", r"話にならな", r"最悪",
             r"何度言", r"なんど言", r"\bridiculous\b", r"\bangry\b", r"\bfurious\b", r"\bunacceptable\b",
             r"\buseless\b", r"\bstupid\b", r"\babsurd\b", r"fed up", r"what the hell", r"\bdamn\b")
_TRANSFER = _rx(r"担当者", r"担当の方", r"人と話", r"人間と", r"スタッフ", r"オペレーター", r"店員", r"責任者", r"店長",
                r"誰か人", r"電話を代わ", r"\bhuman\b", r"real person", r"live person", r"\bstaff\b", r"\boperator\b",
                r"\bmanager\b", r"\brepresentative\b", r"(?:speak|talk) (?:to|with) (?:someone|somebody|a person)")
_CANCEL = _rx(r"キャンセル", r"取り消", r"取消", r"とりけし", r"\bcancel\w*")
_RESERVE = _rx(r"予約", r"空いて", r"空き", r"席を", r"\breserv\w*", r"\bbook(?:ing)?\b", r"\btable\b")
_CORRECTION = _rx(r"やっぱり", r"やはり", r"変更", r"訂正", r"ではなく", r"じゃなくて", r"間違えました", r"\bactually\b",
                  r"\bchange\b", r"\binstead\b", r"\bmake it\b", r"\bi meant\b")
_NO = _rx(r"いいえ", r"^いや", r"違います", r"ちがいます", r"違う", r"間違って", r"じゃない", r"ではない", r"やめ",
          r"\bno\b", r"\bnope\b", r"\bnot\b", r"\bwrong\b", r"\bincorrect\b", r"\bdon'?t\b")
_YES = _rx(r"はい", r"お願いします", r"おねがいします", r"ええ", r"そうです", r"大丈夫", r"問題な", r"問題ありません",
           r"合って", r"あってます", r"間違いな", r"間違いありません", r"結構です", r"いいです", r"それで", r"^ok",
           r"オーケー", r"\byes\b", r"\byeah\b", r"\byep\b", r"\byup\b", r"\bcorrect\b", r"\bright\b", r"\bsure\b",
           r"please do", r"go ahead", r"sounds good", r"that works", r"\bfine\b", r"\bperfect\b", r"\bok\b",
           r"\bokay\b", r"\bconfirm\w*", r"\babsolutely\b", r"of course")
_CLOSING = _rx(r"以上です", r"大丈夫です", r"ありません", r"ないです", r"特にない", r"結構です", r"ありがとう",
               r"失礼します", r"それだけ", r"^いいえ", r"no thanks", r"no,? thank you", r"nothing else", r"that'?s all",
               r"that is all", r"that'?s it", r"that'?s everything", r"\bbye\b", r"\bgoodbye\b", r"^thank", r"^thanks",
               r"^no\.?$", r"^no,? that'?s")


# --- dates -----------------------------------------------------------------------------

_JA_WEEKDAYS = "月火水木金土日"
_EN_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_RX = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?" \
            r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"

_DATE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"明後日|あさって|day after tomorrow", re.I), "plus2"),
    (re.compile(r"明日|あした|あす|\btomorrow\b", re.I), "plus1"),
    (re.compile(r"今日|本日|今夜|今晩|\btoday\b|\btonight\b|this evening", re.I), "plus0"),
    (re.compile(r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*日"), "ja_md"),
    (re.compile(r"(?<![\d:])(\d{1,2})/(\d{1,2})(?![\d/])"), "slash_md"),
    (re.compile(rf"\b{_MONTH_RX}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", re.I), "en_md"),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RX}(?![a-z])", re.I), "en_dm"),
    (re.compile(r"(今週の?|来週の?)?\s*([月火水木金土日])曜(?:日)?"), "ja_wd"),
    (re.compile(r"\b(this|next)?\s*(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I), "en_wd"),
    (re.compile(r"(?<![\d月/])(\d{1,2})\s*日(?!本)"), "ja_d"),
    (re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b", re.I), "en_d"),
]


def _month_number(name: str) -> int:
    return _MONTHS.index(name[:3].lower()) + 1


def _month_day(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            d = date(year, month, day)
        except ValueError:
            return None
        if d >= today:
            return d
    return None


def _day_only(today: date, day: int) -> date | None:
    month, year = today.month, today.year
    for _ in range(2):
        try:
            d = date(year, month, day)
            if d >= today:
                return d
        except ValueError:
            pass
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


def _weekday(today: date, wd: int, which: str | None) -> date:
    """'金曜日' is the next Friday after today; '今週' is this week's, '来週' next week's (weeks start Monday)."""
    monday = today - timedelta(days=today.weekday())
    if which and which.startswith(("今週", "this")):
        d = monday + timedelta(days=wd)
        return d if d >= today else d + timedelta(days=7)
    if which and which.startswith(("来週", "next")):
        return monday + timedelta(days=7 + wd)
    ahead = (wd - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


def _read_date(text: str, today: date) -> tuple[date | None, str, bool]:
    """(date, text with the date blanked, whether a date was named but is impossible)."""
    for rx, rule in _DATE_RULES:
        m = rx.search(text)
        if not m:
            continue
        g = m.groups()
        if rule.startswith("plus"):
            d: date | None = today + timedelta(days=int(rule[-1]))
        elif rule in ("ja_md", "slash_md"):
            d = _month_day(today, int(g[0]), int(g[1]))
        elif rule == "en_md":
            d = _month_day(today, _month_number(g[0]), int(g[1]))
        elif rule == "en_dm":
            d = _month_day(today, _month_number(g[1]), int(g[0]))
        elif rule == "ja_wd":
            d = _weekday(today, _JA_WEEKDAYS.index(g[1]), g[0])
        elif rule == "en_wd":
            d = _weekday(today, _EN_WEEKDAYS.index(g[1].lower()), g[0].lower() if g[0] else None)
        else:  # a day of the month alone
            d = _day_only(today, int(g[0]))
        return d, _blank(text, m), d is None
    return None, text, False


# --- times -----------------------------------------------------------------------------

_PM_WORDS = ("午後", "夜", "夕方", "晩")
_JA_TIME = re.compile(r"(午前|午後|夜の?|夕方の?|晩の?|朝の?|昼の?)?\s*(?<!\d)(\d{1,2})\s*時\s*(半|(\d{1,2})\s*分)?")
_EN_TIME = re.compile(r"(?<![\d:/])(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'?clock)(?![a-z])", re.I)
_HALF_PAST = re.compile(r"\bhalf past (\d{1,2})\b", re.I)
_THIRTY = re.compile(r"\b(?:at )?(\d{1,2}) thirty\b", re.I)
_COLON = re.compile(r"(?<![\d:/])(\d{1,2}):(\d{2})(?!\d)")
_AT = re.compile(r"\bat (\d{1,2})\b(?!\s*(?:people|persons|guests|of us))", re.I)
_NOON = re.compile(r"\bnoon\b|正午", re.I)


def _hhmm(hour: int, minute: int, meridiem: str | None) -> str | None:
    m = (meridiem or "").lower().replace(".", "")
    if m.startswith("p") or any(w in m for w in _PM_WORDS):
        if hour < 12:
            hour += 12
    elif m.startswith("a") or "午前" in m or "朝" in m:
        if hour == 12:
            hour = 0
    elif 1 <= hour <= 10:
        hour += 12  # a restaurant asked for "7" means the evening
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _read_time(text: str) -> tuple[str | None, str]:
    m = _JA_TIME.search(text)
    if m:
        minute = 30 if m.group(3) == "半" else int(m.group(4) or 0)
        return _hhmm(int(m.group(2)), minute, m.group(1)), _blank(text, m)
    m = _EN_TIME.search(text)
    if m:
        return _hhmm(int(m.group(1)), int(m.group(2) or 0), m.group(3)), _blank(text, m)
    for rx, minute in ((_HALF_PAST, 30), (_THIRTY, 30)):
        m = rx.search(text)
        if m:
            return _hhmm(int(m.group(1)), minute, None), _blank(text, m)
    m = _COLON.search(text)
    if m:
        return _hhmm(int(m.group(1)), int(m.group(2)), None), _blank(text, m)
    m = _NOON.search(text)
    if m:
        return "12:00", _blank(text, m)
    m = _AT.search(text)
    if m:
        return _hhmm(int(m.group(1)), 0, None), _blank(text, m)
    return None, text


# --- party size, booking number, phone -----------------------------------------------

_PARTY_RULES = [
    re.compile(r"(?<!\d)(\d{1,2})\s*(?:名|人|めい|にん)"),
    re.compile(r"\b(\d{1,2})\s*(?:people|persons|person|guests|guest|adults|of us|pax|diners)\b", re.I),
    re.compile(r"\bparty of (\d{1,2})\b", re.I),
    re.compile(r"\b(?:for|make it|be) (\d{1,2})\b(?!\s*(?:a\.?m|p\.?m|:|o'?clock))", re.I),
]
_JUST_ME = re.compile(r"\bjust me\b|\bby myself\b|\bmyself only\b", re.I)
_BOOKING_ID = re.compile(r"(?<![A-Za-z0-9])(?:[Bb]|ビー)\s*-?\s*(\d{4})(?!\d)")
_BARE_ID = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<!\d)(0\d{1,4}-?\d{1,4}-?\d{3,4})(?!\d)")


def _read_party(text: str) -> tuple[int | None, str]:
    for rx in _PARTY_RULES:
        m = rx.search(text)
        if m:
            return int(m.group(1)), _blank(text, m)
    m = _JUST_ME.search(text)
    if m:
        return 1, _blank(text, m)
    return None, text


def _blank(text: str, m: re.Match[str]) -> str:
    return text[: m.start()] + " " * (m.end() - m.start()) + text[m.end():]


# --- names -----------------------------------------------------------------------------

_NOT_NAMES = {"大丈夫", "そう", "結構", "以上", "はい", "お願い", "いい", "了解", "わかりました", "予約", "キャンセル"}
_JA_NAME_EXPLICIT = re.compile(r"(?:名前は|なまえは|名義は)\s*([^\s、。,.!?！？]+?)\s*(?:です|でお願いします|で|と申します|$)"
                               r"|([^\s、。,.!?！？]{1,12}?)\s*と申します")
# a name said in Japanese may be written in Latin letters ("Smithです")
_JA_NAME_BARE = re.compile(r"^(?:はい[、,]?\s*)?(?:私は|わたしは|わたくしは)?\s*([一-龥々ァ-ヶーA-Za-z][一-龥々ぁ-んァ-ヶーA-Za-z]{0,11}?)\s*"
                           r"(?:です|でお願いします|でございます|と言います|といいます)?[。.!！]?$")
_EN_NAME_EXPLICIT = re.compile(r"\b(?:my name is|my name's|the name is|the name's|name is|under the name|under)\s+"
                               r"([A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)?)", re.I)
_EN_NAME_LEAD = re.compile(r"^(?:yes,?\s*|sure,?\s*)?(?:it's|it is|this is|i'm|i am|call me)\s+"
                           r"([A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)?)", re.I)
_EN_NAME_BARE = re.compile(r"^([A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)?)[.!]?$")
_EN_NOT_NAMES = {"yes", "no", "ok", "okay", "sure", "hello", "hi", "thanks", "please", "sorry", "what", "pardon"}
_EN_TRAILING = re.compile(r"\s+(?:please|thanks|thank you|for|at|on|and|i)\b.*$", re.I)


_NOT_IN_NAMES = ("願い", "予約", "キャンセル", "大丈夫", "結構", "変更")


def read_name(text: str, *, expecting: bool) -> str | None:
    """A caller's name: from explicit phrases anywhere, or the whole turn when it was asked for."""
    t = text.strip(" ,.、。!?！？")
    m = _JA_NAME_EXPLICIT.search(t)
    if m:
        name = (m.group(1) or m.group(2)).removesuffix("様")
        return name if name not in _NOT_NAMES else None
    m = _EN_NAME_EXPLICIT.search(t) or (_EN_NAME_LEAD.search(t) if expecting else None)
    if m:
        return _en_name(m.group(1))
    if not expecting:
        return None
    if not _JA_CHARS.search(t):
        t = re.split(r"[,;.!?]", t)[0].strip()  # "Smith, for 4 people" -> "Smith" (slots already read)
    m = _JA_NAME_BARE.match(t)
    if m:
        name = m.group(1).removesuffix("様")
        if name not in _NOT_NAMES and not any(w in name for w in _NOT_IN_NAMES):
            return name
    m = _EN_NAME_BARE.match(t)
    if m and m.group(1).split()[0].lower() not in _EN_NOT_NAMES:
        return _en_name(m.group(1))
    return None


def _en_name(raw: str) -> str | None:
    raw = _EN_TRAILING.sub("", raw).strip()
    if not raw or raw.split()[0].lower() in _EN_NOT_NAMES:
        return None
    return " ".join(w[:1].upper() + w[1:] for w in raw.split())


# --- one reading -----------------------------------------------------------------------


@dataclass
class Reading:
    """Everything one caller turn says, as far as the rules can tell."""

    text: str
    slots: dict[str, object] = field(default_factory=dict)  # date (ISO), time, party_size, phone
    bad_date: bool = False  # a date was named but does not exist (e.g. 2月30日)
    booking_id: str | None = None
    name: str | None = None
    yes: bool = False
    no: bool = False
    closing: bool = False
    correction: bool = False
    reserve: bool = False
    cancel: bool = False
    transfer: bool = False
    anger: bool = False
    emergency: bool = False


def read(raw: str, today: date, *, expecting: str | None = None) -> Reading:
    """Read one caller turn. `expecting` is what the agent just asked for (e.g. 'name', 'booking_id')."""
    text = normalize(raw)
    r = Reading(text=text)
    r.emergency = bool(_EMERGENCY.search(text))
    r.anger = bool(_ANGER.search(text))
    r.transfer = bool(_TRANSFER.search(text))
    r.cancel = bool(_CANCEL.search(text))
    r.reserve = bool(_RESERVE.search(text))
    r.correction = bool(_CORRECTION.search(text))
    r.no = bool(_NO.search(text))
    r.yes = bool(_YES.search(text)) and not r.no
    r.closing = bool(_CLOSING.search(text))

    work = _digits(text)
    m = _PHONE.search(work)
    if m and 10 <= len(m.group(1).replace("-", "")) <= 11:
        r.slots["phone"] = m.group(1).replace("-", "")
        work = _blank(work, m)
    m = _BOOKING_ID.search(work) or (_BARE_ID.search(work) if expecting == "booking_id" else None)
    if m:
        r.booking_id = f"B{m.group(1)}"
        work = _blank(work, m)
    d, work, r.bad_date = _read_date(work, today)
    if d is not None:
        r.slots["date"] = d.isoformat()
    t, work = _read_time(work)
    if t is not None:
        r.slots["time"] = t
    n, work = _read_party(work)
    if n is not None:
        r.slots["party_size"] = n
    leftover = re.sub(r"\s+", " ", work).strip()
    r.name = read_name(leftover, expecting=expecting == "name") if leftover else None
    return r
