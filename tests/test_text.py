"""Tests of pipeline.features.text: clean_text and join_fields (pure functions)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from pipeline.features.text import EMPTY_TOKEN, URL_TOKEN, clean_text, join_fields

# Fast and reproducible on a shared 2-core machine: a fixed example set, no timing limit.
PROPERTY = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------- clean_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width letters and digits
        ("ﬁne", "fine"),  # "fi" ligature
        ("x²", "x2"),  # superscript
        ("cafe\u0301", "café"),  # combining accent composed
    ],
)
def test_nfkc_normalisation(raw, expected):
    assert clean_text(raw) == expected


def test_html_entities_decoded():
    assert clean_text("Tom &amp; Jerry &lt;3 &quot;hi&quot; &#233;t&#xE9;") == 'tom & jerry <3 "hi" été'


def test_html_tags_removed():
    assert clean_text("first line<br />second<br/>third <b>bold</b> <p class='x'>par</p>") == (
        "first line second third bold par"
    )


def test_entity_encoded_tags_removed():
    # "&lt;b&gt;" decodes to a tag, which is then removed.
    assert clean_text("a &lt;b&gt;bold&lt;/b&gt; z") == "a bold z"


def test_urls_token():
    assert clean_text("see https://example.com/a?b=1 and www.test.org now", urls="token") == (
        f"see {URL_TOKEN} and {URL_TOKEN} now"
    )


def test_urls_drop():
    assert clean_text("see http://example.com/x now", urls="drop") == "see now"


def test_urls_keep():
    assert clean_text("see HTTP://Example.com/x now", urls="keep") == "see http://example.com/x now"


def test_urls_case_insensitive():
    assert clean_text("HTTPS://EXAMPLE.COM WWW.X.ORG", lowercase=False) == f"{URL_TOKEN} {URL_TOKEN}"


@pytest.mark.parametrize("urls", ["tokens", "", "TOKEN", None])
def test_invalid_urls_option_raises_naming_it(urls):
    with pytest.raises(ValueError, match="urls") as info:
        clean_text("text", urls=urls)
    assert repr(urls) in str(info.value)


def test_invalid_urls_option_raises_even_for_missing_text():
    with pytest.raises(ValueError, match="urls"):
        clean_text(None, urls="bogus")


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x08", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_removed(control):
    assert clean_text(f"a{control}b{control}") == "a b"


def test_no_control_characters_left():
    everything = "".join(chr(c) for c in range(0x00, 0xA0))
    out = clean_text(everything, keep_punctuation=True)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in out)


def test_lowercase_on():
    assert clean_text("Hello WORLD ÄÖ", lowercase=True) == "hello world äö"


def test_lowercase_off():
    assert clean_text("Hello WORLD ÄÖ", lowercase=False) == "Hello WORLD ÄÖ"


def test_keep_digits_false_maps_digit_runs_to_zero():
    assert clean_text("in 2024 about 15.5% of 3 people", keep_digits=False) == ("in 0 about 0.0% of 0 people")


def test_keep_digits_false_maps_non_ascii_digits():
    assert clean_text("٣٤ ２", keep_digits=False) == "0 0"


def test_keep_digits_true_keeps_digits():
    assert clean_text("in 2024", keep_digits=True) == "in 2024"


def test_keep_punctuation_false():
    assert clean_text("Hello, world! It's-a_test... (ok?)", keep_punctuation=False) == (
        "hello world it s a test ok"
    )


def test_keep_punctuation_false_keeps_letters_of_any_script():
    assert clean_text("Привет, мир! 你好。", keep_punctuation=False) == "привет мир 你好"


def test_keep_punctuation_true_keeps_punctuation():
    assert clean_text("Hello, world!") == "hello, world!"


def test_whitespace_collapsed_and_stripped():
    assert clean_text("  a \t\t b \n\n\r\n c\u00a0\u2028d  ") == "a b c d"


def test_max_chars_cut():
    out = clean_text("abcdefghij" * 100, max_chars=25)
    assert out == ("abcdefghij" * 3)[:25]


def test_max_chars_result_never_longer():
    out = clean_text("word " * 1000, max_chars=100)
    assert len(out) <= 100
    assert out.startswith("word word")


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, np.float64("nan")])
def test_missing_values_become_empty(missing):
    assert clean_text(missing) == ""


def test_non_string_is_converted():
    assert clean_text(123) == "123"


def test_empty_and_blank_strings():
    assert clean_text("") == ""
    assert clean_text(" \t\n ") == ""


@pytest.mark.parametrize(
    "raw",
    [
        "<" * 7 + "x" + ">" * 7,  # nested angle brackets: one level removed per pass
        "&" + "amp;" * 6 + "lt;b&gt;bold",  # entity escaped seven times
        "&" + "amp;" * 10 + "quot;",
    ],
)
def test_idempotent_on_deeply_nested_markup(raw):
    # clean_text iterates its cleaning to a fixed point, but stops after 5 passes;
    # deeper nesting then needs another call: clean_text(clean_text(x)) != clean_text(x).
    once = clean_text(raw)
    assert clean_text(once) == once


# --------------------------------------------------------------------- properties

OPTIONS = st.fixed_dictionaries(
    {
        "lowercase": st.booleans(),
        "keep_digits": st.booleans(),
        "keep_punctuation": st.booleans(),
        "urls": st.sampled_from(["token", "keep", "drop"]),
        "max_chars": st.one_of(st.integers(1, 300), st.just(100_000)),
    }
)

# Pieces that exercise every cleaning step and their interactions.
FRAGMENTS = st.sampled_from(
    [
        "<",
        ">",
        "<b>",
        "</p>",
        "<br />",
        "&",
        "amp;",
        "lt;",
        "gt;",
        "&amp;",
        "&#x41;",
        "&#65;",
        "&nbsp;",
        "http://",
        "https://a.b/c?d=1",
        "www.",
        "www.x.org",
        URL_TOKEN,
        EMPTY_TOKEN,
        " ",
        "\t",
        "\n",
        "\r\n",
        "\x00",
        "\x1b",
        "\x85",
        "\x9f",
        "\u00a0",
        "\u2028",
        "\ufeff",
        "ﬁ",
        "Ａ",
        "İ",
        "ẞ",
        "²",
        "١٢",
        "123",
        "_",
        "-",
        ".",
        "é",
        "e\u0301",
        "ß",
        "Σ",
        "ǅ",
        "😀",
    ]
)
MARKUP = st.lists(st.one_of(FRAGMENTS, st.text(max_size=5)), max_size=40).map("".join)
LONG_TOKEN = st.builds(lambda ch, n: ch * n, st.characters(), st.integers(200, 3000))
TEXTS = st.one_of(
    st.text(),  # arbitrary unicode, control chars, ""
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=500),
    MARKUP,
    LONG_TOKEN,  # one very long token
    st.just(""),
)


@PROPERTY
@given(TEXTS, OPTIONS)
@example(
    "",
    {"lowercase": True, "keep_digits": True, "keep_punctuation": True, "urls": "token", "max_chars": 100_000},
)
def test_clean_text_is_idempotent_and_never_raises(text, options):
    once = clean_text(text, **options)
    assert isinstance(once, str)
    assert clean_text(once, **options) == once


SAMPLE = (
    "ＦＵＬＬ ﬁne &amp;lt;b&amp;gt; <br /> See https://x.org/a?b=1 &#169; \x00\x9f "
    "Ünïcödé 2024 ٣ _snake_ case... " + "z" * 300
)


@pytest.mark.parametrize(
    "lowercase, keep_digits, keep_punctuation, urls",
    list(itertools.product([True, False], [True, False], [True, False], ["token", "keep", "drop"])),
)
@pytest.mark.parametrize("max_chars", [5, 100, 100_000])
def test_every_option_combination_is_idempotent(lowercase, keep_digits, keep_punctuation, urls, max_chars):
    options = dict(
        lowercase=lowercase,
        keep_digits=keep_digits,
        keep_punctuation=keep_punctuation,
        urls=urls,
        max_chars=max_chars,
    )
    once = clean_text(SAMPLE, **options)
    assert clean_text(once, **options) == once
    assert len(once) <= max_chars


@PROPERTY
@given(TEXTS, OPTIONS)
def test_clean_text_is_deterministic(text, options):
    assert clean_text(text, **options) == clean_text(text, **options)


@PROPERTY
@given(TEXTS, OPTIONS)
def test_clean_text_output_invariants(text, options):
    out = clean_text(text, **options)
    assert len(out) <= options["max_chars"]
    assert out == out.strip()
    assert all(ch == " " or not ch.isspace() for ch in out)
    assert "  " not in out
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in out)
    if options["lowercase"]:
        assert out == out.lower()


# -------------------------------------------------------------------------- join_fields


def test_join_fields_markers():
    assert join_fields({"title": "big news", "author": "ann", "text": "body"}) == (
        "xxtitle big news xxauthor ann xxtext body"
    )


def test_join_fields_marker_from_column_name():
    assert join_fields({"Head Line!": "a", "body_text": "b"}) == "xxheadline a xxbody_text b"


def test_join_fields_empty_field_becomes_xxempty():
    assert join_fields({"title": "t", "author": "", "text": "b"}) == (
        f"xxtitle t xxauthor {EMPTY_TOKEN} xxtext b"
    )


def test_join_fields_all_empty():
    out = join_fields({"title": "", "author": ""})
    assert out == f"xxtitle {EMPTY_TOKEN} xxauthor {EMPTY_TOKEN}"


@pytest.mark.parametrize("value", ["just the text", "", "Mixed CASE <b>"])
def test_join_fields_single_field_returned_as_is(value):
    assert join_fields({"text": value}) == value


def test_join_fields_keeps_order():
    assert join_fields({"b": "2", "a": "1"}) == "xxb 2 xxa 1"
