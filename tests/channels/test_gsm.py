"""SMS encoding and segment counting (3GPP TS 23.038 GSM-7, or UCS-2)."""

from __future__ import annotations

import pytest

from notifier.channels.gsm import GSM7_BASIC, GSM7_EXTENSION, SmsInfo, is_gsm7, sms_info


def test_the_basic_set_is_the_3gpp_default_alphabet() -> None:
    # GIVEN the 128 code points of the default alphabet, read row-wise from the spec's table
    rows = [
        "@£$¥èéùìòÇ\nØø\rÅå",
        "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ",
        " !\"#¤%&'()*+,-./",
        "0123456789:;<=>?",
        "¡ABCDEFGHIJKLMNO",
        "PQRSTUVWXYZÄÖÑÜ§",
        "¿abcdefghijklmno",
        "pqrstuvwxyzäöñüà",
    ]
    table = "".join(rows)
    # THEN there are 128 of them, all distinct, and the set is exactly them without the escape
    assert len(table) == 128
    assert len(set(table)) == 128
    assert set(table) - {"\x1b"} == GSM7_BASIC
    assert set("\f^{}\\[~]|€") == GSM7_EXTENSION


@pytest.mark.parametrize(
    ("char", "gsm"),
    [
        ("Ç", True),  # 0x09 is the capital C cedilla
        ("ç", False),
        ("ß", True),
        ("Ä", True),
        ("ë", False),
        ("`", False),
        ("\t", False),
        ("€", True),  # extension table
        ("\u2013", False),  # en dash
        ("“", False),
        ("δ", False),  # only some Greek capitals are in the set
        ("Δ", True),
    ],
)
def test_single_characters_are_gsm7_or_not(char: str, gsm: bool) -> None:
    # GIVEN one character  WHEN asked  THEN it is GSM-7 exactly when the table has it
    assert is_gsm7(char) is gsm
    assert sms_info(f"a{char}b").encoding == ("GSM-7" if gsm else "UCS-2")


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("", 0, 0),
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("€" * 80, 160, 1),  # extension characters are two septets each
        ("{" * 81, 162, 2),
        # an escape pair never straddles parts: 152 + (2) cannot share part 1, so 3 parts
        # although 306 septets would fit 2 x 153
        ("a" * 152 + "€" + "a" * 152, 306, 3),
        ("a" * 151 + "€" + "a" * 153, 306, 2),
    ],
)
def test_gsm7_septets_and_segments(text: str, units: int, segments: int) -> None:
    # GIVEN a GSM-7 text  WHEN counted  THEN septets and parts follow 160 single / 153 per part
    assert sms_info(text) == SmsInfo("GSM-7", units, segments)


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("ç" * 70, 70, 1),
        ("ç" * 71, 71, 2),
        ("ç" * 134, 134, 2),
        ("ç" * 135, 135, 3),
        ("👋" * 35, 70, 1),  # astral: a surrogate pair, two UTF-16 units
        ("👋" * 36, 72, 2),
        # a surrogate pair never straddles parts: 66 + (2) moves whole to part 2, so 3 parts
        ("ç" * 66 + "👋" + "ç" * 66, 134, 3),
    ],
)
def test_ucs2_units_and_segments(text: str, units: int, segments: int) -> None:
    # GIVEN a text with a non-GSM character  WHEN counted  THEN UTF-16 units, 70 / 67 per part
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", units, segments)


def test_one_non_gsm_character_makes_the_whole_text_ucs2_and_is_named() -> None:
    # GIVEN 100 GSM characters and one emoji
    info = sms_info("a" * 100 + "👋")
    # THEN the text is UCS-2 (two segments instead of one) and the emoji is named as the cause
    assert info == SmsInfo("UCS-2", 102, 2, ("👋",))
    assert info.single_limit == 70
    assert info.describe() == "2 segments, UCS-2, 102 UTF-16 units"


def test_the_named_characters_are_distinct_and_few() -> None:
    # GIVEN many distinct non-GSM characters, some repeated
    info = sms_info("çç ëë “” \u2013 δεζ")
    # THEN the first five distinct ones are named, in order
    assert info.non_gsm == ("ç", "ë", "“", "”", "\u2013")


def test_german_umlauts_stay_gsm7() -> None:
    # GIVEN a German text with umlauts and sharp s
    info = sms_info("Jürgen, Ihre Bewerbung: Vorstellungsgespräch. Grüße aus Köln, Maß")
    # THEN it is one GSM-7 segment
    assert (info.encoding, info.segments) == ("GSM-7", 1)
    assert info.describe() == f"1 segment, GSM-7, {info.units} septets"
