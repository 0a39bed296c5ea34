"""`fedfina demo`, run as the installed console script, as a new user would."""

from pathlib import Path

from .conftest import HINDI_ID, pdf_text, read_eml


def test_demo_runs_offline_and_prints_where_everything_is(installed, workspace, tmp_path):
    # Configured services must not be used by the demo: point them at nothing.
    env = {"OPENAI_API_KEY": "sk-demo-must-not-be-used", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9",
           "SMTP_FROM_EMAIL": "x@example.com", "MINIO_ENDPOINT": "127.0.0.1:9",
           "MINIO_ACCESS_KEY": "k", "MINIO_SECRET_KEY": "s"}
    result = installed("demo", "--dir", tmp_path / "d", env=env)
    assert result.exit_code == 0, result.stderr
    demo = tmp_path / "d"
    pdf = demo / "acc123" / "reports" / f"{HINDI_ID}.pdf"
    eml = demo / "outbox" / "acc123" / f"{HINDI_ID}.eml"
    assert f"PDF report: {pdf}" in result.stdout
    assert f"Email:      {eml}" in result.stdout
    assert f"Ledger:     {demo / 'fedfina.db'}" in result.stdout
    assert "storage=local(" in result.output and "summarizer=offline" in result.output

    text = pdf_text(pdf)
    assert HINDI_ID in text and "₹2,00,000" in text and "Ramesh Kumar" in text
    message = read_eml(eml)
    assert message["To"] == "loans.officer@example.com"
    attachment, = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf.read_bytes()
    assert (demo / "fedfina.db").exists()
    assert not Path("fedfina.db").exists()  # the demo keeps to its own folder


def test_demo_twice_redoes_the_whole_job(installed, tmp_path):
    assert installed("demo", "--dir", tmp_path / "d").exit_code == 0
    second = installed("demo", "--dir", tmp_path / "d")
    assert second.exit_code == 0
    assert "ran fetch,summarize,report,email" in second.stdout


def test_help_lists_every_command_with_examples(installed):
    result = installed("--help")
    assert result.exit_code == 0
    for command in ("run", "fetch", "summarize", "report", "email", "demo"):
        assert command in result.stdout
    run_help = installed("run", "--help")
    assert "--conversation-id" in run_help.stdout and "fedfina run -c conv_" in run_help.stdout
