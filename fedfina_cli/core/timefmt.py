"""Small formatting helpers for times and durations shown to people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utc_now() -> str:
    """ISO-8601 UTC, the ledger's time format."""
    return utc_text(datetime.now(UTC))


def utc_text(moment: datetime) -> str:
    """A moment in the ledger's format: 2026-11-25T10:20:34.123Z (text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_in(seconds: float) -> str:
    """The ledger's time ``seconds`` from now (negative: ago): a claim's expiry, a retry's
    earliest time, a cutoff."""
    return utc_text(datetime.now(UTC) + timedelta(seconds=seconds))


def clock(seconds: int) -> str:
    """Offset in a call as mm:ss (h:mm:ss past an hour)."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def duration(seconds: int) -> str:
    """A call length for prose: '1 min 11 s', '24 s'."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    if minutes and secs:
        return f"{minutes} min {secs} s"
    return f"{minutes} min" if minutes else f"{secs} s"


def zone(name: str) -> ZoneInfo:
    """The zone; ValueError for a name that is none (never silently UTC: times would be wrong)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone name like Asia/Kolkata") from None


def local_time(unix_secs: int, zone_name: str) -> str:
    """'18 Nov 2025, 13:12 Asia/Kolkata (UTC+05:30)': the zone always named."""
    tz = zone(zone_name)
    moment = datetime.fromtimestamp(unix_secs, tz=UTC).astimezone(tz)
    offset = f"{moment:%z}"  # "+0530"
    return f"{moment:%d %b %Y, %H:%M} {tz.key} (UTC{offset[:3]}:{offset[3:]})"


def local_date(unix_secs: int, zone_name: str) -> tuple[str, str]:
    """The call's date in the zone, for people and for file names: ('18 Nov 2025', '2025-11-18')."""
    moment = datetime.fromtimestamp(unix_secs, tz=UTC).astimezone(zone(zone_name))
    return f"{moment:%d %b %Y}", f"{moment:%Y-%m-%d}"


def local_time_iso(iso: str, zone_name: str) -> str | None:
    moment = parse_utc(iso)
    return None if moment is None else local_time(int(moment.timestamp()), zone_name)


def parse_utc(text: str) -> datetime | None:
    """A time in the ledger's format (None: not one)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def seconds_between(start: str, end: str) -> float | None:
    """Seconds from one ledger time to another (None when either is not a time)."""
    first, last = parse_utc(start), parse_utc(end)
    return None if first is None or last is None else (last - first).total_seconds()
