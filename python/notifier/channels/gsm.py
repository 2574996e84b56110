"""SMS encoding and segment counting: GSM-7 or UCS-2, decided per message.

An SMS carries 140 octets. A text whose every character is in the GSM 03.38 default alphabet
(3GPP TS 23.038: the basic set, plus the extension table reached through an escape) goes as
**GSM-7**: 7-bit septets, 160 to a single message; a basic character is one septet, an extension
character (``^ { } \\ [ ~ ] | €`` and form feed) two (escape + code). Any other character (an
emoji, ``ç``, a Cyrillic letter, a typographic quote) makes the whole message **UCS-2**: UTF-16
code units, 70 to a single message; a character outside the Basic Multilingual Plane (most
emoji) is a surrogate pair, two units.

A longer text is sent as a concatenated message whose parts each give up room for the
concatenation header (UDH): 153 septets or 67 units per part. A character is never split across
parts: an escape pair that would straddle a boundary (153rd and 154th septet) or a surrogate pair
(67th and 68th unit) moves whole to the next part, so a part may carry one unit less. The
carrier's decoder sees every part on its own, which is why the split matters for the count.

:func:`sms_info` is the one entry point: used by the SMS channel to enforce ``max_segments`` and
by ``notifier preview`` to show a template's encoding and cost. It counts what is sent; it does
not transliterate (``ç`` is not turned into ``Ç``): a template that must stay GSM-7 says so in
its own characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsInfo",
    "is_gsm7",
    "sms_info",
]

#: The GSM 03.38 default alphabet (basic set), in code order 0x00-0x7F; 0x1B (ESC) excluded.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # the escape, 0x1B, sits between Ξ and Æ
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs two septets (ESC + code).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_PART = {"GSM-7": 153, "UCS-2": 67}
#: How many of the characters that force UCS-2 :class:`SmsInfo` names.
_NAMED = 5


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """How a text goes out as SMS."""

    encoding: Literal["GSM-7", "UCS-2"]
    #: Septets (GSM-7, extension characters count 2) or UTF-16 code units (UCS-2).
    units: int
    #: Messages billed: 0 for an empty text, 1 up to 160/70 units, else parts of 153/67.
    segments: int
    #: For UCS-2: the first few distinct characters that are not GSM-7 (why it is UCS-2).
    non_gsm: tuple[str, ...] = ()

    @property
    def single_limit(self) -> int:
        """Units that fit a single message in this encoding (160 or 70)."""
        return _SINGLE[self.encoding]

    def describe(self) -> str:
        """``"2 segments, GSM-7, 190 septets"``: for previews and failure reasons."""
        unit = "septets" if self.encoding == "GSM-7" else "UTF-16 units"
        noun = "segment" if self.segments == 1 else "segments"
        return f"{self.segments} {noun}, {self.encoding}, {self.units} {unit}"


def is_gsm7(text: str) -> bool:
    """Every character of ``text`` is in the GSM-7 basic set or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _count_parts(weights: list[int], single: int, part: int) -> int:
    total = sum(weights)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for w in weights:
        if used + w > part:  # a two-unit character never straddles a boundary
            parts += 1
            used = 0
        used += w
    return parts


def sms_info(text: str) -> SmsInfo:
    """The encoding, size and segment count of ``text`` sent as one SMS."""
    non_gsm: list[str] = []
    for c in text:
        if c not in GSM7_BASIC and c not in GSM7_EXTENSION and c not in non_gsm:
            non_gsm.append(c)
            if len(non_gsm) == _NAMED:
                break
    if not non_gsm:
        weights = [2 if c in GSM7_EXTENSION else 1 for c in text]
        segments = _count_parts(weights, _SINGLE["GSM-7"], _PART["GSM-7"])
        return SmsInfo("GSM-7", sum(weights), segments)
    weights = [2 if ord(c) > 0xFFFF else 1 for c in text]
    segments = _count_parts(weights, _SINGLE["UCS-2"], _PART["UCS-2"])
    return SmsInfo("UCS-2", sum(weights), segments, tuple(non_gsm))
