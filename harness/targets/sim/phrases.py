"""What the agent says, in Japanese and English, in three wordings.

Wording 0 is the primary model's, 1 a silently updated primary's, 2 the fallback model's.
All three carry the same facts (times, party sizes, booking numbers), so exact checks keep
passing while similarity to the baseline drops: that is what a drift check must see.
The call flow decides *what* to say (a list of `Part`s); this module decides *how*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .knowledge import Knowledge

__all__ = ["Part", "render", "fmt_date", "fmt_time"]


@dataclass
class Part:
    key: str
    fields: dict[str, Any] = field(default_factory=dict)


_JA_WD = "月火水木金土日"
_EN_WD = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def fmt_date(iso: str, lang: str) -> str:
    d = date.fromisoformat(iso)
    if lang == "ja":
        return f"{d.month}月{d.day}日（{_JA_WD[d.weekday()]}）"
    return f"{_EN_WD[d.weekday()]}, {_EN_MONTHS[d.month - 1]} {d.day}"


def fmt_time(hhmm: str, lang: str) -> str:
    h, m = (int(x) for x in hhmm.split(":"))
    if lang == "ja":
        return f"{h}時" + ("半" if m == 30 else f"{m}分" if m else "")
    suffix = "am" if h < 12 else "pm"
    h12 = h % 12 or 12
    return f"{h12}:{m:02d} {suffix}" if m else f"{h12} {suffix}"


def fmt_party(n: int, lang: str) -> str:
    if lang == "ja":
        return f"{n}名様"
    return f"{n} {'person' if n == 1 else 'people'}"


# key -> language -> (primary, updated, fallback)
PHRASES: dict[str, dict[str, tuple[str, str, str]]] = {
    "greet": {
        "ja": ("お電話ありがとうございます。レストラン桜です。ご予約、キャンセル、お問い合わせを承ります。ご用件をどうぞ。",) * 3,
        "en": ("Thank you for calling Sakura Restaurant. I can help with reservations, cancellations and "
               "questions. How can I help you?",) * 3,
    },
    "how_help": {
        "ja": ("ご用件をお聞かせください。", "どのようなご用件でしょうか。", "ご用件をどうぞ。"),
        "en": ("How can I help you?", "What can I do for you today?", "What do you need?"),
    },
    "reservation_start": {
        "ja": ("ご予約ありがとうございます。", "ご予約ですね、承ります。", "予約ですね。"),
        "en": ("I'd be happy to book a table for you.", "Sure, let's get you a table.", "Reservation, okay."),
    },
    "ack": {
        "ja": ("{summary}ですね。", "{summary}でございますね。", "{summary}、承知しました。"),
        "en": ("Got it: a table {summary}.", "Okay, a table {summary}.", "Noted: table {summary}."),
    },
    "ask_date": {
        "ja": ("ご希望の日にちをお聞かせください。", "何日のご来店をご希望でしょうか。", "日にちは？"),
        "en": ("What date would you like?", "Which day would you like to come in?", "Which date?"),
    },
    "ask_time": {
        "ja": ("何時ごろがご希望でしょうか。", "ご希望のお時間をお聞かせいただけますか。", "時間は何時にしますか。"),
        "en": ("What time would you like?", "What time works best for you?", "What time?"),
    },
    "ask_party": {
        "ja": ("何名様でしょうか。", "ご来店は何名様でいらっしゃいますか。", "人数は何名ですか。"),
        "en": ("How many people will be dining?", "How many guests should I book for?", "How many people?"),
    },
    "ask_name": {
        "ja": ("お名前を頂戴できますか。", "ご予約のお名前をお聞かせください。", "お名前は？"),
        "en": ("May I have your name, please?", "What name should I put the booking under?", "Your name?"),
    },
    "confirm": {
        "ja": ("{name}様、{date}の{time}から{party}でのご予約でよろしいでしょうか。",
               "確認いたします。{date}、{time}、{party}、{name}様のお名前でのご予約です。お間違いないでしょうか。",
               "{name}様、{date} {time}、{party}。この内容で予約してよろしいですか。"),
        "en": ("Let me confirm: a table for {party} on {date} at {time}, under the name {name}. Is that correct?",
               "To confirm, that's {party} on {date} at {time} for {name}. Shall I book it?",
               "{name}, {party}, {date}, {time}. Book it?"),
    },
    "booked": {
        "ja": ("ご予約を承りました。予約番号は{id}です。{name}様のご来店をお待ちしております。",
               "ご予約が完了いたしました。予約番号は{id}でございます。{name}様、お待ちしております。",
               "予約しました。番号は{id}です。"),
        "en": ("Your table is booked. Your booking number is {id}. We look forward to seeing you, {name}.",
               "All set! Your reservation number is {id}. See you soon, {name}.",
               "Booked. Number {id}."),
    },
    "what_to_change": {
        "ja": ("失礼いたしました。どちらを変更なさいますか。", "かしこまりました。変更したい点をお聞かせください。",
               "どこを直しますか。"),
        "en": ("Sorry about that. What would you like to change?", "No problem. What should I change?",
               "What to change?"),
    },
    "changed": {
        "ja": ("かしこまりました。", "承知いたしました。", "了解です。"),
        "en": ("Certainly.", "No problem.", "Okay."),
    },
    "fully_booked": {
        "ja": ("申し訳ございません。{date}の{time}は満席です。{alt}でしたらご用意できます。いかがでしょうか。",
               "あいにく{date}の{time}はご予約でいっぱいです。{alt}でしたらお席がございますが、いかがなさいますか。",
               "{date} {time}は満席です。{alt}なら空いています。"),
        "en": ("I'm sorry, we're fully booked at {time} on {date}. {alt} is available. Would that work?",
               "Unfortunately {time} on {date} is full, but we have a table at {alt}. Would you like that instead?",
               "{time} on {date} is full. {alt} is free. OK?"),
    },
    "ask_alt": {
        "ja": ("{alt}でよろしいでしょうか。", "{alt}はいかがでしょうか。", "{alt}でいいですか。"),
        "en": ("Would {alt} work for you?", "How about {alt}?", "{alt}?"),
    },
    "full_day": {
        "ja": ("申し訳ございません。{date}は終日満席です。別の日はいかがでしょうか。",
               "あいにく{date}は一日ご予約でいっぱいです。ほかの日にちはいかがですか。", "{date}は満席です。別の日は？"),
        "en": ("I'm sorry, {date} is fully booked. Would another day work?",
               "Unfortunately we're full all day on {date}. Could you come another day?", "{date} is full. Another day?"),
    },
    "closed_day": {
        "ja": ("申し訳ございません。{date}は定休日です（毎週火曜日）。別の日はいかがでしょうか。",
               "あいにく{date}は定休日（毎週火曜日）でございます。ほかの日はいかがですか。",
               "{date}は定休日（火曜日）です。別の日は？"),
        "en": ("I'm sorry, we're closed on {date}; we close every Tuesday. Would another day work?",
               "Unfortunately {date} is our day off (we're closed on Tuesdays). Could you come another day?",
               "Closed on {date} (Tuesdays). Another day?"),
    },
    "bad_date": {
        "ja": ("申し訳ございません、その日付はお受けできません。ご希望の日にちをもう一度お聞かせください。",
               "恐れ入りますが、その日にちではご予約いただけません。別の日にちをお願いします。", "その日付は無効です。別の日は？"),
        "en": ("I'm sorry, I can't book that date. Which date would you like?",
               "That date doesn't work, I'm afraid. Could you give me another date?", "Invalid date. Another date?"),
    },
    "out_of_hours": {
        "ja": ("申し訳ございません。ご予約は11時から21時まで承っております。別のお時間はいかがでしょうか。",
               "恐れ入りますが、ご予約いただけるのは11時から21時までです。ほかのお時間はいかがですか。",
               "予約は11時から21時までです。別の時間は？"),
        "en": ("I'm sorry, we take reservations from 11 am to 9 pm. Would another time work?",
               "Unfortunately bookings are only possible between 11 am and 9 pm. Could you pick another time?",
               "Bookings 11 am to 9 pm only. Another time?"),
    },
    "cancel_start": {
        "ja": ("キャンセルですね。", "ご予約のキャンセルですね、承ります。", "キャンセルですね。"),
        "en": ("Sure, I can cancel a booking for you.", "Of course, let's cancel your booking.", "Cancellation, okay."),
    },
    "ask_booking_id": {
        "ja": ("予約番号をお聞かせください。", "恐れ入りますが、予約番号を教えていただけますか。", "予約番号は？"),
        "en": ("What is your booking number?", "Could you tell me your booking number?", "Booking number?"),
    },
    "not_found": {
        "ja": ("申し訳ございません。予約番号{id}のご予約は見つかりませんでした。もう一度、予約番号をお願いできますか。",
               "恐れ入ります、{id}というご予約は確認できませんでした。予約番号をもう一度お聞かせください。",
               "{id}は見つかりません。番号をもう一度。"),
        "en": ("I'm sorry, I couldn't find a booking with the number {id}. Could you give me the number again?",
               "Hmm, there's no reservation under {id}. Could you check the number and tell me again?",
               "No booking {id}. Number again?"),
    },
    "name_mismatch": {
        "ja": ("申し訳ございません。予約番号{id}とお名前が一致しませんでした。予約番号をもう一度お願いできますか。",
               "恐れ入ります、{id}のご予約とお名前が合いませんでした。もう一度予約番号をお聞かせください。",
               "{id}と名前が一致しません。番号をもう一度。"),
        "en": ("I'm sorry, booking {id} is under a different name. Could you give me the number again?",
               "Hmm, the name doesn't match booking {id}. Could you check the number?",
               "Name doesn't match {id}. Number again?"),
    },
    "confirm_cancel": {
        "ja": ("予約番号{id}、{name}様、{date}の{time}から{party}のご予約ですね。こちらをキャンセルしてよろしいでしょうか。",
               "{date} {time}、{party}、{name}様のご予約（予約番号{id}）を確認しました。キャンセルしてもよろしいですか。",
               "{id}、{name}様、{date} {time}、{party}。キャンセルしますか。"),
        "en": ("I found booking {id} for {name}: {party} on {date} at {time}. Shall I cancel it?",
               "Booking {id} is {party} on {date} at {time} under {name}. Do you want me to cancel it?",
               "{id}: {name}, {party}, {date}, {time}. Cancel it?"),
    },
    "cancelled": {
        "ja": ("予約番号{id}のご予約をキャンセルいたしました。またのご利用をお待ちしております。",
               "{id}のご予約はキャンセルされました。またのお越しをお待ちしております。", "{id}をキャンセルしました。"),
        "en": ("Booking {id} has been cancelled. We hope to see you another time.",
               "Done, reservation {id} is cancelled. Hope to see you again soon.", "{id} cancelled."),
    },
    "kept": {
        "ja": ("かしこまりました。ご予約はそのままにしております。", "承知しました。ご予約はキャンセルせずに残しておきます。",
               "予約はそのままです。"),
        "en": ("Okay, I'll keep your booking as it is.", "No problem, your reservation stays in place.", "Booking kept."),
    },
    "anything_else": {
        "ja": ("ほかにご用件はございますか。", "そのほか、何かございますか。", "ほかには？"),
        "en": ("Is there anything else I can help with?", "Can I help you with anything else?", "Anything else?"),
    },
    "goodbye": {
        "ja": ("お電話ありがとうございました。失礼いたします。", "ありがとうございました。お待ちしております。失礼いたします。",
               "ありがとうございました。"),
        "en": ("Thank you for calling. Goodbye.", "Thanks for calling Sakura Restaurant. Have a great day!",
               "Thanks, bye."),
    },
    "transfer_request": {
        "ja": ("かしこまりました。担当者におつなぎします。少々お待ちください。",
               "承知いたしました。ただいまスタッフにおつなぎいたしますので、そのままお待ちください。",
               "担当者につなぎます。お待ちください。"),
        "en": ("Of course. I'll transfer you to a member of staff. Please hold.",
               "Sure, let me connect you with one of our staff. One moment, please.", "Transferring you to staff."),
    },
    "transfer_anger": {
        "ja": ("ご不便をおかけして大変申し訳ございません。担当者におつなぎいたします。少々お待ちください。",
               "ご迷惑をおかけし申し訳ございません。すぐにスタッフにおつなぎします。",
               "申し訳ありません。担当者につなぎます。"),
        "en": ("I'm very sorry for the trouble. Let me transfer you to a member of staff right away.",
               "I apologise for the frustration. I'm connecting you with our staff now.",
               "Sorry. Transferring you to staff."),
    },
    "transfer_emergency": {
        "ja": ("緊急のご用件ですね。すぐに担当者におつなぎします。命に関わる場合は、すぐに119番へお電話ください。",
               "緊急とのこと、ただちにスタッフにおつなぎします。危険な状態でしたら119番に通報してください。",
               "緊急ですね。担当者につなぎます。危険な場合は119番へ。"),
        "en": ("This sounds like an emergency. I'm transferring you to a member of staff now. If anyone is in "
               "danger, please call emergency services (119 in Japan) right away.",
               "That sounds urgent. I'm connecting you to our staff immediately. If someone's life is at risk, "
               "call emergency services (119 in Japan) now.",
               "Emergency: transferring you to staff. If anyone is in danger, call 119."),
    },
    "transfer_misunderstanding": {
        "ja": ("申し訳ございません。うまくお聞き取りできませんでしたので、担当者におつなぎします。少々お待ちください。",
               "お役に立てず申し訳ございません。スタッフにおつなぎいたします。",
               "聞き取れませんでした。担当者につなぎます。"),
        "en": ("I'm sorry, I'm having trouble understanding. Let me transfer you to a member of staff.",
               "Apologies, I couldn't follow that. I'll connect you with our staff.",
               "Didn't understand. Transferring you to staff."),
    },
    "transfer_group": {
        "ja": ("{party}のご予約ですね。9名様以上のご予約は担当者が承りますので、おつなぎします。少々お待ちください。",
               "{party}でのご来店ですね。9名様以上の団体のご予約はスタッフがご案内いたします。おつなぎしますのでお待ちください。",
               "{party}ですね。9名以上は担当者につなぎます。"),
        "en": ("A booking for {party}: groups of 9 or more are handled by our staff, so I'll transfer you now. "
               "Please hold.",
               "For {party}, one of our staff will arrange the group booking (9 or more). Connecting you now.",
               "{party}: groups of 9+ go to staff. Transferring."),
    },
    "transfer_not_found": {
        "ja": ("申し訳ございません。ご予約を確認できませんでしたので、担当者におつなぎします。少々お待ちください。",
               "恐れ入りますが、ご予約が見つかりませんでしたので、スタッフにおつなぎいたします。",
               "予約が見つかりません。担当者につなぎます。"),
        "en": ("I'm sorry, I still can't find that booking. Let me transfer you to a member of staff.",
               "I couldn't locate the reservation, so I'll connect you with our staff.",
               "Booking not found. Transferring you to staff."),
    },
    "transfer_no_availability": {
        "ja": ("ご希望に沿えず申し訳ございません。担当者がお席をお探ししますので、おつなぎします。少々お待ちください。",
               "あいにくご希望のお時間にお席がご用意できません。スタッフにおつなぎいたしますので、お待ちください。",
               "空きがありません。担当者につなぎます。"),
        "en": ("I'm sorry we couldn't find a time that suits you. Let me transfer you to a member of staff who can "
               "look further. Please hold.",
               "Sorry, nothing we have fits. I'll connect you with our staff to find you a table.",
               "No suitable time. Transferring you to staff."),
    },
    "transfer_outage": {
        "ja": ("申し訳ございません。ただいまシステムに障害が発生しております。担当者におつなぎしますので、少々お待ちください。",) * 3,
        "en": ("I'm sorry, our system is having trouble right now. I'll transfer you to a member of staff. "
               "Please hold.",) * 3,
    },
    "not_understood": {
        "ja": ("申し訳ございません、よく聞き取れませんでした。", "恐れ入ります、もう一度おっしゃっていただけますか。",
               "すみません、もう一度。"),
        "en": ("Sorry, I didn't catch that.", "Sorry, could you say that again?", "Sorry, again?"),
    },
    "silence_prompt": {
        "ja": ("もしもし、お聞きになれますか？", "もしもし、お電話つながっておりますでしょうか？", "もしもし？"),
        "en": ("Hello, are you still there?", "Hello? Can you hear me?", "Hello?"),
    },
    "silence_end": {
        "ja": ("お電話が遠いようですので、いったん失礼いたします。またおかけ直しください。",
               "お声が届いていないようですので、お電話を切らせていただきます。恐れ入りますが、おかけ直しください。",
               "聞こえないので切ります。"),
        "en": ("I can't hear you, so I'll end the call now. Please call us again.",
               "It seems we've lost the connection, so I'll hang up. Please call back anytime.",
               "Can't hear you. Ending the call."),
    },
}


def _summary(f: dict[str, Any], lang: str) -> str:
    """The details understood so far, for the acknowledgement ('11月26日（木）、19時、4名様')."""
    if lang == "ja":
        bits = [fmt_date(f["date"], lang) if f.get("date") else None,
                fmt_time(f["time"], lang) if f.get("time") else None,
                fmt_party(f["party_size"], lang) if f.get("party_size") else None]
        return "、".join(b for b in bits if b)
    bits = [f"for {fmt_party(f['party_size'], lang)}" if f.get("party_size") else None,
            f"on {fmt_date(f['date'], lang)}" if f.get("date") else None,
            f"at {fmt_time(f['time'], lang)}" if f.get("time") else None]
    return " ".join(b for b in bits if b)


def _fields(f: dict[str, Any], lang: str) -> dict[str, Any]:
    out = dict(f)
    if f.get("date"):
        out["date"] = fmt_date(f["date"], lang)
    for k in ("time", "alt"):
        if f.get(k):
            out[k] = fmt_time(f[k], lang)
    if f.get("party_size"):
        out["party"] = fmt_party(f["party_size"], lang)
    return out


def _one(part: Part, lang: str, style: int, knowledge: Knowledge) -> str:
    if part.key == "faq":
        return knowledge.answer(part.fields["topic"], lang, style)
    template = PHRASES[part.key][lang][style]
    if part.key == "ack":
        return template.format(summary=_summary(part.fields, lang))
    return template.format(**_fields(part.fields, lang))


def render(parts: list[Part], lang: str | None, style: int, knowledge: Knowledge) -> str:
    """Join the parts into one utterance; with no language known yet, say it in both."""
    if lang is None:
        return " ".join(render(parts, lg, style, knowledge) for lg in ("ja", "en"))
    sep = "" if lang == "ja" else " "
    return sep.join(_one(p, lang, style, knowledge) for p in parts)
