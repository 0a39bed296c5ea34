"""The console over HTTP (SPEC "The console"), against a real `fedfina serve` with MinIO (moto),
SMTP (aiosmtpd) and the ElevenLabs and OpenAI fakes: sign-in by emailed link, sessions, CSRF,
rate limits, the single sign-on proxy, each officer's conversations and no other's (by URL too),
audio through the console with Range requests, and the actions, each in the audit log."""

import re
import time
from pathlib import Path

import pytest

from .conftest import hindi_variant, wait_for
from .console_world import (
    ADMIN,
    ARUN,
    AUDIO,
    LINK_SUBJECT,
    PRIYA,
    STRANGER,
    Person,
    build_world,
    ledger_rows,
)


@pytest.fixture
def world(installed, services, serving, monkeypatch):
    return build_world(installed, services, serving, monkeypatch)


def _listed(page: str) -> set[str]:
    return set(re.findall(r'class="id">(conv_\w+)<', page))


def test_an_officer_sees_only_conversations_emailed_to_them_by_url_too(world):
    priya, arun, admin = world.sign_in(PRIYA), world.sign_in(ARUN), world.sign_in(ADMIN)
    ids = world.ids
    assert _listed(priya.get("/console").text) == {"conv_bulk00000001", "conv_bulk00000002", "conv_bulk00000004"}
    assert _listed(arun.get("/console").text) == {"conv_bulk00000003"}
    assert _listed(admin.get("/console").text) == {f"conv_bulk0000000{n}" for n in (1, 2, 3, 4)}

    arun_call = ids["conv_bulk00000003"]
    nowhere = max(ids.values()) + 100
    # Every URL of Arun's conversation is 404 to Priya, exactly as one that does not exist.
    for path in (f"/console/c/{arun_call}", f"/console/c/{arun_call}/report.pdf", f"/console/c/{arun_call}/audio"):
        theirs, missing = priya.get(path), priya.get(path.replace(str(arun_call), str(nowhere)))
        assert theirs.status_code == missing.status_code == 404, path
        # The same page but for the URL it names (the language links repeat it).
        assert theirs.text.replace(f"/c/{arun_call}", "/c/N") == missing.text.replace(f"/c/{nowhere}", "/c/N")
        assert "conv_bulk00000003" not in theirs.text
        # Signed in, she keeps her header on the error page: no offer to sign in.
        assert "Sign out" in theirs.text and PRIYA in theirs.text and 'href="/console/login"' not in theirs.text
    for action in ("resend", "retry", "hold"):
        assert priya.act(arun_call, action).status_code == 404
    # A search cannot reach them either.
    assert _listed(priya.get("/console", params={"q": "conv_bulk00000003"}).text) == set()
    assert priya.get("/console/ops").status_code == 404
    # Their own and, for the admin, everyone's.
    own = priya.get(f"/console/c/{ids['conv_bulk00000001']}")
    assert own.status_code == 200 and "रमेश" in own.text
    assert admin.get(f"/console/c/{arun_call}").status_code == 200
    assert admin.get(f"/console/c/{arun_call}/report.pdf").content.startswith(b"%PDF")
    ops = admin.get("/console/ops")
    assert ops.status_code == 200 and "Failures by reason" in ops.text
    # The failed call's reason, counted, and a worker of this serve with its heartbeat.
    assert re.search(r'<td class="n" data-label="Conversations">1</td><td><a href="/console\?status=failed">'
                     r'[^<]*not found', ops.text), ops.text
    assert "No worker registered" not in ops.text


def test_the_operations_page_shows_a_process_once_however_many_worker_rows_it_has(world):
    """serve's purge round registers a worker row of its own (its claims must not be taken over
    through the server's): the page still shows one process, not two."""
    admin = world.sign_in(ADMIN)
    [serve] = ledger_rows("select * from workers")
    ledger_rows("insert into workers (host, pid, process_started, started_at, heartbeat_at, expires_at) "
                "select host, pid, process_started, heartbeat_at, heartbeat_at, expires_at from workers "
                "returning worker_id")
    try:
        page = " ".join(admin.get("/console/ops").text.split())
    finally:
        ledger_rows("delete from workers where worker_id != ? returning worker_id", serve["worker_id"])
    assert page.count(f'data-label="Process">{serve["pid"]}<') == 1, page
    assert re.search(r"<dt>Workers</dt> ?<dd>1</dd>", page), page


def test_sign_in_link_is_single_use_from_the_public_url_and_the_reply_says_nothing(world):
    priya = Person(world, PRIYA)
    # The same reply for an officer, an admin and a stranger; a link only to those who may sign in.
    replies = [Person(world, who).ask_for_link() for who in (PRIYA, STRANGER, ADMIN)]
    assert len({(r.status_code, r.text) for r in replies}) == 1
    wait_for(lambda: world.links_for(PRIYA) and world.links_for(ADMIN), timeout=20)
    time.sleep(0.5)
    assert world.links_for(STRANGER) == []
    assert [m for m in world.smtp.messages if STRANGER in m.rcpt_tos] == []
    # Built from FEDFINA_PUBLIC_URL, whatever Host the request named.
    csrf = priya.form_csrf("/console/login")
    # (the cookie by hand: requests picks cookies by the Host header)
    forged = priya.post("/console/login", {"csrf": csrf, "email": PRIYA}, headers={
        "Host": "evil.example", "Cookie": f"fedfina_form={priya.http.cookies['fedfina_form']}"})
    assert forged.status_code == 200
    wait_for(lambda: len(world.links_for(PRIYA)) == 2, timeout=20)
    assert all(link.startswith(world.url + "/console/signin?token=") for link in world.links_for(PRIYA))
    link = world.links_for(PRIYA)[0]
    token = link.split("token=")[1]
    # Opening the link (a mail scanner does) signs nobody in and does not use it up.
    for _ in range(2):
        opened = priya.get(link.removeprefix(world.url))
        assert opened.status_code == 200 and "fedfina_session" not in opened.headers.get("set-cookie", "")
    priya.use_link(link)
    assert priya.get("/console").status_code == 200
    # Used once: a second sign-in with it fails, even from another browser.
    again = Person(world, PRIYA)
    page = again.get(link.removeprefix(world.url))
    assert page.status_code == 410
    csrf = again.form_csrf("/console/login")
    assert again.post("/console/signin", {"csrf": csrf, "token": token}).status_code == 410
    # Only hashes in the ledger; the sign-ins and the refused address in the audit log.
    stored = ledger_rows("select * from console_links") + ledger_rows("select * from console_sessions")
    assert stored and token not in repr(stored)
    assert priya.http.cookies["fedfina_session"] not in repr(stored)
    lines = [r["message"] for r in ledger_rows("select message from processing_audit_log where step = 'console'")]
    assert any(line.startswith(f"{PRIYA} signed in by emailed link") for line in lines), lines
    assert any("may not sign in" in line for line in lines)
    assert not any(STRANGER in line for line in lines)  # an address anyone typed is not kept


def test_expired_links_and_sessions_and_signing_out(world):
    priya = world.sign_in(PRIYA)
    header = next(h for h in priya.http.cookies if h.name == "fedfina_session")
    assert header.has_nonstandard_attr("HttpOnly") and header.path == "/console" and not header.secure
    assert header.get_nonstandard_attr("SameSite").lower() == "lax"
    # A session ended elsewhere (its expiry passed) is over here too: stored in the ledger.
    ledger_rows("update console_sessions set expires_at = '2000-01-01T00:00:00.000Z' returning 1")
    assert priya.get("/console").headers["location"] == "/console/login"
    # A link past 15 minutes.
    arun = Person(world, ARUN)
    arun.ask_for_link()
    wait_for(lambda: world.links_for(ARUN), timeout=20)
    ledger_rows("update console_links set expires_at = '2000-01-01T00:00:00.000Z' returning 1")
    assert arun.get(world.links_for(ARUN)[0].removeprefix(world.url)).status_code == 410
    # Signing out ends the session in the ledger: the old cookie no longer works.
    admin = world.sign_in(ADMIN)
    old = admin.http.cookies["fedfina_session"]
    out = admin.post("/console/signout", {"csrf": admin.csrf})
    assert out.status_code == 303
    replay = Person(world, ADMIN)
    replay.http.cookies.set("fedfina_session", old, path="/console")
    assert replay.get("/console").status_code == 303
    assert replay.get(f"/console/c/{world.ids['conv_bulk00000001']}").status_code == 303


def test_every_post_needs_its_csrf_token_and_our_origin(world):
    admin, priya = world.sign_in(ADMIN), world.sign_in(PRIYA)
    failed = world.ids["conv_bulk00000004"]
    for fields in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": priya.csrf}):
        refused = admin.post(f"/console/c/{failed}/retry", fields)
        assert refused.status_code == 403, fields
    assert admin.post(f"/console/c/{failed}/retry", {"csrf": admin.csrf},
                      headers={"Origin": "https://evil.example"}).status_code == 403
    assert admin.post("/console/signout", {}).status_code == 403
    # Before sign-in: the form's own cookie.
    stranger = Person(world, STRANGER)
    assert stranger.post("/console/login", {"email": PRIYA, "csrf": "x"}).status_code == 403
    assert ledger_rows("select status from conversation_processing where processing_id = ?", failed) == [
        {"status": "failed"}]
    assert admin.get("/console").status_code == 200  # still signed in: nothing above signed anyone out


def test_sign_in_requests_are_limited_per_address_and_per_client(world):
    person = Person(world, PRIYA)
    statuses = [person.ask_for_link(PRIYA).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # The same for an address nobody knows: the limit says nothing about who may sign in.
    statuses = [person.ask_for_link(STRANGER).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # Per client: 20 in 15 minutes, whatever the addresses (10 so far, 2 refused).
    more = [person.ask_for_link(f"n{n}@bank.example").status_code for n in range(12)]
    assert more == [200] * 10 + [429] * 2
    wait_for(lambda: world.links_for(PRIYA), timeout=20)
    time.sleep(0.5)
    assert len(world.links_for(PRIYA)) == 5


def test_audio_is_streamed_through_the_console_with_range_requests(world):
    priya = world.sign_in(PRIYA)
    call = world.ids["conv_bulk00000001"]
    whole = priya.get(f"/console/c/{call}/audio")
    assert whole.status_code == 200 and whole.content == AUDIO
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(AUDIO)
    piece = 1024 * 1024  # a reply is at most this much: the player asks for the rest
    cases = {"bytes=0-99": (0, 99), "bytes=100000-": (100000, min(size - 1, 100000 + piece - 1)),
             "bytes=-417": (size - 417, size - 1),
             f"bytes={size - 100}-{size + 50}": (size - 100, size - 1)}
    assert size > piece
    cases["bytes=0-"] = (0, piece - 1)
    cases[f"bytes={size - 5}-{size + 5}"] = (size - 5, size - 1)
    for asked, (start, end) in cases.items():
        part = priya.get(f"/console/c/{call}/audio", headers={"Range": asked})
        assert part.status_code == 206, asked
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}", asked
        assert part.content == AUDIO[start:end + 1], asked
    for bad in (f"bytes={size}-", "bytes=abc", "items=0-1"):
        assert priya.get(f"/console/c/{call}/audio", headers={"Range": bad}).status_code == 416, bad
    # From MinIO, which the browser never reaches: no link to the bucket on the page.
    page = priya.get(f"/console/c/{call}").text
    assert f'src="/console/c/{call}/audio"' in page
    assert "X-Amz" not in page and ":9000" not in page


def test_retry_resend_and_hold_are_done_and_audited_with_who_did_them(world, services):
    admin, priya = world.sign_in(ADMIN), world.sign_in(PRIYA)
    failed, own = world.ids["conv_bulk00000004"], world.ids["conv_bulk00000001"]
    # An officer may not retry; an admin may, once the call is at ElevenLabs.
    assert priya.act(failed, "retry").status_code == 404
    services["elevenlabs"].add(hindi_variant(4, email=PRIYA), audio=AUDIO)
    done = admin.act(failed, "retry")
    assert done.status_code == 303 and done.headers["location"].endswith("done=queued")
    wait_for(lambda: ledger_rows("select status from conversation_processing where processing_id = ?",
                                 failed)[0]["status"] == "completed", timeout=60)
    assert len(services["smtp"].for_conversation("conv_bulk00000004")) == 1
    # The recipient sends their own email again; it arrives once more.
    before = len(services["smtp"].for_conversation("conv_bulk00000001"))
    resent = priya.act(own, "resend")
    assert resent.headers["location"].endswith("done=resent"), resent.headers
    assert len(services["smtp"].for_conversation("conv_bulk00000001")) == before + 1
    assert "The email was sent again." in priya.get(resent.headers["location"]).text
    # Legal hold from the console, as `fedfina hold` records it; an officer may not.
    assert priya.act(own, "hold", reason="x").status_code == 404
    held = admin.act(own, "hold", action="place", reason="RBI 2026-14")
    assert held.headers["location"].endswith("done=held")
    assert ledger_rows("select legal_hold from conversation_processing where processing_id = ?", own) == [
        {"legal_hold": 1}]
    page = " ".join(admin.get(f"/console/c/{own}").text.split())
    # In the console's own time format and words, not the ledger's ISO text.
    assert re.search(r"On legal hold since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(RBI 2026-14 \(by ", page), page
    hindi = admin.get(f"/console/c/{own}", headers={"Accept-Language": "hi"}).text
    assert re.search(r"\d\d:\d\d UTC से कानूनी रोक पर \(RBI 2026-14", hindi)
    log = ledger_rows("select step, event, message from processing_audit_log where processing_id in (?, ?) "
                      "order by id", failed, own)
    said = [(r["step"], r["event"], r["message"]) for r in log]
    assert ("console", "retry", f"retry asked by {ADMIN}") in said
    assert ("console", "resend", f"email sent again, asked by {PRIYA}") in said
    assert ("hold", "placed", f"RBI 2026-14 (by {ADMIN}, console)") in said


def test_a_purged_conversation_keeps_its_row_without_the_applicants_name(world, installed):
    """Past retention the files go, and with them the name and last four digits kept for the
    search: the page says so, in the officer's language, and the search no longer finds it."""
    admin = world.sign_in(ADMIN)
    own = world.ids["conv_bulk00000001"]
    ledger_rows("update conversation_processing set applicant_name = 'सुनीता वर्मा', completed_at = "
                "'2025-01-01T00:00:00.000Z' where processing_id = ? returning processing_id", own)
    [row] = ledger_rows("select phone_last4 from conversation_processing where processing_id = ?", own)
    for found in ("सुनीता", row["phone_last4"]):
        assert "conv_bulk00000001" in _listed(admin.get("/console", params={"q": found}).text), found
    purged = installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"})
    assert purged.exit_code == 0 and "deleted" in purged.stdout, purged
    page = admin.get(f"/console/c/{own}").text
    assert "Name removed with the files" in page and "सुनीता" not in page
    assert re.search(r"Files purged on \d{4}-\d\d-\d\d \d\d:\d\d UTC, past the account&#39;s retention",
                     " ".join(page.split())), page
    assert "नाम फ़ाइलों के साथ हटाया गया" in admin.get(f"/console/c/{own}", headers={"Accept-Language": "hi"}).text
    for found in ("सुनीता", row["phone_last4"]):
        assert "conv_bulk00000001" not in _listed(admin.get("/console", params={"q": found}).text), found
    # No report is left to send: no button, and a resend asked anyway is refused, nothing sent.
    assert "Send the email again" not in page
    sent = len(world.smtp.messages)
    refused = admin.act(own, "resend")
    assert refused.status_code == 409 and "were purged" in refused.text and len(world.smtp.messages) == sent


def test_search_filters_and_pages(world):
    admin = world.sign_in(ADMIN)
    # 120 more calls recorded for the list (the ledger's own rows: the list reads only the ledger).
    for n in range(120):
        ledger_rows(
            "insert into conversation_processing (conversation_id, account_id, email_id, status, applicant_name, "
            "phone_last4, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?) returning processing_id",
            f"conv_page{n:08d}", "acc9" if n % 2 else "acc123", PRIYA, "failed" if n % 3 == 0 else "completed",
            "सुमित्रा दास" if n == 7 else f"Applicant {n}", f"{n:04d}",
            f"2026-11-{1 + n % 28:02d}T10:00:{n % 60:02d}.000Z", "2026-11-30T00:00:00.000Z")
    seen: list[str] = []
    query = "/console"
    while query:
        page = admin.get(query).text
        seen += re.findall(r'class="id">(conv_\w+)<', page)
        found = re.search(r'href="(/console\?[^"]*after=[^"]*)" rel="next"', page)
        query = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == 124  # every call once, across three pages of 50
    assert _listed(admin.get("/console", params={"q": "दास"}).text) == {"conv_page00000007"}
    assert _listed(admin.get("/console", params={"q": "0042"}).text) == {"conv_page00000042"}
    assert _listed(admin.get("/console", params={"q": "conv_page0000011"}).text) == {
        f"conv_page0000011{n}" for n in range(10)}
    assert _listed(admin.get("/console", params={"q": "%"}).text) == set()  # a wildcard is a character
    failed_acc9 = _listed(admin.get("/console", params={"status": "failed", "account": "acc9"}).text)
    assert failed_acc9 == {f"conv_page{n:08d}" for n in range(120) if n % 3 == 0 and n % 2}
    day = _listed(admin.get("/console", params={"from": "2026-11-03", "to": "2026-11-03"}).text)
    assert day == {f"conv_page{n:08d}" for n in range(120) if 1 + n % 28 == 3}
    for bad in ({"from": "yesterday"}, {"status": "lost"}, {"account": "../x"}, {"after": "x"}):
        assert admin.get("/console", params=bad).status_code == 400, bad


def test_pages_are_locked_down(world):
    priya = world.sign_in(PRIYA)
    for path in ("/console", f"/console/c/{world.ids['conv_bulk00000001']}", "/console/login"):
        page = priya.get(path)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        # Nothing fetched from anywhere else: every src and href is the console's own.
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith(("/console", "#")), url
    fonts = priya.get("/console/static/console.css").text
    for font in re.findall(r"url\('([^']+)'\)", fonts):
        assert priya.get(font).status_code == 200, font
    assert priya.get("/console/static/../../core/config.py").status_code == 404
    assert priya.get("/console/static/fedfina.db").status_code == 404


def test_the_console_is_off_without_a_public_url(installed, serving, monkeypatch):
    server = serving()
    status, body = server.get("/console")
    assert status == 404 and b"FEDFINA_PUBLIC_URL" in body
    assert server.get("/console/login")[0] == 404


@pytest.mark.parametrize("proxies, signed_in", [("127.0.0.1/32", True), ("10.0.0.0/8", False)])
def test_single_sign_on_header_only_from_the_trusted_proxy(installed, services, serving, monkeypatch, proxies,
                                                            signed_in):
    world = build_world(installed, services, serving, monkeypatch,
                        ("FEDFINA_CONSOLE_TRUSTED_PROXIES", proxies),
                        ("FEDFINA_CONSOLE_EMAIL_HEADER", "X-Forwarded-Email"))
    arun = Person(world, ARUN)
    arun.http.headers["X-Forwarded-Email"] = ARUN
    page = arun.get("/console")
    if not signed_in:
        assert page.status_code == 303 and page.headers["location"] == "/console/login"
        return
    assert page.status_code == 200 and _listed(page.text) == {"conv_bulk00000003"}
    assert arun.get(f"/console/c/{world.ids['conv_bulk00000001']}").status_code == 404
    # Its forms work with the proxy's identity (CSRF by the form cookie).
    csrf = re.search(r'name="csrf" value="([^"]+)"', arun.get(f"/console/c/{world.ids['conv_bulk00000003']}").text)
    before = len(services["smtp"].for_conversation("conv_bulk00000003"))
    resent = arun.post(f"/console/c/{world.ids['conv_bulk00000003']}/resend", {"csrf": csrf.group(1)})
    assert resent.headers["location"].endswith("done=resent")
    assert len(services["smtp"].for_conversation("conv_bulk00000003")) == before + 1
    # Another header value is another person: the admin's, by the same proxy.
    arun.http.headers["X-Forwarded-Email"] = ADMIN
    assert arun.get("/console/ops").status_code == 200
    assert LINK_SUBJECT not in repr([m.message["Subject"] for m in services["smtp"].messages])
    # Each person's sign-in through the proxy is in the audit log, once (not once a request).
    lines = [r["message"] for r in ledger_rows("select message from processing_audit_log where event = 'signin'")]
    assert sorted(line.split(" ")[0] for line in lines) == sorted([ADMIN, ARUN]), lines
    assert "by single sign-on (X-Forwarded-Email from the trusted proxy)" in lines[0]


def test_console_on_postgresql(installed, services, serving, monkeypatch, postgres):
    """The same rules on the PostgreSQL ledger: its expression index, LIKE escapes, sessions."""
    world = build_world(installed, services, serving, monkeypatch)
    priya, admin = world.sign_in(PRIYA), world.sign_in(ADMIN)
    assert _listed(priya.get("/console").text) == {"conv_bulk00000001", "conv_bulk00000002", "conv_bulk00000004"}
    assert priya.get(f"/console/c/{world.ids['conv_bulk00000003']}").status_code == 404
    assert _listed(admin.get("/console", params={"q": "conv_bulk0000000"}).text) == {
        f"conv_bulk0000000{n}" for n in (1, 2, 3, 4)}
    assert _listed(admin.get("/console", params={"q": "_"}).text) == set()
    assert _listed(admin.get("/console", params={"q": "4821"}).text) == {
        f"conv_bulk0000000{n}" for n in (1, 2, 3)}
    assert admin.get("/console/ops").status_code == 200
    assert admin.post("/console/signout", {"csrf": admin.csrf}).status_code == 303
    assert admin.get("/console").status_code == 303


def test_the_figures_to_check_are_shown_marked(world, installed, services):
    import json

    services["elevenlabs"].add(hindi_variant(6, email=PRIYA), audio=AUDIO)
    services["openai"].replies.append(json.dumps({
        "title": "Loan interview summary", "overview": "A grocery shop owner asks for a loan.",
        "sections": [{"heading": "Finances", "points": ["Monthly sales ₹9,99,999"]}],
        "action_items": ["Verify the stated figures."], "sentiment": "positive", "language": "Hindi"}))
    assert installed("run", "-c", "conv_bulk00000006").exit_code == 0
    call = ledger_rows("select processing_id from conversation_processing where conversation_id = ?",
                       "conv_bulk00000006")[0]["processing_id"]
    page = world.sign_in(PRIYA).get(f"/console/c/{call}").text
    assert "Check these figures" in page
    # As the report words them: what the figure is and where, in the officer's words.
    assert "<mark>Monthly sales ₹9,99,999 (Finances, point 1)</mark>" in page, page[page.find("figures"):][:600]
    # A call whose figures all check out has no such box.
    assert "Check these figures" not in world.sign_in(ADMIN).get(f"/console/c/{world.ids['conv_bulk00000001']}").text


def test_over_https_every_cookie_is_secure_and_links_use_the_public_address(installed, services, serving,
                                                                             monkeypatch):
    """Behind TLS (the public URL is https; the server itself listens on plain HTTP behind the
    proxy that ends TLS), cookies are Secure and sign-in links point at the public address."""
    world = build_world(installed, services, serving, monkeypatch,
                        ("FEDFINA_PUBLIC_URL", "https://fedfina.bank.example"))
    person = Person(world, PRIYA)
    login = person.get("/console/login")
    assert "secure" in login.headers["set-cookie"].lower()
    form_cookie = re.search(r"fedfina_form=([^;]+)", login.headers["set-cookie"]).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    headers = {"Cookie": f"fedfina_form={form_cookie}", "Origin": "https://fedfina.bank.example"}
    assert person.post("/console/login", {"csrf": csrf, "email": PRIYA}, headers=headers).status_code == 200
    wait_for(lambda: world.links_for(PRIYA), timeout=20)
    link = world.links_for(PRIYA)[0]
    assert link.startswith("https://fedfina.bank.example/console/signin?token=")
    token = link.split("token=")[1]
    signed = person.post("/console/signin", {"csrf": csrf, "token": token}, headers=headers)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "fedfina_session=" in cookie and "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    # A form from the plain-HTTP address is another origin now.
    refused = person.post("/console/login", {"csrf": csrf, "email": PRIYA},
                          headers={**headers, "Origin": world.url})
    assert refused.status_code == 403


def test_local_storage_reads_a_range(tmp_path):
    from fedfina_cli.services.storage import ObjectMissing
    from fedfina_cli.services.storage.local import LocalStorage

    storage = LocalStorage(tmp_path)
    storage.put_bytes("acc123/audio/conv_bulk00000001.mp3", AUDIO, "audio/mpeg")
    assert storage.get_range("acc123/audio/conv_bulk00000001.mp3", 1000, 417) == AUDIO[1000:1417]
    assert storage.get_range("acc123/audio/conv_bulk00000001.mp3", len(AUDIO) - 5, 100) == AUDIO[-5:]
    with pytest.raises(ObjectMissing):
        storage.get_range("acc123/audio/conv_nothere00000.mp3", 0, 10)


def test_the_console_speaks_hindi_and_tamil(world):
    priya = world.sign_in(PRIYA)
    call = world.ids["conv_bulk00000001"]
    # Chosen in the header: kept in a cookie for the next pages.
    hindi = priya.get(f"/console/c/{call}", params={"lang": "hi"})
    assert '<html lang="hi">' in hindi.text and "प्रतिलेख" in hindi.text and "रिकॉर्डिंग" in hindi.text
    assert "fedfina_lang=hi" in hindi.headers["set-cookie"]
    listed = priya.get("/console").text
    assert "आपको भेजी गई बातचीत" in listed and ">पूर्ण<" in listed  # the heading, a status
    # Until chosen, the browser's language; English otherwise.
    stranger = Person(world, STRANGER)
    tamil = stranger.get("/console/login", headers={"Accept-Language": "ta-IN,ta;q=0.9,en;q=0.5"})
    assert '<html lang="ta">' in tamil.text and "உள்நுழைவு இணைப்பை அனுப்பு" in tamil.text
    english = stranger.get("/console/login", headers={"Accept-Language": "fr-FR"})
    assert '<html lang="en">' in english.text and "Email me a sign-in link" in english.text
    # The sign-in page's language links keep its token.
    Person(world, ARUN).ask_for_link()
    wait_for(lambda: world.links_for(ARUN), timeout=20)
    page = stranger.get(world.links_for(ARUN)[0].removeprefix(world.url))
    token = world.links_for(ARUN)[0].split("token=")[1]
    assert f'href="/console/signin?token={token}&amp;lang=ta"' in page.text


def test_every_phrase_of_the_templates_is_in_hindi_and_tamil():
    from fedfina_cli.server.console.words import WORDS

    phrases = set()
    import fedfina_cli.server.console as console

    for template in (Path(console.__file__).parent / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        phrases |= set(re.findall(r't\(\s*"([^"]+)"', text)) | set(re.findall(r"t\(\s*'([^']+)'", text))
    assert len(phrases) > 80
    for language, table in WORDS.items():
        assert sorted(phrase for phrase in phrases if phrase not in table) == [], language


def test_the_transcript_is_masked_as_the_accounts_own_report_is(world, installed, services):
    """The console shows a call's words as its account's report does: masked under the default,
    as spoken for an account set to `none` (`accounts set --redact`), not by FEDFINA_REDACT alone."""
    from .conftest import pdf_text
    from .test_privacy import AADHAAR, with_identifiers

    admin = world.sign_in(ADMIN)
    services["elevenlabs"].add(with_identifiers(7), audio=AUDIO)
    assert installed("run", "-c", "conv_bulk00000007").exit_code == 0
    masked = admin.get(f"/console/c/{_processing_id('conv_bulk00000007')}").text
    assert "[AADHAAR ••••2346]" in masked and AADHAAR not in masked

    assert installed("accounts", "set", "acc123", "--redact", "none").exit_code == 0
    services["elevenlabs"].add(with_identifiers(8), audio=AUDIO)
    assert installed("run", "-c", "conv_bulk00000008").exit_code == 0
    report = pdf_text(admin.get(f"/console/c/{_processing_id('conv_bulk00000008')}/report.pdf").content)
    assert AADHAAR.replace(" ", "") in report.replace(" ", "")  # the account's report: as spoken
    spoken = admin.get(f"/console/c/{_processing_id('conv_bulk00000008')}").text
    assert AADHAAR in spoken and "[AADHAAR" not in spoken


def _processing_id(conversation_id: str) -> int:
    return ledger_rows("select processing_id from conversation_processing where conversation_id = ?",
                       conversation_id)[0]["processing_id"]
