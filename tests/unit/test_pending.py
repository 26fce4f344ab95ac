"""The notes of paid work (library/pending.py): the ``--out`` folder a sweep's cell was sent with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.request import GenerationRequest
from krea_desktop.library.pending import PendingTasks

SERVICE = "http://127.0.0.1/v1"


def _dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )


def _left_by_an_ended_run(pending: PendingTasks, out: Path | None = None) -> tuple[GenerationRequest, Path]:
    """A task noted (with ``out``) as by a run that has ended: its request and its note."""
    request = GenerationRequest("a lighthouse", seed=3, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt="a lighthouse"), SERVICE, out)
    assert task is not None
    return request, task.path.rename(task.path.with_name(f"{_dead_pid()}-{request.task_uuid}.json"))


def test_a_cells_out_folder_is_noted_absolute_and_read_back_when_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pending = PendingTasks(tmp_path / "data")
    request, note = _left_by_an_ended_run(pending, Path("picked"))  # as typed: relative to where the run was
    assert json.loads(note.read_text())["out"] == str(tmp_path / "picked")
    monkeypatch.chdir(tmp_path / "data")  # the next run starts elsewhere
    (claimed,) = pending.claim_abandoned(SERVICE)
    assert claimed.task_uuid == request.task_uuid and claimed.out == tmp_path / "picked"
    assert claimed.path.name.startswith(f"{os.getpid()}-")
    # Claimed, the note is written again as this process's: the folder stays in it, and a
    # received image does not drop it either.
    pending.received(claimed, "img-1")
    assert json.loads(claimed.path.read_text())["out"] == str(tmp_path / "picked")


def test_a_note_written_before_notes_kept_the_out_folder_is_collected_into_the_library(tmp_path: Path) -> None:
    pending = PendingTasks(tmp_path)
    request, note = _left_by_an_ended_run(pending)
    noted = json.loads(note.read_text())
    assert "out" not in noted  # a run without --out names none, as notes did before the field
    # An earlier version's note, field for field.
    note.write_text(json.dumps({k: noted[k] for k in ("request", "record", "received", "service", "process")}))
    (claimed,) = pending.claim_abandoned(SERVICE)
    assert claimed.task_uuid == request.task_uuid and claimed.out is None and pending.set_aside == []


# "/x/\ud800": a lone surrogate, in a damaged note; copying into it raised UnicodeEncodeError,
# which ended every later run in a traceback before it sent anything.
@pytest.mark.parametrize("out", [None, "", 5, ["/tmp"], "relative/folder", "/a\0b", "/x/\ud800"])
def test_an_out_folder_no_run_writes_is_passed_over_and_the_task_collected(tmp_path: Path, out: Any) -> None:
    pending = PendingTasks(tmp_path)
    request, note = _left_by_an_ended_run(pending, tmp_path / "picked")
    noted = json.loads(note.read_text())
    noted["out"] = out
    note.write_text(json.dumps(noted))
    (claimed,) = pending.claim_abandoned(SERVICE)
    assert claimed.task_uuid == request.task_uuid and claimed.out is None and pending.set_aside == []


@pytest.mark.skipif(sys.platform == "win32", reason="names of bytes that are not UTF-8 are a POSIX thing")
def test_an_out_folder_whose_name_is_not_utf8_is_kept(tmp_path: Path) -> None:
    pending = PendingTasks(tmp_path)
    folder = Path(os.fsdecode(b"/pictures/caf\xe9"))  # Latin-1, as an old disk names it
    request, _note = _left_by_an_ended_run(pending, folder)
    (claimed,) = pending.claim_abandoned(SERVICE)
    assert claimed.task_uuid == request.task_uuid and claimed.out == folder
