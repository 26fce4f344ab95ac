"""The command line's lines on streams that cannot take every character."""

from __future__ import annotations

import io
import os
import sys

import pytest

from krea_desktop import console


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_a_path_the_stream_cannot_encode_is_written_as_its_bytes(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder named in Latin-1 on a UTF-8 system ("caf\\xe9"), or "café" on an ASCII
    terminal: the line raised UnicodeEncodeError, and a generate that had saved its first
    image stopped there, the rest of its batch left for the next run. It is written as
    the bytes of the name, which a script reading the path can open."""
    monkeypatch.setattr(console, "_unwritten", [])
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding, line_buffering=True)
    monkeypatch.setattr(sys, "stdout", out)
    name = os.fsdecode(b"/pics/caf\xe9/") + "caf\u00e9.png"
    console.line(name)
    console.line("next.png")
    assert raw.getvalue() == os.fsencode(name) + b"\nnext.png\n"
    assert console.output_problem() is None


def test_lines_for_a_closed_stream_go_nowhere_and_a_closed_output_is_remembered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(console, "_unwritten", [])
    monkeypatch.setattr(sys, "stderr", None)
    console.line("Generating…", err=True)  # not into stdout, where print() puts it
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(sys, "stdout", None)
    console.line("/pics/a.png")
    assert console._unwritten and "closed" in str(console._unwritten[0])
