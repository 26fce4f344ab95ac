"""Paid work that outlives the process: every task sent is recorded until all its images
are saved, so that a crash, a kill or a quit in the middle of a batch loses nothing.

Each task is a small JSON file in the library's ``pending/`` folder, named for the
process that sent it (``<pid>-<taskUUID>.json``): the request as sent (references by
the strings the service knows them by), the record that completes its images, and the
imageUUIDs already saved, and the service it was sent to (its endpoint URL): a task is
collected only from where it was sent, so one sent to Runware waits, safe, while the app
runs in demo mode. A task of a run given ``--out`` (a sweep's cell, a generate) also notes
that folder, so that the command-line run that collects its images copies them there too.
The next start finds the files of processes that have ended, claims each with one atomic
rename (so two starting processes never collect a task twice), and collects the rest of
its images with getResponse.

The note is a JSON object read by its fields' names, with no version: a field added later
(``service``, ``process``, ``out``) is read as absent from a note written before it, and an
earlier version reading a later note passes over the fields it does not know.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from krea_desktop.api.errors import KreaError
from krea_desktop.api.record import GenerationRecord, parse_record
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.fsutil import atomic_write, is_abandoned, owned_name, process_identity, still_running

log = logging.getLogger(__name__)

PENDING_DIR = "pending"
# How long a command gives each earlier run's task before it sends its own: one the
# service is still making is tried again by the next run, rather than holding this one's
# prompt for a whole job's time (15 minutes) per task.
COLLECT_FIRST_S = 30.0
_NAME = re.compile(r"^(\d{1,10})-([0-9a-fA-F-]{36})\.json$")
_TEMP_PREFIX = ".write-"  # a task's file being written: .write-PID-XXXX.tmp
_OLD_TEMP = re.compile(r"^\.(\d{1,10})-[0-9a-fA-F-]{36}\.json\.\w+\.tmp$")  # as earlier versions named it


def _is_temporary(name: str) -> bool:
    return name.endswith(".tmp") and (name.startswith(_TEMP_PREFIX) or _OLD_TEMP.match(name) is not None)


# The request fields kept (webhook and upload endpoints are left out: they can hold credentials).
_FIELDS = (
    "prompt",
    "ratio",
    "number_results",
    "seed",
    "creativity",
    "output_type",
    "output_format",
    "output_quality",
    "delivery_method",
    "check_content",
    "safety_mode",
    "include_cost",
    "ttl",
    "task_uuid",
)


@dataclass
class PendingTask:
    path: Path
    request: GenerationRequest  # references as the strings that were sent
    record: GenerationRecord  # how its images were made (references with their sources)
    received: set[str] = field(default_factory=set)
    service: str = ""  # the endpoint it was sent to ("" in records that did not say)
    # Finished: its file is gone and stays gone (an image saved meanwhile does not write it back).
    done: bool = False
    # The folder (absolute) the ``--out`` of the run that sent it named, None when it named
    # none: a command-line run that collects the task copies its images there as well, and
    # a sweep's contact sheet drawn again (sweep_cli.EarlierOut). The window, collecting
    # it, leaves that folder alone: the images are in the library.
    out: Path | None = None

    @property
    def task_uuid(self) -> str:
        return self.request.task_uuid


def _request_json(request: GenerationRequest, wire_refs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(request, name) for name in _FIELDS}
    out["references"] = [{"image": w["image"], "strength": w["strength"]} for w in wire_refs]
    return out


def _request_from(data: dict[str, Any]) -> GenerationRequest:
    refs = tuple(ReferenceImage(str(r["image"]), float(r["strength"])) for r in data.get("references", ()))
    request = GenerationRequest(**{name: data[name] for name in _FIELDS if name in data}, references=refs)
    request.validate()
    return request


class PendingTasks:
    def __init__(self, library_root: Path) -> None:
        self.folder = Path(library_root) / PENDING_DIR
        # received() runs where images are saved, finished() where the job ends: one at a time.
        self._lock = threading.Lock()
        # The notes the last claim could not read, set aside (their files' names): said to
        # the person, who paid for images that cannot be collected now.
        self.set_aside: list[str] = []

    def _path(self, task_uuid: str, pid: int | None = None) -> Path:
        return self.folder / f"{os.getpid() if pid is None else pid}-{task_uuid}.json"

    def _write(self, task: PendingTask) -> None:
        data = {
            "request": _request_json(task.request, [r.to_wire() for r in task.request.references]),
            "record": task.record.to_json(),
            "received": sorted(task.received),
            "service": task.service,
            # This process as it can be told from a later one with the same id.
            "process": _this_process(),
        }
        if task.out is not None:  # left out otherwise: a note without it names no folder
            data["out"] = str(task.out)
        # Owner-only: a reference's address is kept as sent, with any credentials in it. The
        # temporary file is named for this process: one a killed process left is removed.
        atomic_write(task.path, json.dumps(data).encode(), mode=0o600, prefix=owned_name(_TEMP_PREFIX))

    # -- the process that sends ----------------------------------------------------------

    def submitted(
        self,
        request: GenerationRequest,
        wire_refs: list[dict[str, Any]],
        record: GenerationRecord,
        service: str,
        out: Path | None = None,
    ) -> PendingTask | None:
        """Record a task about to be sent to ``service`` (an endpoint URL; before it is
        sent, so a crash in between is covered), and ``out``, the folder its images are
        copied into (kept absolute: the run that collects them may start elsewhere). A
        failure to write is logged, never raised: the generation itself goes on."""
        refs = tuple(ReferenceImage(str(w["image"]), float(w["strength"])) for w in wire_refs)
        sent = GenerationRequest(**{name: getattr(request, name) for name in _FIELDS}, references=refs)
        folder = Path(os.path.abspath(out)) if out is not None else None
        task = PendingTask(self._path(request.task_uuid), sent, record, service=service, out=folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write(task)
        except OSError as exc:
            log.warning("could not record task %s: %s", request.task_uuid, exc)
            return None
        return task

    def received(self, task: PendingTask, image_uuid: str) -> None:
        with self._lock:
            task.received.add(image_uuid)
            if task.done:  # cancelled while this image was being saved: nothing left to collect
                return
            try:
                self._write(task)
            except OSError as exc:
                log.warning("could not update task %s: %s", task.task_uuid, exc)

    def finished(self, task: PendingTask) -> None:
        with self._lock:
            task.done = True
            try:
                task.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not clear task %s: %s", task.task_uuid, exc)

    # -- the next start --------------------------------------------------------------------

    def claim_abandoned(self, service: str | None = None, *, collectable: bool = True) -> list[PendingTask]:
        """The tasks of processes that have ended, now this process's to collect: those
        sent to ``service`` (and those whose record does not say where), or all of them
        when ``service`` is None. The others stay for a process that uses their service.

        Not ``collectable`` (``service`` is the built-in simulator, whose tasks ended with
        the process that sent them): the tasks an earlier version sent to it are removed,
        as there is nothing to collect, and those whose record does not say where are left
        alone (they may have gone to Runware, and been paid for); none is returned. One
        that cannot be read is set aside, and said, whoever claims it."""
        tasks: list[PendingTask] = []
        self.set_aside = []
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return tasks
        for name in names:
            if _is_temporary(name):
                self._remove_if_abandoned(name)
                continue
            match = _NAME.match(name)
            if match is None:
                continue
            old = self.folder / name
            noted = _noted(old)
            if still_running(int(match.group(1)), _text(noted.get("process"))):
                continue
            sent_to = _text(noted.get("service"))
            if service is not None and sent_to not in ("", service):
                continue
            if not collectable and sent_to != service and noted:  # one that cannot be read is said all the same
                continue
            claimed = self._path(match.group(2))
            try:
                os.rename(old, claimed)  # atomic: of two processes starting, one gets it
            except FileNotFoundError:
                continue  # another process claimed it first
            except OSError as exc:
                log.warning("could not claim task %s: %s", name, exc)
                continue
            task = self._read(claimed)
            if task is not None and not collectable:
                log.info("task %s went to the built-in simulator of a run that has ended: nothing to collect", name)
                self.finished(task)
            elif task is not None:
                with contextlib.suppress(OSError):  # noted as this process's: no one else claims it now
                    self._write(task)
                tasks.append(task)
        return tasks

    def _remove_if_abandoned(self, name: str) -> None:
        """Remove a temporary file a process left when it was killed mid-write."""
        path = self.folder / name
        old = _OLD_TEMP.match(name)  # named for its task, which names its process
        abandoned = not still_running(int(old.group(1)), None) if old else is_abandoned(path)
        if abandoned:
            with contextlib.suppress(OSError):
                path.unlink()

    def _read(self, path: Path) -> PendingTask | None:
        """The task ``path`` notes; None when it cannot be read or holds a request that is
        not valid (damaged, or written by hand): it is set aside, and the others go on."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            request = _request_from(data["request"])
            received = {str(u) for u in data.get("received", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, KreaError) as exc:
            # RecursionError: JSON nested deeper than Python reads (a file written by hand)
            log.warning("set aside an unreadable pending task %s: %s", path.name, exc)
            aside = path.with_suffix(".unreadable")
            with contextlib.suppress(OSError):
                path.replace(aside)
            self.set_aside.append(aside.name)
            return None
        service = str(data.get("service") or "")
        return PendingTask(path, request, parse_record(data.get("record")), received, service, out=_folder(data))


def set_aside_notice(names: list[str], folder: Path) -> str:
    """One sentence for notes of unfinished generations that could not be read (``names``,
    kept in ``folder``): the rest of their images cannot be collected."""
    if len(names) == 1:
        return (
            "An unfinished generation noted by an earlier run could not be read, so the rest of its images "
            f"cannot be collected; the note is kept as {folder / names[0]}."
        )
    return (
        f"{len(names)} unfinished generations noted by earlier runs could not be read, so the rest of their "
        f"images cannot be collected; the notes are kept in {folder} (ending .unreadable)."
    )


@functools.cache
def _this_process() -> str | None:
    return process_identity(os.getpid())


def _noted(path: Path) -> dict[str, Any]:
    """What a task's file says (empty if it cannot be read: claiming it then sets an
    unreadable one aside)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _folder(data: dict[str, Any]) -> Path | None:
    """The ``--out`` folder a task's file names; None when it names none (written before
    notes kept it, or for a run without ``--out``) or names it in a way no run writes (not
    an absolute path, or not a name this system can write, such as a lone surrogate in a
    damaged note): the task is collected all the same, into the library."""
    value = data.get("out")
    if not isinstance(value, str) or not value or "\0" in value or not os.path.isabs(value):
        return None
    try:
        os.fsencode(value)  # a folder's name that is not valid UTF-8 is written with surrogateescape
    except UnicodeError:
        return None
    return Path(value)


def _text(value: Any) -> str:
    """A field of a task's file as text ("" when it does not say: the service it was sent
    to, or the process that sent it, were not noted before records did)."""
    return str(value) if value else ""
