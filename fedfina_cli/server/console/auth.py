"""Who is asking (SPEC "The console"): a session started from an emailed link, or a bank's single
sign-on proxy vouching for the address; CSRF tokens; the client a request counts against.

Tokens: a link's and a session's are 32 random bytes; the ledger keeps their SHA-256 only. A
signed-in person's CSRF token is an HMAC of their session token (nothing more to store, the same
on every host); before sign-in, and behind the proxy, forms carry the value of a random cookie
of their own (double submit). Every POST is also refused when its Origin is another site's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date
from ipaddress import ip_address
from urllib.parse import urlsplit

from fastapi import Request

from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import InvalidValue
from fedfina_cli.core.validation import email_address
from fedfina_cli.ledger.console import ConsoleStore

SESSION_COOKIE = "fedfina_session"
FORM_COOKIE = "fedfina_form"
LINK_SECONDS = 15 * 60
# Sign-in requests in any 15 minutes: per address (any address, known or not: the limit says
# nothing about who may sign in) and per client.
LIMIT_WINDOW_SECONDS = 15 * 60
PER_ADDRESS = 5
PER_CLIENT = 20


@dataclass(frozen=True)
class Viewer:
    email: str  # lowercase
    is_admin: bool
    via: str  # "link" | "proxy"
    csrf: str
    session_sha256: str | None = None  # None behind the proxy

    @property
    def only(self) -> str | None:
        """Whose conversations this person sees: their own (an officer), or every one (None: an admin)."""
        return None if self.is_admin else self.email


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def csrf_of(secret: str) -> str:
    return hmac.new(secret.encode("utf-8", "replace"), b"fedfina console csrf", hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode("utf-8", "replace"), expected.encode("utf-8"))


def normal_address(text: str) -> str | None:
    """An address as the console compares it (lowercase), or None when it is not one address."""
    text = text.strip()
    try:
        return email_address(text).lower()
    except InvalidValue:
        return None


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


def _trusted(settings: Settings, peer: str) -> bool:
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in settings.console_trusted_proxies)


def client_of(request: Request, settings: Settings) -> str:
    """The address a request counts against: the connection's, or, from a trusted proxy, the
    last address that proxy added to X-Forwarded-For (the rest could be anyone's words)."""
    peer = _peer(request)
    if _trusted(settings, peer):
        forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return peer


def proxy_address(request: Request, settings: Settings) -> str | None:
    """The address the single sign-on proxy names, only when the request comes from it."""
    if not settings.console_email_header or not _trusted(settings, _peer(request)):
        return None
    named = request.headers.get(settings.console_email_header)
    return normal_address(named) if named else None


def viewer_of(request: Request, settings: Settings, store: ConsoleStore) -> Viewer | None:
    """The signed-in person, or None (blocking: it may read the ledger)."""
    admins = settings.console_admins
    named = proxy_address(request, settings)
    if named is not None:
        _audit_proxy_sign_in(store, named, client_of(request, settings), settings.console_email_header or "")
        form_secret = request.cookies.get(FORM_COOKIE) or ""
        return Viewer(named, named in admins, "proxy", csrf_of(form_secret) if form_secret else "")
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    hashed = digest(token)
    session = store.session(hashed)
    if session is None:
        return None
    # Admin by today's FEDFINA_CONSOLE_ADMINS: one removed from the list is an officer at once.
    email = str(session["email"])
    return Viewer(email, email in admins, "link", csrf_of(token), hashed)


# (address, day) signed in by the proxy and audited by this process: every request of theirs is a
# sign-in, so the audit log gets one line a person a day from each host, not one a request.
_proxy_days: set[tuple[str, str]] = set()


def _audit_proxy_sign_in(store: ConsoleStore, email: str, client: str, header: str) -> None:
    day = date.today().isoformat()
    if (email, day) in _proxy_days:
        return
    store.audit("signin", f"{email} signed in by single sign-on ({header} from the trusted proxy), from {client}")
    if len(_proxy_days) > 10_000:
        _proxy_days.clear()
    _proxy_days.add((email, day))


def secure_cookies(settings: Settings) -> bool:
    return (settings.public_url or "").startswith("https://")


def origin_allowed(request: Request, settings: Settings) -> bool:
    """A POST from the console's own pages: its Origin (when sent) is FEDFINA_PUBLIC_URL's."""
    origin = request.headers.get("origin")
    if origin is None or settings.public_url is None:
        return True
    ours = urlsplit(settings.public_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
