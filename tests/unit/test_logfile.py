"""The log file: lines kept when the full file cannot be set aside, and no line per request."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from krea_desktop import logfile


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_lines_go_on_while_the_full_file_cannot_be_set_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfile, "MAX_BYTES", 300)
    handler = logfile.LogFile(tmp_path / logfile.NAME, maxBytes=300, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("test.logfile.rename")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    held = PermissionError(13, "The process cannot access the file because it is being used by another process")

    def refuse(source: str, dest: str) -> None:
        raise held

    try:
        monkeypatch.setattr(handler, "rotate", refuse)
        for i in range(40):  # 40 lines of 20 bytes: well past 300 bytes, so many tries to set it aside
            log.info("line %04d ----------", i)
        assert lines_of(tmp_path / logfile.NAME) == [f"line {i:04d} ----------" for i in range(40)]
        assert not (tmp_path / (logfile.NAME + ".1")).exists()

        # Once the file can be set aside again, it is, at the next try, and the size goes back.
        monkeypatch.undo()
        monkeypatch.setattr(logfile, "MAX_BYTES", 300)
        for i in range(40, 80):
            log.info("line %04d ----------", i)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert handler.maxBytes == 300
    kept = lines_of(tmp_path / (logfile.NAME + ".2")) + lines_of(tmp_path / (logfile.NAME + ".1"))
    kept += lines_of(tmp_path / logfile.NAME)
    assert kept[-1] == "line 0079 ----------"
    assert len(lines_of(tmp_path / logfile.NAME)) < 300 // 20


def test_the_log_has_no_line_per_request_but_keeps_warnings(tmp_path: Path) -> None:
    httpx_log = logging.getLogger("httpx")
    earlier = httpx_log.level  # a window opened earlier in this process has set it
    httpx_log.setLevel(logging.NOTSET)  # as in a fresh process
    root = logging.getLogger()
    opened = [h for h in root.handlers if isinstance(h, logfile.LogFile)]  # that window's log, too
    for handler in opened:
        root.removeHandler(handler)
    try:
        with logfile.logging_to(tmp_path):
            logging.getLogger("krea_desktop.test").info("the batch was saved")
            httpx_log.info('HTTP Request: POST http://127.0.0.1/v1 "HTTP/1.1 200 OK"')
            httpx_log.warning("a warning of the HTTP library")
        # The process's logging is as it was before the command.
        assert httpx_log.level == logging.NOTSET
    finally:
        httpx_log.setLevel(earlier)
        for handler in opened:
            root.addHandler(handler)
    text = (tmp_path / logfile.NAME).read_text(encoding="utf-8")
    assert "the batch was saved" in text
    assert "a warning of the HTTP library" in text
    assert "HTTP Request" not in text
    assert [h for h in root.handlers if isinstance(h, logfile.LogFile)] == opened
