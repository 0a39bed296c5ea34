"""Choosing the backends from configuration (SPEC "Configuration").

Unset service variables mean the embedded backend: local storage, the outbox,
the offline summariser. Heavy client libraries are imported only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedfina_cli.core.api_calls import Metrics
from fedfina_cli.core.config import Settings
from fedfina_cli.mail.deliver import Mailer, OutboxMailer
from fedfina_cli.services.retry import RetryPolicy
from fedfina_cli.services.storage import Storage
from fedfina_cli.services.summarizers import Summarizer

if TYPE_CHECKING:  # requests is imported only when the API is configured
    from fedfina_cli.services.elevenlabs import ElevenLabsClient


@dataclass
class Backends:
    storage: Storage
    mailer: Mailer
    summarizer: Summarizer
    elevenlabs: ElevenLabsClient | None  # the conversations' source; None: no ELEVENLABS_API_KEY
    description: str


def build_backends(settings: Settings, metrics: Metrics, pool_size: int = 16) -> tuple[Backends, list[str]]:
    """The backends for these settings, and warnings to show the user."""
    warnings = []
    retry = RetryPolicy(attempts=settings.retry_attempts, base_seconds=settings.retry_base_seconds)
    # Two uploads per conversation can be in flight: the audio, still streaming
    # while the summary is stored (pipeline._fetch_alongside).
    storage = storage_for(settings, metrics, 2 * pool_size)
    mailer = _mailer(settings, metrics, retry)
    summarizer: Summarizer
    key = settings.azure_openai_api_key if settings.azure_openai_endpoint else settings.openai_api_key
    if key:
        from fedfina_cli.services.summarizers.openai_summarizer import OpenAISummarizer

        summarizer = OpenAISummarizer(key, settings.openai_model,
                                      base_url=settings.openai_base_url, prompt_file=settings.prompt_file,
                                      metrics=metrics, chunk_chars=settings.summary_chunk_chars,
                                      timeout=settings.http_timeout, retry=retry,
                                      response_format=settings.openai_response_format,
                                      azure_endpoint=settings.azure_openai_endpoint,
                                      api_version=settings.openai_api_version)
    else:
        from fedfina_cli.services.summarizers.offline import OfflineSummarizer

        summarizer = OfflineSummarizer()
        warnings.append("OPENAI_API_KEY is not set: using the offline summariser "
                        "(reports will say it is not an AI summary)")
    source = None
    if settings.elevenlabs_api_key:
        from fedfina_cli.services.elevenlabs import ElevenLabsClient

        source = ElevenLabsClient(settings.elevenlabs_api_key, settings.elevenlabs_base_url, metrics,
                                  retry=retry, timeout=settings.http_timeout, pool_size=pool_size,
                                  redact=settings.redact)
    description = (f"storage={storage.description} email={mailer.description} "
                   f"summarizer={summarizer.description}")
    return Backends(storage=storage, mailer=mailer, summarizer=summarizer, elevenlabs=source,
                    description=description), warnings


def storage_for(settings: Settings, metrics: Metrics, pool_size: int = 4) -> Storage:
    if settings.minio_endpoint:
        from fedfina_cli.services.storage.minio import MinioStorage

        # load_settings refuses an endpoint without both keys.
        assert settings.minio_access_key is not None and settings.minio_secret_key is not None

        return MinioStorage(settings.minio_endpoint, settings.minio_access_key, settings.minio_secret_key,
                            settings.minio_bucket, secure=settings.minio_secure,
                            region=settings.minio_region, sse=settings.minio_sse, metrics=metrics,
                            timeout=settings.http_timeout, pool_size=pool_size,
                            attempts=settings.retry_attempts)
    from fedfina_cli.services.storage.local import LocalStorage

    return LocalStorage(settings.data_dir)


def _mailer(settings: Settings, metrics: Metrics, retry: RetryPolicy) -> Mailer:
    if settings.smtp_host:
        from fedfina_cli.mail.deliver import SmtpMailer

        assert settings.smtp_from_email is not None  # load_settings requires it with SMTP_HOST

        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.smtp_from_email,
                          security=settings.smtp_security_mode, username=settings.smtp_username,
                          password=settings.smtp_password, metrics=metrics, retry=retry,
                          timeout=settings.http_timeout)
    return OutboxMailer(settings.outbox_dir, settings.smtp_from_email)
