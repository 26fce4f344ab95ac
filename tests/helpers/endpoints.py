"""The table of endpoint URLs that the endpoint rule, the client, the simulator and the
settings dialog are all checked against: each URL, whether its host is this computer, and
which sentence (if any) says why it cannot be the endpoint."""

from __future__ import annotations

from krea_desktop.api import endpoint

OK = None
HTTPS = endpoint.NEEDS_HTTPS
ADDRESS = endpoint.NOT_AN_ADDRESS
CREDENTIALS = endpoint.HAS_CREDENTIALS
PORT = endpoint.BAD_PORT
HOST = endpoint.BAD_HOST

# (url, is the host this computer, the problem)
ENDPOINTS: list[tuple[str, bool, str | None]] = [
    ("https://api.runware.ai/v1", False, OK),
    ("HTTPS://API.RUNWARE.AI/v1", False, OK),
    ("  https://api.runware.ai/v1  ", False, OK),
    ("https://api.runware.ai:8443/v1?x=1", False, OK),
    ("https://10.0.0.8/v1", False, OK),
    ("https://localhost/v1", True, OK),
    ("http://localhost/v1", True, OK),
    ("http://LOCALHOST:8765/v1", True, OK),
    ("http://127.0.0.1:8765/v1", True, OK),
    ("http://127.1.2.3/v1", True, OK),
    ("http://[::1]:9/v1", True, OK),
    ("http://[::ffff:127.0.0.1]:9/v1", True, OK),
    ("http://app.localhost:8765/v1", False, HTTPS),
    ("http://localhost.localdomain/v1", False, HTTPS),
    ("http://localhost./v1", False, HTTPS),
    ("http://localhost.example.com/v1", False, HTTPS),
    ("http://api.runware.ai/v1", False, HTTPS),
    ("http://192.168.1.5/v1", False, HTTPS),
    ("http://10.0.0.8/v1", False, HTTPS),
    ("http://0.0.0.0:8765/v1", False, HTTPS),
    ("http://[::]:8765/v1", False, HTTPS),
    ("http://[fe80::1]/v1", False, HTTPS),
    ("http://127.1/v1", False, HTTPS),  # shorthand IPv4 is not read as an address
    ("http://2130706433/v1", False, HTTPS),
    ("https://user:secret@api.runware.ai/v1", False, CREDENTIALS),
    ("http://user@localhost/v1", True, CREDENTIALS),
    ("https://@api.runware.ai/v1", False, CREDENTIALS),
    ("http://127.0.0.1@evil.example/v1", False, CREDENTIALS),
    ("https://api.runware.ai:99999/v1", False, PORT),
    ("https://api.runware.ai:port/v1", False, PORT),
    ("https://api.runware.ai:0/v1", False, PORT),
    ("ftp://127.0.0.1/", True, ADDRESS),
    ("file:///etc/passwd", False, ADDRESS),
    ("api.runware.ai", False, ADDRESS),
    ("api.runware.ai/v1", False, ADDRESS),
    ("//api.runware.ai/v1", False, ADDRESS),
    ("https:///v1", False, ADDRESS),
    ("https://", False, ADDRESS),
    ("", False, ADDRESS),
    ("   ", False, ADDRESS),
    ("https://api.runware .ai/v1", False, ADDRESS),
    ("https://api.runware.ai/v1\nHost: x", False, ADDRESS),
    ("http://[::1/v1", False, ADDRESS),
    # Pasted with an invisible character, or typed with an input method's full-width letters:
    # the HTTP client refuses such a host, and every request with it.
    ("https://api.runware.ai\u200b/v1", False, HOST),
    ("https://api.runware\u00ad.ai/v1", False, HOST),
    ("https://exa\u2060mple.com/v1", False, HOST),
    ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com/v1", False, HOST),
    ("https://b\u00fccher.example/v1", False, OK),  # an international name
]
