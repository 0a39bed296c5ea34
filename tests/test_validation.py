"""Identifier and address validation (SPEC "Identifiers and validation")."""

import pytest

from fedfina_cli.core import validation
from fedfina_cli.core.errors import InvalidValue


@pytest.mark.parametrize("value", ["conv_7201k4b3qz9fe8st0m5xkcw2hj4n", "conv_12345678", "conv_" + "a" * 64])
def test_good_conversation_ids(value):
    assert validation.conversation_id(value) == value


@pytest.mark.parametrize("value", ["", "conv_1234567", "conv_" + "a" * 65, "../x", "conv_abc/def12",
                                   "conv_abcdefgh\n", "CONV_abcdefgh", "conv_abcd-efgh", " conv_abcdefgh"])
def test_bad_conversation_ids(value):
    with pytest.raises(InvalidValue) as exc:
        validation.conversation_id(value)
    assert exc.value.field == "conversation_id"


@pytest.mark.parametrize("value", ["acc123", "A", "acme.in_branch-7", "9" * 64])
def test_good_account_ids(value):
    assert validation.account_id(value) == value


@pytest.mark.parametrize("value", ["", "a/b", "../x", "..", ".hidden", "-x", "a" * 65, "a..b", "a b",
                                   "a\\b", "ac\nc"])
def test_bad_account_ids(value):
    with pytest.raises(InvalidValue):
        validation.account_id(value)


@pytest.mark.parametrize("value", ["loans.officer@example.com", "a+tag@sub.example.co.in", "x_y@d-1.org"])
def test_good_emails(value):
    assert validation.email_address(value) == value


@pytest.mark.parametrize("value, reason", [
    ("a@b.co\r\nBcc: evil@x.com", "line breaks"),
    ("a@b.co\n", "line breaks"),
    ("a@b.co, c@d.co", "one plain address"),
    ("Officer <a@b.co>", "one plain address"),
    ("no-at-sign.example.com", "like name@example.com"),
    ("a@localhost", "domain"),
    ("a..b@example.com", "before '@'"),
    (".a@example.com", "before '@'"),
    ("a@-example.com", "domain"),
    ("a@example.123", "domain"),
    ("रमेश@example.com", "ASCII"),
    ("", "like name@example.com"),
])
def test_bad_emails(value, reason):
    with pytest.raises(InvalidValue, match=reason):
        validation.email_address(value)


def test_the_message_shows_control_characters_escaped():
    with pytest.raises(InvalidValue) as exc:
        validation.email_address("a@b.co\r\nBcc: x@y.z")
    assert str(exc.value) == r"invalid email_id 'a@b.co\r\nBcc: x@y.z': line breaks are not allowed"
    assert "\n" not in str(exc.value)
