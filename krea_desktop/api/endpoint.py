"""The one rule for where the API key may be sent: the endpoint check.

The key travels with every request, so an endpoint is accepted when:

- it is an ``https://`` or ``http://`` address with a host (surrounding blanks ignored);
- it names no user or password (``https://user:secret@host/`` is refused: credentials in
  an address end up in logs and history, and the key is sent in a header anyway);
- its port, when given, is a number from 1 to 65535;
- its host name is one the HTTP client can read (no invisible or full-width characters);
- it uses ``https://``, or ``http://`` to a loopback host only.

A loopback host is ``localhost`` (exactly, any letter case) or an IP literal in the
loopback range: ``127.0.0.0/8``, ``[::1]``, and IPv4 loopback written as IPv6
(``[::ffff:127.0.0.1]``). Other names, ``*.localhost``, ``localhost.localdomain`` and
``localhost.`` included, are refused over plain http: whether they reach this computer
depends on the resolver (``/etc/hosts``, DNS), and a name that resolves elsewhere would
carry the key in the clear.

The window's settings dialog, the client and the simulator all ask these functions.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from krea_desktop.api import errors as E
from krea_desktop.api import spec

LOOPBACK_NAMES = frozenset({"localhost"})

NOT_AN_ADDRESS = f"The endpoint must be a web address such as {spec.DEFAULT_API_URL}."
HAS_CREDENTIALS = "The endpoint must not contain a user name or password; the API key is sent separately."
BAD_PORT = "The endpoint's port must be a number from 1 to 65535."
BAD_HOST = (
    "The endpoint's host name holds a character a web address cannot have "
    "(an invisible one, perhaps, copied with it); type the address again."
)
NEEDS_HTTPS = (
    "The endpoint must use HTTPS (https://), because the API key travels with every request; "
    "plain http:// is allowed only to this computer (localhost, 127.0.0.1 or [::1])."
)


def _host(url_or_host: str) -> str | None:
    text = url_or_host.strip()
    if "://" in text:
        try:
            return urlsplit(text).hostname  # lower-cased, IPv6 brackets removed
        except ValueError:  # e.g. an unbalanced "[" in the address
            return None
    text = text.lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text or None


def is_loopback(url_or_host: str | None) -> bool:
    """Whether an address (``scheme://host...``) or a bare host (a name, an IP, or an IPv6
    literal in brackets) is this computer, by the rule in the module's docstring."""
    if not url_or_host:
        return False
    host = _host(url_or_host)
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped is not None and mapped.is_loopback


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be the API endpoint, as one sentence, or None when it can."""
    text = url.strip() if isinstance(url, str) else ""
    if not text or any(ch.isspace() or ord(ch) < 32 for ch in text):
        return NOT_AN_ADDRESS
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return NOT_AN_ADDRESS
    if parts.scheme not in ("https", "http") or not host:
        return NOT_AN_ADDRESS
    if "@" in parts.netloc:
        return HAS_CREDENTIALS
    if not host.isascii() and not _host_name_readable(text):
        return BAD_HOST
    try:
        port = parts.port
    except ValueError:
        return BAD_PORT
    if port == 0:
        return BAD_PORT
    if parts.scheme == "http" and not is_loopback(host):
        return NEEDS_HTTPS
    return None


def _host_name_readable(url: str) -> bool:
    """Whether the HTTP client can read ``url``'s host name, one beyond ASCII (an
    international name; or a zero-width space, a soft hyphen or full-width letters, which
    it refuses, and every request with it)."""
    import httpx  # only for such a name

    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def check_endpoint(url: str) -> str:
    """``url`` without surrounding blanks; raises ``ValidationError`` with
    :func:`endpoint_problem`'s sentence when it cannot be the endpoint."""
    problem = endpoint_problem(url)
    if problem:
        raise E.ValidationError(problem, parameter="endpoint")
    return url.strip()


__all__ = ["check_endpoint", "endpoint_problem", "is_loopback"]
