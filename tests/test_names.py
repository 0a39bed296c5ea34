"""The applicant's name as they say it (core/names.py), and the report, subject and
attachment named for it (issue 25: the Tamil call's cover said "not recorded")."""

from __future__ import annotations

import json

import pytest

from fedfina_cli.core.names import spoken_name

from .conftest import HINDI, HINDI_ID, load_sample, pdf_text, read_eml


@pytest.mark.parametrize("said, name", [
    ("Yes. My name is Ramesh Kumar and I run a kirana shop.", "Ramesh Kumar"),
    ("This is Priya from Pune.", "Priya"),
    ("मेरा नाम रमेश कुमार है।", "रमेश कुमार"),
    ("मेरा नाम है सुनीता शर्मा", "सुनीता शर्मा"),
    ("जी, मैं सुनीता शर्मा बोल रही हूँ", "सुनीता शर्मा"),
    ("माझे नाव संजय पाटील आहे", "संजय पाटील"),
    ("என் பெயர் முருகன் செல்வராஜ்.", "முருகன் செல்வராஜ்"),
    ("আমার নাম সুমিত্রা দাস, আমি একটা দোকান চালাই", "সুমিত্রা দাস"),
    ("મારું નામ કિરણ પટેલ છે", "કિરણ પટેલ"),
    ("నా పేరు లక్ష్మి.", "లక్ష్మి"),
])
def test_the_common_ways_people_say_their_name(said, name):
    assert spoken_name(["Haan ji.", said]) == name


@pytest.mark.parametrize("said", [
    "I am fine, thank you.", "i am 45 years old", "मैं दुकान चलाता हूँ", "Three years in business.",
])
def test_no_name_is_guessed(said):
    assert spoken_name([said]) is None


def _tamil_call() -> dict:
    payload = load_sample(HINDI)
    payload["analysis"]["data_collection_results"].pop("applicant_name", None)
    payload["conversation_initiation_client_data"]["dynamic_variables"].pop("applicant_name", None)
    payload["metadata"]["phone_call"] = {"type": "twilio", "direction": "inbound",
                                        "external_number": "+919876543456"}
    payload["transcript"] = [
        {"role": "agent", "message": "வணக்கம், உங்கள் பெயர் என்ன?", "time_in_call_secs": 2},
        {"role": "user", "message": "என் பெயர் முருகன் செல்வராஜ். நான் ஒரு மளிகைக் கடை நடத்துகிறேன்.",
         "time_in_call_secs": 8},
        {"role": "agent", "message": "உங்களுக்கு எவ்வளவு கடன் வேண்டும்?", "time_in_call_secs": 14},
        {"role": "user", "message": "மூன்று லட்சம் வேணும்.", "time_in_call_secs": 18},
    ]
    payload["analysis"]["call_summary_title"] = None
    payload["analysis"]["transcript_summary"] = None
    return payload


def test_the_cover_subject_and_attachment_are_named_for_the_name_said_in_the_call(cli, workspace, tmp_path):
    path = tmp_path / "tamil.json"
    path.write_text(json.dumps(_tamil_call(), ensure_ascii=False), encoding="utf-8")
    result = cli("run", "--from-file", path)
    assert result.exit_code == 0, result.output
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    assert "Applicant முருகன் செல்வராஜ்" in text and "not recorded" not in text
    message = read_eml(workspace.eml("acc123", HINDI_ID))
    assert "முருகன் செல்வராஜ்" in message["Subject"] and "••••" not in message["Subject"]
    [attachment] = [part for part in message.iter_attachments()]
    assert "முருகன்" in attachment.get_filename()
    summary = json.loads(workspace.object("acc123", "summaries", f"{HINDI_ID}.json").read_text())
    assert summary["summary"]["applicant_name"] == "முருகன் செல்வராஜ்"


def test_a_spoken_amount_is_among_the_figures_the_applicant_stated(cli, workspace, tmp_path):
    path = tmp_path / "tamil.json"
    path.write_text(json.dumps(_tamil_call(), ensure_ascii=False), encoding="utf-8")
    assert cli("run", "--from-file", path).exit_code == 0
    summary = json.loads(workspace.object("acc123", "summaries", f"{HINDI_ID}.json").read_text())["summary"]
    stated = next(s for s in summary["sections"] if s["heading"] == "Figures the applicant stated")
    assert stated["points"] == ["[00:18] மூன்று லட்சம் வேணும்."]


def test_the_language_line_follows_the_words_script(cli, workspace, tmp_path):
    """The Tamil call's cover said "Language: Hindi" (its main_language field said hi)."""
    path = tmp_path / "tamil.json"
    path.write_text(json.dumps(_tamil_call(), ensure_ascii=False), encoding="utf-8")
    assert cli("run", "--from-file", path).exit_code == 0
    text = " ".join(pdf_text(workspace.object("acc123", "reports", f"{HINDI_ID}.pdf")).split())
    assert "Language Tamil" in text and "Language Hindi" not in text
