"""The one endpoint rule (krea_desktop.api.endpoint), and everyone who asks it agreeing.

The table is tests/helpers/endpoints.py; the settings dialog's side of the agreement is
checked with the same table in tests/ui/test_settings_dialog.py.
"""

from __future__ import annotations

import asyncio

import pytest

from krea_desktop import backend, config
from krea_desktop.api import client as client_module
from krea_desktop.api import endpoint
from krea_desktop.api import errors as E
from krea_desktop.api.client import RunwareClient
from krea_desktop.simulator.service import SimulatorService, TaskFailure
from krea_desktop.wording import within
from tests.helpers.endpoints import ADDRESS, CREDENTIALS, ENDPOINTS, HOST, HTTPS, PORT


@pytest.mark.parametrize(("url", "loopback", "problem"), ENDPOINTS)
def test_the_rule(url: str, loopback: bool, problem: str | None) -> None:
    assert endpoint.endpoint_problem(url) == problem
    assert endpoint.is_loopback(url) is loopback
    if problem is None:
        assert endpoint.check_endpoint(url) == url.strip()
    else:
        with pytest.raises(E.ValidationError) as caught:
            endpoint.check_endpoint(url)
        assert str(caught.value) == problem
        assert caught.value.parameter == "endpoint"


def test_every_problem_is_one_sentence_that_says_what_to_do() -> None:
    for problem in (HTTPS, ADDRESS, CREDENTIALS, PORT, HOST):
        assert problem.endswith(".") and problem.count(". ") == 0
    assert "HTTPS" in HTTPS and "https://" in HTTPS and "localhost" in HTTPS
    assert "https://api.runware.ai/v1" in ADDRESS


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        (" [::1] ", True),
        ("::ffff:127.0.0.1", True),
        ("app.localhost", False),
        ("localhost.", False),
        ("localhost:8765", False),  # a host and port is neither a URL nor a host
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.0.1", False),
        ("example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback_takes_a_bare_host(host: str | None, loopback: bool) -> None:
    assert endpoint.is_loopback(host) is loopback


@pytest.mark.parametrize(("url", "loopback", "problem"), ENDPOINTS)
def test_the_client_accepts_exactly_what_the_rule_accepts(url: str, loopback: bool, problem: str | None) -> None:
    if problem is None:
        client = RunwareClient("rw-test-key", base_url=url)
        try:
            assert client.base_url == url.strip()
        finally:
            asyncio.run(client.aclose())
    else:
        with pytest.raises(E.ValidationError) as caught:
            RunwareClient("rw-test-key", base_url=url)
        assert str(caught.value) == problem
    # the names the client has always exported are the rule itself
    assert client_module.check_endpoint is endpoint.check_endpoint
    assert client_module.is_loopback is endpoint.is_loopback


@pytest.mark.parametrize(("url", "loopback", "problem"), [row for row in ENDPOINTS if not row[1]])
def test_the_simulator_fetches_only_from_what_the_rule_calls_loopback(
    url: str, loopback: bool, problem: str | None
) -> None:
    """The simulator fetches reference images from this computer only; a host the rule does
    not call loopback is refused before any connection is tried."""
    service = SimulatorService()
    with pytest.raises(TaskFailure) as caught:
        asyncio.run(service._fetch(url.strip(), "inputs.referenceImages", "invalidReferenceImage"))
    assert "only fetches images from loopback hosts" in str(caught.value.message)


@pytest.mark.parametrize(
    "url", [row[0] for row in ENDPOINTS if row[1] and row[0].startswith("http") and "@" not in row[0]]
)
def test_the_simulator_tries_to_fetch_from_what_the_rule_calls_loopback(url: str) -> None:
    """A loopback URL passes the simulator's guard: with nothing listening on the port, the
    fetch itself fails, and says so (not that the host was refused)."""
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = url.replace(":8765", "").replace(":9", "")
    host_end = target.index("/", target.index("//") + 2)
    target = f"{target[:host_end]}:{port}{target[host_end:]}"
    service = SimulatorService()
    with pytest.raises(TaskFailure) as caught:
        asyncio.run(service._fetch(target.strip(), "inputs.referenceImages", "invalidReferenceImage"))
    assert "loopback" not in str(caught.value.message)


def test_the_command_line_and_the_settings_use_the_same_rule() -> None:
    for url, _loopback, problem in ENDPOINTS:
        env = {"RUNWARE_API_URL": url}
        if not url.strip():
            assert backend.api_url_from_env(env) == config.API_ENDPOINT.default  # blank is unset
        elif problem is None:
            assert backend.api_url_from_env(env) == url.strip()
            assert config.accept(config.API_ENDPOINT, url) == url.strip()
        else:
            with pytest.raises(E.ValidationError) as caught:
                backend.api_url_from_env(env)
            # the same sentence, inside the one that names the variable
            assert "RUNWARE_API_URL" in str(caught.value) and within(problem) in str(caught.value)
            # a stored endpoint that breaks the rule is not used: the default is
            assert config.accept(config.API_ENDPOINT, url) is None
            assert config.resolve(config.API_ENDPOINT, env={}, stored=url) == config.API_ENDPOINT.default
