"""A world for the console's tests: calls processed for two officers and one failed, a real
`fedfina serve` with the console on, and people signing in through emailed links (SPEC "The console").
Used by test_console.py (HTTP) and test_console_browser.py (a real headless Chromium)."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .conftest import hindi_variant, wait_for
from .fakes.smtp import free_port

ADMIN = "ops.admin@fedfina.example"
PRIYA = "priya.officer@bank.example"
ARUN = "arun.officer@bank.example"
STRANGER = "someone@elsewhere.example"
LINK_SUBJECT = "Your fedfina console sign-in link"


def silent_mp3(seconds: float) -> bytes:
    """A real MP3 a browser plays: MPEG-1 Layer III frames, 128 kbit/s, 44.1 kHz, mono, of silence
    (side information all zero: no audio data). 417 bytes a frame, 1152 samples each."""
    frame = bytes([0xFF, 0xFB, 0x90, 0xC0]) + bytes(413)
    return frame * max(1, int(seconds * 44100 / 1152))


AUDIO = silent_mp3(70)  # 1.1 MB: more than the console sends in one Range reply (1 MiB)


@dataclass
class World:
    server: object  # tests.serving.Server
    smtp: object  # tests.fakes.smtp.FakeSMTP
    ids: dict[str, int] = field(default_factory=dict)  # conversation id -> processing_id

    @property
    def url(self) -> str:
        return self.server.url

    def links_for(self, address: str) -> list[str]:
        found = []
        for received in self.smtp.messages:
            message = received.message
            if message["To"] == address and message["Subject"] == LINK_SUBJECT:
                found += re.findall(r"https?://\S+", message.get_content())
        return found

    def sign_in(self, address: str) -> "Person":
        person = Person(self, address)
        person.sign_in()
        return person


class Person:
    """A browser-like HTTP client (cookies kept) for one person."""

    def __init__(self, world: World, address: str):
        self.world = world
        self.address = address
        self.http = requests.Session()
        self.csrf: str | None = None

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.world.url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        return self.http.post(self.world.url + path, data=data, allow_redirects=False, timeout=30, **kwargs)

    def form_csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def ask_for_link(self, address: str | None = None) -> requests.Response:
        csrf = self.form_csrf("/console/login")
        return self.post("/console/login", {"csrf": csrf, "email": address or self.address})

    def sign_in(self) -> None:
        before = len(self.world.links_for(self.address))
        reply = self.ask_for_link()
        assert reply.status_code == 200, reply.text[:300]
        wait_for(lambda: len(self.world.links_for(self.address)) > before, timeout=20)
        link = self.world.links_for(self.address)[-1]
        self.use_link(link)

    def use_link(self, link: str) -> requests.Response:
        path = link.split("127.0.0.1:", 1)[1].split("/", 1)[1]
        page = self.get("/" + path)
        assert page.status_code == 200, page.text[:300]
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        reply = self.post("/console/signin", {"csrf": csrf, "token": token})
        assert reply.status_code == 303 and reply.headers["location"] == "/console", reply.text[:300]
        self.csrf = self.form_csrf("/console")
        return reply

    def act(self, processing_id: int, what: str, **fields) -> requests.Response:
        return self.post(f"/console/c/{processing_id}/{what}", {"csrf": self.csrf, **fields})


def tamil_call(number: int, email: str = PRIYA) -> dict:
    """The Hindi sample spoken in Tamil: the console must read in India's other scripts too."""
    payload = hindi_variant(number, email=email)
    lines = ["வணக்கம்! நான் FedFina சார்பாக பேசுகிறேன். உங்கள் வியாபாரம் பற்றி சில கேள்விகள் கேட்கலாமா?",
             "சரி, கேளுங்கள். என் பெயர் முருகன் செல்வராஜ், எனக்கு ஒரு மளிகைக் கடை இருக்கிறது.",
             "நன்றி முருகன். கடை எத்தனை ஆண்டுகளாக நடக்கிறது?",
             "எட்டு ஆண்டுகள் ஆகிறது. தினமும் ₹12,000 வரை விற்பனை."]
    spoken = [turn for turn in payload["transcript"] if turn.get("message")]
    for turn, line in zip(spoken, lines):
        turn["message"] = line
    payload["transcript"] = spoken[:len(lines)]
    payload["conversation_initiation_client_data"]["dynamic_variables"]["applicant_name"] = "முருகன் செல்வராஜ்"
    return payload


def build_world(installed, services, serving, monkeypatch, *extra_env: tuple[str, str],
                more: tuple[dict, ...] = ()) -> World:
    """Three calls processed (two for Priya, one for Arun), one failed (not yet at ElevenLabs),
    any ``more`` calls processed too, and `fedfina serve` with the console on at FEDFINA_PUBLIC_URL."""
    elevenlabs = services["elevenlabs"]
    for number, email in ((1, PRIYA), (2, PRIYA), (3, ARUN)):
        elevenlabs.add(hindi_variant(number, email=email), audio=AUDIO)
    for payload in more:
        elevenlabs.add(payload, audio=AUDIO)
    # One run (a CSV: the failed call's row names its recipient and account, the others' calls do).
    sheet = Path("world.csv")
    sheet.write_text("conversation_id,email_id,account_id\n" + "".join(
        f"{conversation_id},,\n" for conversation_id in
        ["conv_bulk00000001", "conv_bulk00000002", "conv_bulk00000003", *[p["conversation_id"] for p in more]])
        + f"conv_bulk00000004,{PRIYA},acc123\n")
    result = installed("run", "-j", "4", "--csv", str(sheet))
    said = result.stdout + result.stderr
    assert result.exit_code == 1 and "conv_bulk00000004" in said, said
    port = free_port()
    monkeypatch.setenv("FEDFINA_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FEDFINA_CONSOLE_ADMINS", ADMIN)
    for name, value in extra_env:
        monkeypatch.setenv(name, value)
    server = serving(port=port)
    world = World(server, services["smtp"])
    world.ids = {row["conversation_id"]: row["processing_id"] for row in _rows(
        "select conversation_id, processing_id from conversation_processing")}
    return world


def _rows(sql: str, args: tuple = ()) -> list[dict]:
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    ledger = open_ledger(load_settings())
    try:
        return ledger.sql.rows(sql, list(args))
    finally:
        ledger.close()


def ledger_rows(sql: str, *args) -> list[dict]:
    return _rows(sql, args)
