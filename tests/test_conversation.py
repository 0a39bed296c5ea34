"""Parsing ElevenLabs JSON leniently, and the exact transcript text (SPEC)."""

import pytest

from fedfina_cli.core.conversation import parse_conversation, transcript_text, unwrap
from fedfina_cli.core.errors import StageError

from .conftest import ENGLISH, HINDI, WEBHOOK, load_sample

HINDI_TRANSCRIPT = (
    "AI: नमस्ते! मैं FedFina की ओर से प्रिया बोल रही हूँ। क्या मैं आपके बिज़नेस के बारे में कुछ सवाल पूछ सकती हूँ?\n"
    "User: हाँ जी, पूछिए। मेरा नाम रमेश कुमार है, मेरी किराने की दुकान है।\n"
    "AI: धन्यवाद रमेश जी। आपकी दुकान कितने साल से चल रही है, और रोज़ की बिक्री लगभग कितनी होती है?\n"
    "User: आठ साल हो गए। रोज़ ₹12,000 से ₹15,000 तक की बिक्री होती है, त्योहारों में ज़्यादा।\n"
    "AI: ठीक है। आपको कितने लोन की ज़रूरत है और आप उसका इस्तेमाल कैसे करेंगे?\n"
    "User: मुझे ₹2,00,000 चाहिए — a new refrigerator and stock for Diwali.\n"
    "AI: Understood. Monthly expenses — rent, salary, electricity — कितने होते हैं?\n"
    "User: Rent ₹8,000, एक helper की salary ₹9,000, बिजली ₹2,500 के आसपास।\n"
    "AI: धन्यवाद रमेश जी, हमारी टीम जल्द आपसे संपर्क करेगी।\n"
)


def test_hindi_transcript_is_exact_and_leaves_out_the_tool_turn():
    assert transcript_text(parse_conversation(load_sample(HINDI))) == HINDI_TRANSCRIPT


def test_webhook_envelope_gives_the_same_conversation():
    assert transcript_text(parse_conversation(load_sample(WEBHOOK))) == HINDI_TRANSCRIPT


def test_english_transcript():
    assert transcript_text(parse_conversation(load_sample(ENGLISH))) == (
        "AI: Hello, this is FedFina. Is this a good time to talk about your loan application?\n"
        "User: Yes, go ahead.\n"
        "AI: What does your business do, and how long has it been running?\n"
        "User: I run a tailoring shop in Pune, three years now. I need about 75,000 rupees for two sewing machines.\n"
        "AI: Thank you. We'll share the next steps by email.\n"
    )


def test_multivoice_parts_are_joined_when_message_is_null():
    payload = {
        "conversation_id": "conv_multivoice01",
        "status": "done",
        "transcript": [
            {"role": "agent", "message": None, "time_in_call_secs": 0,
             "multivoice_message": {"parts": [
                 {"text": "नमस्ते,", "voice_label": "priya", "time_in_call_secs": 0},
                 {"text": " I am Priya.", "voice_label": "priya", "time_in_call_secs": 1},
                 {"text": None, "voice_label": "x"}]}},
            {"role": "user", "message": "Hello", "time_in_call_secs": 3,
             "multivoice_message": {"parts": [{"text": "ignored when message is set"}]}},
        ],
        "metadata": {},
    }
    assert transcript_text(parse_conversation(payload)) == "AI: नमस्ते, I am Priya.\nUser: Hello\n"


def test_lenient_parsing_of_odd_and_missing_fields():
    payload = {
        "conversation_id": "conv_oddfields01",
        "status": "done",
        "brand_new_field": {"x": 1},
        "transcript": [
            None,
            "not a turn",
            {"role": "user", "message": "line one\nline two\r\n  spaced  ", "time_in_call_secs": 2.7},
            {"role": "agent", "message": "", "tool_calls": [{"tool_name": "crm"}]},
            {"role": "agent", "message": None, "multivoice_message": None},
            {"role": "system_narrator", "message": "unknown roles are not part of the transcript"},
        ],
        "metadata": None,
        "analysis": None,
        "conversation_initiation_client_data": {"dynamic_variables": {"email_id": None, "account_id": 42}},
        "has_audio": "yes",
    }
    conversation = parse_conversation(payload)
    assert transcript_text(conversation) == "User: line one line two spaced\n"
    assert conversation.turns[0].time_in_call_secs == 2
    assert conversation.turns[1].tool_names == ("crm",)
    assert conversation.analysis is None
    assert conversation.metadata.start_time_unix_secs is None
    assert conversation.dynamic("email_id", "email") is None
    assert conversation.dynamic("account_id") == "42"
    assert conversation.has_audio is False


def test_missing_transcript_gives_an_empty_text():
    conversation = parse_conversation({"conversation_id": "conv_notranscript", "status": "done"})
    assert transcript_text(conversation) == ""


@pytest.mark.parametrize("payload, message", [
    ([], "not an object"),
    ({"status": "done"}, "no conversation_id"),
    ({"type": "post_call_audio", "data": {"full_audio": "..."}}, "carries no transcript"),
    ({"conversations": [], "has_more": False}, "page of the conversation list"),
])
def test_payloads_that_are_not_a_conversation(payload, message):
    with pytest.raises(StageError, match=message):
        parse_conversation(payload)


def test_unwrap_returns_the_data_of_a_webhook():
    webhook = load_sample(WEBHOOK)
    assert unwrap(webhook) is webhook["data"]
