"""Retention and legal hold through the CLI (SPEC "Retention and legal hold"), on local storage,
MinIO (moto's S3 server) and PostgreSQL: files past retention are deleted, the ledger row stays
and says so, held conversations are never touched, and a purge killed part-way finishes on the
next run without deleting anything it should not."""

import itertools
import json
import signal
import subprocess
import threading
import time

import pytest

from .conftest import hindi_variant, wait_for, words

AUDIO = b"ID3" + bytes(range(256)) * 8
IDS = [f"conv_bulk{n:08d}" for n in (1, 2, 3)]
OLD, KEPT, HELD = IDS


def _ledger():
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    return open_ledger(load_settings())


def _age(conversation_ids: list[str], days: int) -> None:
    """As if these conversations had finished ``days`` ago."""
    from datetime import UTC, datetime, timedelta

    from fedfina_cli.core.timefmt import utc_text

    ledger = _ledger()
    try:
        for conversation_id in conversation_ids:
            ledger.sql.run("update conversation_processing set completed_at = ? where conversation_id = ?",
                           [utc_text(datetime.now(UTC) - timedelta(days=days)), conversation_id])
    finally:
        ledger.close()


def _rows(sql: str, args: list) -> list[dict]:
    ledger = _ledger()
    try:
        return ledger.sql.rows(sql, args)
    finally:
        ledger.close()


def _processed(installed, elevenlabs, numbers) -> None:
    for number in numbers:
        elevenlabs.add(hindi_variant(number), audio=AUDIO)
    result = installed("run", "-j", "8", *[arg for n in numbers for arg in ("-c", f"conv_bulk{n:08d}")])
    assert result.exit_code == 0, result.stderr


def _retention_scenario(installed, elevenlabs, stored, gone, before_purge=lambda conversation_id: None) -> None:
    """Three calls: one 400 days old, one 10 days old, one 400 days old under legal hold; the
    account keeps files 365 days. ``stored(id)``: the keys of its files where they live;
    ``gone(id)``: none of them are left; ``before_purge(id)``: done to the old one first."""
    _processed(installed, elevenlabs, (1, 2, 3))
    _age([OLD, HELD], 400)
    _age([KEPT], 10)
    assert installed("accounts", "set", "acc123", "--retention-days", "365").exit_code == 0
    held = installed("hold", HELD, "--reason", "RBI inspection 14")
    assert held.exit_code == 0 and "is on legal hold" in held.stdout
    before = {i: stored(i) for i in IDS}
    assert all(len(keys) == 5 for keys in before.values()), before  # json, transcript, audio, summary, report

    dry = installed("purge", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert [c["conversation_id"] for c in listed["conversations"]] == [OLD] and listed["objects"] == 6  # + .eml
    assert {i: stored(i) for i in IDS} == before  # a dry run deletes nothing

    before_purge(OLD)
    done = installed("purge")
    assert done.exit_code == 0, done.stderr
    assert "1 conversation past retention: deleted 6 files" in done.stdout
    assert gone(OLD) and stored(KEPT) == before[KEPT] and stored(HELD) == before[HELD]

    # The row stays and says so; each file's row is marked, each object has its audit line.
    row = _rows("select status, purged_at, legal_hold, applicant_name, phone_last4 from conversation_processing "
                "where conversation_id = ?", [OLD])[0]
    assert row["status"] == "completed" and row["purged_at"] and not row["legal_hold"]
    # The applicant's name and last four digits (the console's search) go with the files.
    assert row["applicant_name"] is None and row["phone_last4"] is None
    kept = _rows("select applicant_name, phone_last4 from conversation_processing where conversation_id = ?", [KEPT])
    assert kept[0]["applicant_name"] and kept[0]["phone_last4"], kept
    files = _rows("select deleted_at from conversation_files where conversation_id = ?", [OLD])
    assert len(files) == 5 and all(f["deleted_at"] for f in files)
    deleted = _rows("select message from processing_audit_log where conversation_id = ? and step = 'purge' "
                    "and event = 'deleted'", [OLD])
    assert len(deleted) == 6 and any("email" in d["message"] for d in deleted)

    shown = installed("show", OLD)
    assert shown.exit_code == 0 and "files purged on" in " ".join(shown.stdout.split())
    assert "not in" not in shown.stderr  # deleted files are not reported missing
    held_shown = " ".join(installed("show", HELD).stdout.split())
    assert "on legal hold since" in held_shown and "(RBI inspection 14)" in held_shown

    stats = json.loads(installed("stats", "--format", "json").stdout)
    assert (stats["files_stored"], stats["files_purged"]) == (10, 5)  # stored now, and purged
    again = installed("purge")  # idempotent: nothing left to do
    assert again.exit_code == 0 and "0 conversations past retention" in again.stdout
    assert len(_rows("select id from processing_audit_log where step = 'purge'", [])) == 7

    released = installed("hold", HELD, "--release")
    assert released.exit_code == 0 and "released" in released.stdout
    assert installed("purge").exit_code == 0
    assert gone(HELD) and stored(KEPT) == before[KEPT]


def _local(workspace):
    def stored(conversation_id: str) -> list[str]:
        return sorted(str(p.relative_to(workspace.data)) for p in workspace.data.rglob(f"{conversation_id}.*")
                      if "outbox" not in p.parts)

    def gone(conversation_id: str) -> bool:
        return stored(conversation_id) == [] and not workspace.eml("acc123", conversation_id).exists()

    return stored, gone


def test_retention_on_local_storage(installed, elevenlabs, workspace):
    stored, gone = _local(workspace)

    def gone_with_leftovers(conversation_id: str) -> bool:
        return gone(conversation_id) and not list(workspace.data.rglob(f".{conversation_id}.*.part"))

    def killed_mid_write(conversation_id: str) -> None:
        """What a run killed while writing the transcript leaves: part of it, named for its dead writer."""
        dead = subprocess.Popen(["true"])
        dead.wait()
        transcript = next(workspace.data.rglob(f"{conversation_id}.txt"))
        leftover = transcript.parent / f".{transcript.name}.{dead.pid}.a1b2c3.part"
        leftover.write_bytes(transcript.read_bytes()[:100])

    _retention_scenario(installed, elevenlabs, stored, gone_with_leftovers, killed_mid_write)


def test_retention_on_minio(installed, elevenlabs, workspace, s3):
    def stored(conversation_id: str) -> list[str]:
        return [key for key in s3.object_keys() if conversation_id in key]

    def gone(conversation_id: str) -> bool:
        return stored(conversation_id) == [] and not workspace.eml("acc123", conversation_id).exists()

    _retention_scenario(installed, elevenlabs, stored, gone)


def test_retention_on_a_versioned_bucket_deletes_every_version(installed, elevenlabs, workspace, s3):
    """A bucket that keeps versions (as banks often set MinIO up) answers a plain delete with a
    delete marker and keeps the object behind it: every version of each file is deleted, and the
    markers, so nothing of the conversation is left; another conversation's versions stay."""
    client = s3.client
    client.create_bucket(Bucket=s3.bucket)
    client.put_bucket_versioning(Bucket=s3.bucket, VersioningConfiguration={"Status": "Enabled"})
    _processed(installed, elevenlabs, (1, 2))
    assert installed("run", "-c", OLD, "--force").exit_code == 0  # stored twice: two versions of each file
    _age([OLD], 400)

    def versions(conversation_id: str) -> list[str]:
        found = client.list_object_versions(Bucket=s3.bucket)
        return [v["Key"] for v in found.get("Versions", []) + found.get("DeleteMarkers", [])
                if conversation_id in v["Key"]]

    assert len(versions(OLD)) >= 10 and len(versions(KEPT)) == 5
    done = installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"})
    assert done.exit_code == 0 and "1 conversation past retention: deleted 6 files" in done.stdout, done
    assert versions(OLD) == [] and len(versions(KEPT)) == 5
    assert installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"}).exit_code == 0  # nothing left: no error


def test_a_file_object_lock_keeps_is_reported_and_the_purge_goes_on(installed, elevenlabs, workspace, s3):
    """A bucket with Object Lock (a bank's compliance retention, longer than the account's) refuses
    to delete what it locks: that conversation is reported, keeps its files and is not marked
    purged, and the purge goes on to the next one. It used to stop at the first locked file,
    with a message about credentials, every time: no later conversation was ever purged."""
    from datetime import UTC, datetime, timedelta

    client = s3.client
    client.create_bucket(Bucket=s3.bucket, ObjectLockEnabledForBucket=True)
    _processed(installed, elevenlabs, (1, 2))
    for version in client.list_object_versions(Bucket=s3.bucket, Prefix="acc123/")["Versions"]:
        if OLD in version["Key"]:  # locked for ten years, as a compliance rule might
            client.put_object_retention(Bucket=s3.bucket, Key=version["Key"], VersionId=version["VersionId"],
                                        Retention={"Mode": "COMPLIANCE",
                                                   "RetainUntilDate": datetime.now(UTC) + timedelta(days=3650)})
    _age([OLD], 400)
    _age([KEPT], 300)

    done = installed("purge", "--format", "json", env={"FEDFINA_RETENTION_DAYS": "30"})
    assert done.exit_code == 1, done
    report = json.loads(done.stdout)
    assert [c["conversation_id"] for c in report["conversations"]] == [KEPT] and report["objects"] == 6
    [failed] = report["failed"]
    assert failed.startswith(f"{OLD}: ") and "Object Lock" in failed and "MINIO_ACCESS_KEY" not in failed, failed
    assert [k for k in s3.object_keys() if KEPT in k] == []
    assert len([k for k in s3.object_keys() if OLD in k]) == 5
    rows = {r["conversation_id"]: r
            for r in _rows("select conversation_id, purged_at from conversation_processing", [])}
    assert rows[OLD]["purged_at"] is None and rows[KEPT]["purged_at"]
    assert _rows("select count(*) as n from conversation_files where conversation_id = ? and deleted_at is null",
                 [OLD]) == [{"n": 5}]
    said = _rows("select message from processing_audit_log where conversation_id = ? and step = 'purge' "
                 "and event = 'failed'", [OLD])
    assert len(said) == 1 and "Object Lock" in said[0]["message"]
    text = installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"})  # and again: one line, exit 1, no new audit line
    assert text.exit_code == 1 and "1 conversation could not be purged" in words(text.stderr), text
    assert len(_rows("select id from processing_audit_log where step = 'purge' and event = 'failed'", [])) == 1


def test_a_file_the_folder_will_not_give_up_is_reported_and_the_purge_goes_on(installed, elevenlabs, workspace):
    _processed(installed, elevenlabs, (1, 2))
    _age([OLD, KEPT], 400)
    transcript = next(workspace.data.rglob(f"{OLD}.txt"))
    transcript.unlink()
    (transcript / "someone's notes").mkdir(parents=True)  # a folder where the file was: unlink refuses it
    done = installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"})
    assert done.exit_code == 1, done
    said = words(done.stderr)
    assert f"1 conversation could not be purged (first: {OLD}: Is a directory: {transcript})" in said, said
    assert not list(workspace.data.rglob(f"{KEPT}.*")) and transcript.is_dir()
    assert _rows("select conversation_id from conversation_processing where purged_at is not null", []) == [
        {"conversation_id": KEPT}]


def test_retention_on_postgresql(installed, elevenlabs, workspace, postgres):
    _retention_scenario(installed, elevenlabs, *_local(workspace))


def test_a_purge_killed_part_way_finishes_on_the_next_run(fedfina_exe, installed, elevenlabs, workspace):
    """SIGKILL in the middle of a purge of 40 conversations, then purge again: every file of every
    due conversation is gone, each has exactly one audit line, the held one is untouched."""
    numbers = range(10, 50)
    _processed(installed, elevenlabs, numbers)
    ids = [f"conv_bulk{n:08d}" for n in numbers]
    _age(ids, 30)
    assert installed("accounts", "set", "acc123", "--retention-days", "7").exit_code == 0
    assert installed("hold", ids[-1]).exit_code == 0
    held_files = sorted(workspace.data.rglob(f"{ids[-1]}.*"))

    process = subprocess.Popen([fedfina_exe, "purge"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def deleted() -> int:
        return len(workspace.rows("select id from processing_audit_log where step = 'purge' and event = 'deleted'"))

    wait_for(lambda: deleted() >= 40 or process.poll() is not None, timeout=60)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = deleted()
    assert 0 < killed_at < 39 * 6, f"killed after {killed_at} files: not part-way"

    assert installed("purge").exit_code == 0
    assert all(not list(workspace.data.rglob(f"{i}.*")) for i in ids[:-1])
    assert sorted(workspace.data.rglob(f"{ids[-1]}.*")) == held_files
    per_object = workspace.rows("select message, count(*) as n from processing_audit_log where step = 'purge' "
                                "and event = 'deleted' group by message")
    assert len(per_object) == 39 * 6 and all(r["n"] == 1 for r in per_object)
    purged = workspace.rows("select count(*) as n from conversation_processing where purged_at is not null")
    assert purged == [{"n": 39}]


def test_a_hold_placed_while_a_purge_runs_stops_it_at_the_next_object(installed, elevenlabs, workspace):
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.pipeline.backends import storage_for
    from fedfina_cli.pipeline.claims import Claims
    from fedfina_cli.pipeline.purge import Purged, _purge_one, cutoffs

    _processed(installed, elevenlabs, (1,))
    _age([OLD], 400)
    settings = load_settings()
    ledger = _ledger()
    try:
        ledger.set_account_settings("acc123", {"retention_days": 30})
        own, default = cutoffs(ledger, settings)
        [row] = ledger.retention.due(own, default)
        with Claims(ledger) as claims:
            token = claims.claim_to_purge(row)  # picked and claimed by the purge...
            assert token is not None
            assert installed("hold", OLD, "--reason", "dispute").exit_code == 0  # ...then held
            result = Purged()
            _purge_one(ledger, storage_for(settings, lambda call: None), settings, row, token, result)
            assert result.interrupted
            claims.release(row, token)
            assert claims.claim_to_purge(row) is None  # held: not taken again
    finally:
        ledger.close()
    assert len(list(workspace.data.rglob(f"{OLD}.*"))) == 6  # nothing deleted, the .eml included
    assert workspace.rows("select purged_at from conversation_processing") == [{"purged_at": None}]


def _old_call_in_storage(installed, elevenlabs, request, ledger_kind: str):
    """One call processed and aged 400 days, on a ledger of ``ledger_kind``: (settings, its storage)."""
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.pipeline.backends import storage_for

    if ledger_kind == "postgresql":
        request.getfixturevalue("postgres")
    _processed(installed, elevenlabs, (1,))
    _age([OLD], 400)
    settings = load_settings()
    return settings, storage_for(settings, lambda call: None)


def _purged_at_30_days(storage, settings):
    """`purge` in this process, the account keeping 30 days: what it did."""
    from fedfina_cli.pipeline.purge import purge

    ledger = _ledger()
    try:
        ledger.set_account_settings("acc123", {"retention_days": 30})
        return purge(ledger, storage, settings)
    finally:
        ledger.close()


def _after_first_delete(storage, when, then) -> None:
    """``then()``, once, right after ``storage`` deletes the first key for which ``when(key)``."""
    deleting, done = storage.delete, []

    def delete(key: str) -> None:
        deleting(key)
        if not done and when(key):
            done.append(key)  # first: ``then`` may delete too
            then()

    storage.delete = delete


def test_a_hold_placed_part_way_is_said_by_the_hold_and_by_the_purge(installed, elevenlabs, workspace, request):
    """A hold lands while a purge deletes the conversation's files: the purge stops at the next
    file and says how many it had deleted (to the caller and in the audit log), and `hold` says
    some were gone already: the officer must not believe the call was kept whole."""

    settings, storage = _old_call_in_storage(installed, elevenlabs, request, "sqlite")
    holds: list = []
    deletes = itertools.count()
    _after_first_delete(storage, lambda key: next(deletes) == 1,  # the second file: the first's row is marked
                        lambda: holds.append(installed("hold", OLD, "--reason", "dispute 7")))
    result = _purged_at_30_days(storage, settings)
    [held] = holds
    assert held.exit_code == 0 and "is on legal hold" in held.stdout, held
    assert "1 of its files had been deleted by a purge before the hold" in words(held.stderr), held
    said = "a legal hold was placed while its files were being deleted: 2 deleted before it, the rest kept"
    assert result.stopped == [f"{OLD}: {said}"] and result.conversations == []
    assert len(list(workspace.data.rglob(f"{OLD}.*"))) == 4  # three files and the .eml kept
    assert _rows("select message from processing_audit_log where step = 'purge' and event = 'stopped'",
                 []) == [{"message": f"purge stopped: {said}"}]
    assert _rows("select count(*) as n from conversation_files where deleted_at is not null", []) == [{"n": 2}]
    assert _rows("select purged_at from conversation_processing", []) == [{"purged_at": None}]


@pytest.mark.parametrize("ledger_kind", ["sqlite", "postgresql"])
def test_a_run_started_while_a_purge_deletes_is_in_progress_elsewhere(installed, elevenlabs, workspace, request,
                                                                     ledger_kind):
    """`run --force` (or the console's retry) on a conversation a purge is deleting: the purge holds
    the conversation's claim, so the run is told it is in progress elsewhere and stores nothing,
    and the purge finishes. Without the claim the run stored the files again between the purge's
    delete of the first and its marking that file's row deleted: a file on disk that the ledger
    said was gone, which no purge would ever delete."""

    settings, storage = _old_call_in_storage(installed, elevenlabs, request, ledger_kind)
    runs: list = []
    # The first object is gone; the purge has not marked its row yet.
    _after_first_delete(storage, lambda key: True, lambda: runs.append(installed("run", "-c", OLD, "--force")))
    result = _purged_at_30_days(storage, settings)
    [run] = runs
    assert run.exit_code == 0 and "in progress elsewhere" in words(run.stdout + run.stderr), run
    assert result.objects == 6 and not result.interrupted
    on_disk = [p for p in workspace.data.rglob(f"{OLD}.*") if "outbox" not in p.parts]
    live = _rows("select object_key from conversation_files where deleted_at is null", [])
    assert on_disk == [] and live == []  # what the ledger says is what storage has: nothing
    [row] = _rows("select purged_at, claimed_by from conversation_processing", [])
    assert row["purged_at"] and row["claimed_by"] is None  # purged, and the claim released


@pytest.mark.parametrize("ledger_kind", ["sqlite", "postgresql"])
def test_a_recording_delivered_while_a_purge_deletes_is_purged_too(installed, elevenlabs, workspace, request,
                                                                   ledger_kind):
    """A post_call_audio webhook (ElevenLabs re-delivers) lands while a purge deletes the same
    conversation: the webhook stores the recording, with a file row, after the purge listed the
    files. The purge must not then mark the conversation purged, or no later purge would ever
    look at it again and the recording would be kept for ever; the next purge deletes it."""
    from fedfina_cli.pipeline.intake import accept_audio
    from fedfina_cli.pipeline.purge import purge

    settings, storage = _old_call_in_storage(installed, elevenlabs, request, ledger_kind)
    delivered: list = []
    ledger = _ledger()
    # The recording is gone; the webhook brings it back.
    _after_first_delete(storage, lambda key: key.startswith("acc123/audio/"),
                        lambda: delivered.append(accept_audio(ledger, storage, OLD, AUDIO)))
    try:
        ledger.set_account_settings("acc123", {"retention_days": 30})
        first = purge(ledger, storage, settings)
        [[key]] = delivered
        assert [p.name for p in workspace.data.rglob(f"{OLD}.mp3")] == [f"{OLD}.mp3"]
        assert _rows("select purged_at from conversation_processing", []) == [{"purged_at": None}]
        second = purge(ledger, storage, settings)
    finally:
        ledger.close()
    assert first.objects == 6 and second.objects == 1 and second.conversations[0]["files"] == [key]
    assert list(workspace.data.rglob(f"{OLD}.*")) == []  # the recording too, and none left held
    assert _rows("select object_key from conversation_files where deleted_at is null", []) == []
    assert _rows("select purged_at is not null as purged from conversation_processing", []) == [{"purged": 1}]


def test_a_postgresql_outage_stops_a_purge_and_the_next_one_finishes(installed, elevenlabs, workspace, request,
                                                                     monkeypatch):
    """PostgreSQL goes away (a fail-over) right after the purge deleted a conversation's first
    object, for longer than the ledger waits: the purge stops with the ledger's one-line reason,
    having marked nothing; once the server is back and the stopped purge's claim has run out, the
    next purge finishes, and storage and ledger agree that nothing is left."""
    from fedfina_cli.core.errors import LedgerError
    from fedfina_cli.ledger.database import PostgresSql
    from fedfina_cli.pipeline.purge import purge

    monkeypatch.setattr(PostgresSql, "reconnect_seconds", 1.0)  # the ledger gives up on a statement after 1 s
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "2")  # the stopped purge's claim, left behind, runs out soon
    settings, storage = _old_call_in_storage(installed, elevenlabs, request, "postgresql")
    postgres = request.getfixturevalue("postgres")
    back = threading.Event()

    def outage() -> None:
        postgres.stop(mode="fast")

        def come_back() -> None:
            time.sleep(4)
            postgres.start()
            back.set()

        threading.Thread(target=come_back, daemon=True).start()

    _after_first_delete(storage, lambda key: True, outage)
    ledger = _ledger()
    ledger.sql.pool.timeout = 1.0  # how long a statement waits for a connection (10 s otherwise)
    try:
        ledger.set_account_settings("acc123", {"retention_days": 30})
        with pytest.raises(LedgerError, match=r"is not answering .*check that PostgreSQL is running"):
            purge(ledger, storage, settings)
    finally:
        assert back.wait(60)
        ledger.close()
    assert _rows("select count(*) as n from conversation_files where deleted_at is not null", []) == [{"n": 0}]
    assert _rows("select purged_at from conversation_processing", []) == [{"purged_at": None}]
    time.sleep(2)  # the claim's lifetime
    again = installed("purge")
    assert again.exit_code == 0 and "1 conversation past retention: deleted 6 files" in again.stdout, again
    assert list(workspace.data.rglob(f"{OLD}.*")) == []
    assert _rows("select count(*) as n from conversation_files where deleted_at is null", []) == [{"n": 0}]
    [row] = _rows("select purged_at, claimed_by from conversation_processing", [])
    assert row["purged_at"] and row["claimed_by"] is None


def test_a_purge_that_stalled_past_its_claim_deletes_nothing_more(installed, elevenlabs, workspace):
    """The purge's claim expired while it was stopped (SIGSTOP, a paused VM), and a `run --force`
    took the conversation over and stored its files again: when the purge goes on, it deletes
    nothing and marks nothing, and the ledger still matches storage."""
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.pipeline.backends import storage_for
    from fedfina_cli.pipeline.claims import Claims
    from fedfina_cli.pipeline.purge import Purged, _purge_one

    _processed(installed, elevenlabs, (1,))
    _age([OLD], 400)
    settings = load_settings()
    ledger = _ledger()
    try:
        [row] = ledger.retention.due({}, "9999-01-01T00:00:00.000Z")
        with Claims(ledger, seconds=3600) as claims:
            token = claims.claim_to_purge(row)
            assert token is not None
            # Stalled: its heartbeat stopped renewing, and the claim ran out.
            ledger.sql.run("update conversation_processing set claim_expires_at = '2000-01-01T00:00:00.000Z'")
            rerun = installed("run", "-c", OLD, "--force")
            assert rerun.exit_code == 0 and "completed" in rerun.stdout, rerun
            result = Purged()
            _purge_one(ledger, storage_for(settings, lambda call: None), settings, row, token, result)
            assert result.interrupted
            first = ledger.retention.files_left(OLD, "acc123")[0]
            assert not ledger.retention.mark_file_deleted(first, row["processing_id"], token)
            assert ledger.retention.mark_purged(row["processing_id"], token) is None
    finally:
        ledger.close()
    assert len(list(workspace.data.rglob(f"{OLD}.*"))) == 6  # the five files and the .eml
    assert workspace.rows("select count(*) as n from conversation_files where deleted_at is null") == [{"n": 5}]
    assert workspace.rows("select purged_at from conversation_processing") == [{"purged_at": None}]


@pytest.mark.parametrize("ledger_kind", ["sqlite", "postgresql"])
def test_serve_purges_every_few_hours(serving, installed, elevenlabs, workspace, monkeypatch, request, ledger_kind):
    if ledger_kind == "postgresql":
        request.getfixturevalue("postgres")
    _processed(installed, elevenlabs, (1, 2))
    _age([OLD], 100)
    monkeypatch.setenv("FEDFINA_RETENTION_DAYS", "90")  # the default for accounts without their own
    server = serving("--purge-every", "0.001")
    wait_for(lambda: _rows("select purged_at from conversation_processing where conversation_id = ?",
                           [OLD])[0]["purged_at"] is not None, timeout=30)
    # The round logs its summary after the last row is marked, so wait for the line itself.
    wait_for(lambda: "purge: 1 conversations past retention, 6 files deleted" in server.log(), timeout=10)
    assert not list(workspace.data.rglob(f"{OLD}.*")) and list(workspace.data.rglob(f"{KEPT}.*"))


@pytest.mark.parametrize(("args", "env", "message"), [
    (("accounts", "set", "acc123", "--retention-days", "0"), {}, "--retention-days '0': expected a whole number"),
    (("accounts", "set", "acc123", "--retention-days", "a year"), {}, "--retention-days 'a year'"),
    (("purge",), {"FEDFINA_RETENTION_DAYS": "30d"}, "FEDFINA_RETENTION_DAYS='30d': expected a whole number"),
    (("hold", "conv_nothere0001"), {}, "conv_nothere0001 is not in the ledger"),
    (("hold", "conv_bulk00000001", "--reason", "x" * 501), {}, "--reason: expected one line"),
])
def test_mistakes_are_one_line_and_exit_2(installed, elevenlabs, args, env, message):
    _processed(installed, elevenlabs, (1,))
    result = installed(*args, env=env)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_keep_overrides_the_default_and_accounts_show_says_where_it_comes_from(installed, elevenlabs, workspace):
    _processed(installed, elevenlabs, (1,))
    _age([OLD], 400)
    shown = installed("accounts", "show", "acc123", "--format", "json", env={"FEDFINA_RETENTION_DAYS": "30"})
    assert {"setting": "retention_days", "value": "30", "source": "default"} in json.loads(shown.stdout)
    assert installed("accounts", "set", "acc123", "--retention-days", "keep").exit_code == 0
    assert "0 conversations" in installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"}).stdout
    assert len(list(workspace.data.rglob(f"{OLD}.*"))) == 6


def test_a_conversation_stored_again_after_a_purge_is_purged_again_in_its_time(installed, elevenlabs, workspace):
    _processed(installed, elevenlabs, (1,))
    _age([OLD], 400)
    assert installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"}).exit_code == 0
    assert installed("run", "-c", OLD, "--force").exit_code == 0  # processed again: its files are back
    row = workspace.rows("select purged_at from conversation_processing")[0]
    assert row["purged_at"] is None
    assert workspace.rows("select count(*) as n from conversation_files where deleted_at is null") == [{"n": 5}]
    time.sleep(0)  # (the new completed_at is now: not due until 30 days from now)
    assert "0 conversations" in installed("purge", env={"FEDFINA_RETENTION_DAYS": "30"}).stdout


def test_with_no_retention_anywhere_purge_says_so(installed, elevenlabs):
    _processed(installed, elevenlabs, (1,))
    _age([OLD], 4000)
    result = installed("purge")
    assert result.exit_code == 0 and "0 conversations past retention" in result.stdout
    assert "no account has a retention and FEDFINA_RETENTION_DAYS is not set: everything is kept" in result.stderr
    one = installed("purge", "--account-id", "acc123")
    assert "account acc123 has no retention" in one.stderr
    assert "no account has" not in installed("purge", env={"FEDFINA_RETENTION_DAYS": "9000"}).stderr
