"""Paid work outlives the process: a task whose sender died is collected, once, by the
next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from krea_desktop.api.client import RetryPolicy
from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.backend import DEMO_SERVICE
from krea_desktop.fsutil import process_identity
from krea_desktop.library.pending import PendingTasks, set_aside_notice
from krea_desktop.library.store import Library
from tests.helpers.sim import free_port, simulator_process

KEY = "sk-paid-work"


def _dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )


def _interrupted_at(args: list[str], env: dict[str, str], at: Callable[[str], bool]) -> tuple[int, str]:
    """Run ``krea-desktop ARGS``, press Ctrl+C (SIGINT) once it writes a line ``at`` takes
    to its error stream; its exit code and what it wrote there."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    while not at(line := proc.stderr.readline()):
        assert line, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _killed_after(args: list[str], env: dict[str, str], lines: int = 1) -> list[str]:
    """Run ``krea-desktop ARGS`` and kill it (SIGKILL) once it has printed ``lines`` saved
    images; the lines it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    got: list[str] = []
    killer = threading.Timer(60, proc.kill)
    killer.start()
    try:
        while len(got) < lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            got.append(line.strip())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        killer.cancel()
    return got


def test_only_tasks_of_ended_processes_are_claimed_and_only_once(tmp_path: Path) -> None:
    pending = PendingTasks(tmp_path)
    request = GenerationRequest("a lighthouse", number_results=3, delivery_method="async")
    wire = [{"image": "8f1d2c3b-aaaa-4bbb-8ccc-000000000001", "strength": -0.5}]
    mine = pending.submitted(request, wire, GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
    assert mine is not None
    pending.received(mine, "img-1")
    assert pending.claim_abandoned() == []  # this process is alive: its task is its own
    dead = _dead_pid()
    mine.path.rename(mine.path.with_name(f"{dead}-{request.task_uuid}.json"))
    (claimed,) = pending.claim_abandoned()
    assert claimed.task_uuid == request.task_uuid and claimed.received == {"img-1"}
    assert claimed.request.references == (ReferenceImage("8f1d2c3b-aaaa-4bbb-8ccc-000000000001", -0.5),)
    assert claimed.record.prompt == "a lighthouse" and claimed.path.name.startswith(f"{os.getpid()}-")
    assert pending.claim_abandoned() == []  # claimed now: not again
    pending.finished(claimed)
    assert not list(pending.folder.iterdir())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="a process's start is read from /proc")
def test_a_task_whose_process_id_another_process_has_now_is_claimed(tmp_path: Path) -> None:
    """A task of a process that ended waited for ever once its id was given to another
    process: in a container the app often starts with the same id each time."""
    pending = PendingTasks(tmp_path)
    request = GenerationRequest("a lighthouse", number_results=2, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
    assert task is not None
    assert pending.claim_abandoned() == []  # this process's own, running
    noted = json.loads(task.path.read_text())
    assert noted["process"]
    noted["process"] = noted["process"] + "0"  # the same id, an earlier process (a restart in a container)
    task.path.write_text(json.dumps(noted))
    (claimed,) = pending.claim_abandoned()
    assert claimed.task_uuid == request.task_uuid
    # Another process alive under the id noted: its task, whoever it is, if the start matches.
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            for start, claimable in ((noted["process"], True), (None, False)):
                request = GenerationRequest("a harbour", number_results=2, delivery_method="async")
                theirs = pending.submitted(request, [], GenerationRecord(prompt="a harbour"), "http://127.0.0.1/v1")
                assert theirs is not None
                data = json.loads(theirs.path.read_text())
                data["process"] = start if start is not None else process_identity(other.pid)
                moved = theirs.path.with_name(f"{other.pid}-{request.task_uuid}.json")
                moved.write_text(json.dumps(data))
                theirs.path.unlink()
                assert [t.task_uuid for t in pending.claim_abandoned()] == ([request.task_uuid] if claimable else [])
        finally:
            other.kill()


def test_a_task_is_claimed_only_by_a_process_using_the_service_it_was_sent_to(tmp_path: Path) -> None:
    pending = PendingTasks(tmp_path)
    dead = _dead_pid()
    sent: dict[str, str] = {}
    for service in ("https://api.runware.ai/v1", "http://127.0.0.1/v1", ""):
        request = GenerationRequest(f"sent to {service or 'somewhere'}", number_results=2, delivery_method="async")
        task = pending.submitted(request, [], GenerationRecord(prompt=request.prompt), service)
        assert task is not None
        task.path.rename(task.path.with_name(f"{dead}-{request.task_uuid}.json"))
        sent[request.task_uuid] = service
    # A record that does not say where (written before records did) goes to whoever looks.
    (demo, unsaid) = sorted(pending.claim_abandoned("http://127.0.0.1/v1"), key=lambda t: t.service, reverse=True)
    assert demo.service == "http://127.0.0.1/v1" and sent[demo.task_uuid] == demo.service
    assert unsaid.service == "" and sent[unsaid.task_uuid] == ""
    (paid,) = list(pending.folder.glob(f"{dead}-*.json"))  # waits, under its sender's name
    assert sent[paid.stem.split("-", 1)[1]] == "https://api.runware.ai/v1"
    (claimed,) = pending.claim_abandoned("https://api.runware.ai/v1")
    assert claimed.service == "https://api.runware.ai/v1" and claimed.received == set()
    assert pending.claim_abandoned() == []


@pytest.mark.parametrize(
    "damage",
    [
        {"ratio": "5:7"},  # a request no longer valid (written by hand, or by another version)
        {"number_results": "2"},
        {"references": [{"image": "x", "strength": 9}]},
        {"references": "not a list"},
    ],
)
def test_a_task_whose_request_is_not_valid_is_set_aside_and_the_others_are_collected(
    tmp_path: Path, damage: dict[str, object]
) -> None:
    pending = PendingTasks(tmp_path)
    dead = _dead_pid()
    names = []
    for prompt in ("damaged", "sound"):
        request = GenerationRequest(prompt, number_results=2, delivery_method="async")
        task = pending.submitted(request, [], GenerationRecord(prompt=prompt), "")
        assert task is not None
        moved = task.path.rename(task.path.with_name(f"{dead}-{request.task_uuid}.json"))
        names.append(moved)
    noted = json.loads(names[0].read_text())
    noted["request"].update(damage)
    names[0].write_text(json.dumps(noted))
    (claimed,) = pending.claim_abandoned()
    assert claimed.record.prompt == "sound"
    assert [p.suffix for p in pending.folder.iterdir() if p.stem.endswith(names[0].stem.split("-", 1)[1])] == [
        ".unreadable"
    ]
    (aside,) = pending.set_aside  # said to the person (below); claimed, so under this process's id
    assert aside.endswith(f"{names[0].stem.split('-', 1)[1]}.unreadable")
    assert pending.claim_abandoned() == []  # set aside: not read again at every start
    assert pending.set_aside == []


def test_an_unreadable_note_of_paid_work_is_said_in_one_sentence(tmp_path: Path, env: dict[str, str]) -> None:
    """A note cut in half (a disk that lost its end, an editor): the images it would have
    collected are paid for, so the next run says they cannot be, and where the note is."""
    pending = PendingTasks(tmp_path / "data")
    request = GenerationRequest("eight paid kites", number_results=8, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt=request.prompt), "")
    assert task is not None
    text = task.path.read_text()
    noted = task.path.with_name(f"{_dead_pid()}-{request.task_uuid}.json")
    noted.write_text(text[: len(text) // 2])
    task.path.unlink()
    command = [sys.executable, "-m", "krea_desktop", "generate", "one more", "--demo"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (aside,) = pending.folder.glob(f"*-{request.task_uuid}.unreadable")  # claimed by that run, then set aside
    said = (
        "krea-desktop: An unfinished generation noted by an earlier run could not be read, so the rest of its "
        f"images cannot be collected; the note is kept as {aside}."
    )
    assert said in run.stderr.splitlines(), run.stderr
    assert aside.read_text() == text[: len(text) // 2]
    assert set_aside_notice(["a.unreadable", "b.unreadable"], pending.folder) == (
        "2 unfinished generations noted by earlier runs could not be read, so the rest of their images cannot "
        f"be collected; the notes are kept in {pending.folder} (ending .unreadable)."
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [("9999999999-{uuid}.json", "{{}}"), ("{pid}-{uuid}.json", "[" * 200_000)],
    ids=["a-number-no-process-has", "nested-past-pythons-depth"],
)
def test_a_note_no_run_could_have_written_is_set_aside_not_a_traceback(tmp_path: Path, name: str, text: str) -> None:
    # An OverflowError (the process number) and a RecursionError (the JSON) ended generate
    # and sweep with a traceback; the window claims the same notes at its start.
    import uuid

    pending = PendingTasks(tmp_path / "data")
    pending.folder.mkdir(parents=True, exist_ok=True)
    note = pending.folder / name.format(uuid=uuid.uuid4(), pid=_dead_pid())
    note.write_text(text.format() if text == "{{}}" else text)
    assert pending.claim_abandoned() == []
    assert len(pending.set_aside) == 1 and not note.exists()


def test_a_killed_command_line_batch_is_collected_by_the_next_run(tmp_path: Path, env: dict[str, str]) -> None:
    with simulator_process("--key", KEY, "--latency", "0.15", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        _killed_after(["generate", "twenty lanterns", "--count", "20", "--delivery", "async"], run_env, lines=3)
        with Library(tmp_path / "data") as lib:
            first = {e.image_uuid for e in lib.entries()}
        assert 3 <= len(first) < 20
        assert len(list((tmp_path / "data" / "pending").glob("*.json"))) == 1

        again = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "one more", "--count", "1"],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert again.returncode == 0, again.stderr
    assert "Collecting the rest of an earlier run's task" in again.stderr
    assert len(again.stdout.split()) == 1  # stdout lists this run's image only
    with Library(tmp_path / "data") as lib:
        entries = lib.entries()
        batch = [e for e in entries if e.prompt == "twenty lanterns"]
        assert len(batch) == 20 and len({e.image_uuid for e in batch}) == 20  # each once
        assert first <= {e.image_uuid for e in batch}
        assert sum(e.prompt == "one more" for e in entries) == 1
    assert not list((tmp_path / "data" / "pending").glob("*.json"))  # nothing left to collect


def test_a_killed_demo_batch_leaves_no_note_the_next_run_would_fail_to_collect(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The demo's simulator ends with the process that runs it, and its tasks with it: the
    note of a demo batch killed midway sent the next run after images no one has."""
    _killed_after(["generate", "twenty lanterns", "--count", "20", "--delivery", "async", "--demo"], env, lines=2)
    assert not list((tmp_path / "data" / "pending").glob("*.json"))
    again = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "generate", "one more", "--count", "1", "--demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "earlier" not in again.stderr and len(again.stdout.split()) == 1


def _noted_by_a_dead_run(pending: PendingTasks, prompt: str, service: str) -> Path:
    """The note a run that has ended left of a 2-image async task sent to ``service``."""
    request = GenerationRequest(prompt, number_results=2, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt=prompt), service)
    assert task is not None
    return task.path.rename(task.path.with_name(f"{_dead_pid()}-{request.task_uuid}.json"))


def test_the_demo_drops_its_own_old_tasks_and_leaves_those_that_do_not_say_where(tmp_path: Path) -> None:
    # Earlier versions noted the demo's tasks too (sent to DEMO_SERVICE): the demo that finds
    # one has nothing to collect and removes it without a word. A note that does not say
    # where its task went (written before notes did) may be a paid Runware task: the
    # demo's simulator would answer that it has no such task and the note would be lost.
    pending = PendingTasks(tmp_path)
    demo = _noted_by_a_dead_run(pending, "a demo lantern", DEMO_SERVICE)
    unsaid = _noted_by_a_dead_run(pending, "a lantern sent somewhere", "")
    paid = _noted_by_a_dead_run(pending, "a paid lantern", "https://api.runware.ai/v1")
    assert pending.claim_abandoned(DEMO_SERVICE, collectable=False) == []
    assert not demo.exists() and pending.set_aside == []
    assert unsaid.exists() and paid.exists()
    claimed = pending.claim_abandoned("https://api.runware.ai/v1")
    assert sorted(t.record.prompt for t in claimed) == ["a lantern sent somewhere", "a paid lantern"]


def test_a_demo_run_says_nothing_of_old_demo_tasks_and_keeps_a_note_that_may_be_paid(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pending = PendingTasks(tmp_path / "data")
    demo = _noted_by_a_dead_run(pending, "a demo lantern", DEMO_SERVICE)
    unsaid = _noted_by_a_dead_run(pending, "a lantern sent somewhere", "")
    for args in (["generate", "one more", "--count", "1"], ["sweep", "lanterns", "--vary", "seed=1,2", "--yes"]):
        command = [sys.executable, "-m", "krea_desktop", *args, "--demo"]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "earlier" not in run.stderr and "no longer" not in run.stderr, run.stderr
        assert not demo.exists() and unsaid.exists()
    with Library(tmp_path / "data") as lib:
        assert not [e for e in lib.entries() if "lantern sent somewhere" in e.prompt]


def test_a_killed_sweeps_tasks_wait_for_the_service_they_were_sent_to(tmp_path: Path, env: dict[str, str]) -> None:
    # Each cell of a sweep is a paid task: killed midway, the cells still out are recorded
    # with the service they went to, so that a window in demo mode (its own simulator)
    # does not claim them and lose their images, and the next run on that service does.
    with simulator_process("--key", KEY, "--latency", "0.6", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        _killed_after(["sweep", "lanterns", "--vary", "seed=1,2,3,4,5,6", "--yes", "--delivery", "async"], run_env)
        pending = PendingTasks(tmp_path / "data")
        left = sorted(p.name for p in pending.folder.glob("*.json"))
        assert left  # cells were out when it was killed
        assert pending.claim_abandoned("http://127.0.0.1/v1") == []  # not the demo simulator's
        claimed = pending.claim_abandoned(url)
        assert len(claimed) == len(left) and {t.service for t in claimed} == {url}


def test_a_killed_batch_the_service_no_longer_has_is_named_once_by_the_next_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # The run is killed after its first image; the service then forgets the task (the
    # simulator restarted on the same port): the next run says so in one sentence, goes
    # on with its own image, and does not try the lost task again.
    port = free_port()
    with simulator_process("--key", KEY, "--latency", "0.15", env=env, port=port) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        _killed_after(["generate", "lost lanterns", "--count", "20", "--delivery", "async"], run_env)
    assert len(list((tmp_path / "data" / "pending").glob("*.json"))) == 1
    with simulator_process("--key", KEY, env=env, port=port) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        command = [sys.executable, "-m", "krea_desktop", "generate", "one more", "--count", "1"]
        again = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "krea-desktop: The service no longer has this job, so its images could not be collected." in again.stderr
        assert len(again.stdout.split()) == 1
        assert not list((tmp_path / "data" / "pending").glob("*.json"))  # not tried again
        third = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "no longer has" not in third.stderr


def _left_by_an_ended_run(data: Path, url: str) -> GenerationRequest:
    """The record of an async task of two images sent to ``url`` by a run that has ended;
    the request it keeps."""
    pending = PendingTasks(data)
    request = GenerationRequest("kept lanterns", number_results=2, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt="kept lanterns"), url)
    assert task is not None
    task.path.rename(task.path.with_name(f"{_dead_pid()}-{request.task_uuid}.json"))
    return request


def test_a_refused_key_keeps_an_earlier_runs_task_for_a_later_run(tmp_path: Path, env: dict[str, str]) -> None:
    with simulator_process("--key", KEY, env=env) as url:
        request = _left_by_an_ended_run(tmp_path / "data", url)
        run_env = {**env, "RUNWARE_API_KEY": "sk-not-this-one", "RUNWARE_API_URL": url}
        command = [sys.executable, "-m", "krea_desktop", "generate", "one more", "--count", "1"]
        wrong = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0
    assert "it is tried again next time" in wrong.stderr
    (kept,) = list((tmp_path / "data" / "pending").glob("*.json"))
    assert kept.name.endswith(f"-{request.task_uuid}.json")


from krea_desktop.cli_words import EARLIER_UNEXPECTED  # noqa: E402

_COLLECT_FAILS = """
import sys
from krea_desktop.api.client import RunwareClient
def broken(self, *args, **kwargs):
    raise RuntimeError("a mistake of the program's")
    yield
RunwareClient.collect = broken
from krea_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "command", [["generate", "one more", "--count", "1"], ["sweep", "one more", "--vary", "seed=1,2", "--yes"]]
)
def test_an_earlier_task_that_fails_to_collect_unexpectedly_keeps_its_record_and_the_run_goes_on(
    tmp_path: Path, env: dict[str, str], command: list[str]
) -> None:
    """A mistake of the program's in collecting one earlier task ended every run that
    claimed it in a traceback, before its own work: nothing could be generated."""
    with simulator_process("--key", KEY, env=env) as url:
        request = _left_by_an_ended_run(tmp_path / "data", url)
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        r = subprocess.run(
            [sys.executable, "-c", _COLLECT_FAILS, *command], env=run_env, capture_output=True, text=True, timeout=120
        )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"krea-desktop: {EARLIER_UNEXPECTED}" in r.stderr
    assert len(r.stdout.splitlines()) >= 1  # its own images
    (kept,) = list((tmp_path / "data" / "pending").glob("*.json"))
    assert kept.name.endswith(f"-{request.task_uuid}.json")
    assert "collecting the earlier task" in (tmp_path / "data" / "logs" / "krea-desktop.log").read_text()


def test_an_image_saved_as_its_job_is_cancelled_does_not_bring_the_tasks_record_back(tmp_path: Path) -> None:
    # The job ends (cancelled: its record is removed) while its last image is being saved
    # on another thread; that save must not write the record again, or the next start
    # would collect a job nobody wants.
    pending = PendingTasks(tmp_path)
    request = GenerationRequest("a lighthouse", number_results=2, delivery_method="async")
    task = pending.submitted(request, [], GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
    assert task is not None
    pending.received(task, "img-1")
    pending.finished(task)
    pending.received(task, "img-2")  # the save that was under way
    assert not task.path.exists() and not list(pending.folder.iterdir())
    # Both at once, many times: the record is gone at the end, whichever comes first.
    for i in range(50):
        task = pending.submitted(request, [], GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
        assert task is not None
        saver = threading.Thread(target=lambda t=task: [pending.received(t, f"img-{k}") for k in range(5)])
        saver.start()
        pending.finished(task)
        saver.join()
        assert not task.path.exists(), i


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX's")
def test_a_tasks_record_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    import stat

    pending = PendingTasks(tmp_path)
    request = GenerationRequest("a lighthouse", number_results=2, delivery_method="async")
    wire = [{"image": "https://ann:hunter2@images.example.com/cat.png", "strength": 0.5}]  # kept as sent
    task = pending.submitted(request, wire, GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
    assert task is not None
    assert stat.S_IMODE(task.path.stat().st_mode) == 0o600
    pending.received(task, "img-1")  # written again
    assert stat.S_IMODE(task.path.stat().st_mode) == 0o600


def test_a_temporary_file_a_killed_process_left_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    """A process killed while it wrote a task's file left ``.NAME.XXXX.tmp`` in pending/,
    for good: nothing removed it."""
    pending = PendingTasks(tmp_path)
    pending.folder.mkdir(parents=True, exist_ok=True)
    dead, uuid = _dead_pid(), "8f1d2c3b-aaaa-4bbb-8ccc-000000000001"
    left = [pending.folder / f".write-{dead}-k3j4h5.tmp", pending.folder / f".{dead}-{uuid}.json.a8b7c6.tmp"]
    writing = [
        pending.folder / f".write-{os.getpid()}-q1w2e3.tmp",
        pending.folder / f".{os.getpid()}-{uuid}.json.z9.tmp",
    ]
    for path in left + writing:
        path.write_bytes(b"{")
    assert pending.claim_abandoned() == []
    assert sorted(p.name for p in pending.folder.iterdir()) == sorted(p.name for p in writing)
    request = GenerationRequest("a lighthouse")
    task = pending.submitted(request, [], GenerationRecord(prompt="a lighthouse"), "http://127.0.0.1/v1")
    assert task is not None and task.path.exists()  # written through a temporary file of its own
    assert not [p for p in pending.folder.iterdir() if p.name.endswith(".tmp") and p not in writing]


def test_a_task_the_service_gave_up_is_named_once_by_the_next_run_not_tried_forever(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with simulator_process("--key", KEY, "--fault", "task-error:code=timeoutProvider", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        command = [sys.executable, "-m", "krea_desktop", "generate", "three kites", "--count", "3"]
        first = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 1 and "took too long" in first.stderr
        pending = tmp_path / "data" / "pending"
        runs = [subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    said = [r.stderr.count("took too long") for r in runs]
    # The second run asks the service once, hears it gave the task up, says so and forgets
    # it; the third hears nothing of it. (The fault strikes the first task only: each later
    # run's own images come.)
    assert [r.returncode for r in runs] == [0, 0]
    assert "tried again next time" not in runs[0].stderr + runs[1].stderr
    assert said == [1, 0], [r.stderr for r in runs]
    assert not list(pending.glob("*.json"))


def test_a_connection_lost_while_following_a_task_says_its_images_are_collected_later(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """It said only "The connection to the service broke off.": a person takes the paid
    images for lost, and may pay for them again. The task's record is kept for the next
    run to collect its images (test_a_killed_command_line_batch_is_collected_by_the_next_run),
    as the sentence now says."""
    with simulator_process("--key", KEY, "--fault", "drop-after*:on=getResponse", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        failed = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "two lanterns", "--count", "2", "--delivery", "async"],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert failed.returncode == 1 and failed.stdout == ""
    last = failed.stderr.strip().splitlines()[-1]
    tries = RetryPolicy().attempts  # the command line's
    assert last == (
        f"krea-desktop: The connection to the service broke off ({tries} times in a row); the task's images are "
        "collected later."
    ), last
    assert len(list((tmp_path / "data" / "pending").glob("*.json"))) == 1  # for the next run


def test_a_connection_lost_before_any_task_was_sent_does_not_promise_a_collection(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A reference's upload that broke off sent no task and wrote no record: the sentence
    said the task's images would be collected later all the same."""
    from PIL import Image

    ref = tmp_path / "ref.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(ref)
    with simulator_process("--key", KEY, "--fault", "drop-after*:on=imageUpload", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        failed = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "two lanterns", "--ref", str(ref)],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("krea-desktop: ") and "collected later" not in last, last
    assert not list((tmp_path / "data" / "pending").glob("*.json"))


def test_ctrl_c_while_a_refused_task_waits_to_be_sent_again_promises_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Busy (503) at every try, the service never took the task: Ctrl+C during the wait
    said the rest of its images were collected by the next run, which then found none."""
    with simulator_process("--key", KEY, "--fault", "503*", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        args = ["generate", "two lanterns", "--count", "2"]
        code, err = _interrupted_at(args, run_env, lambda line: "retrying" in line)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "krea-desktop: cancelled.", err
    assert not list((tmp_path / "data" / "pending").glob("*.json"))


def test_ctrl_c_while_a_sweeps_refused_cells_wait_to_be_sent_again_promises_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Busy (503, come back in 30 s): Ctrl+C in the wait counted the cells among those
    "already sent", collected by the next run, which found nothing of them."""
    with simulator_process("--key", KEY, "--fault", "503*:retry-after=30", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        args = ["sweep", "two lanterns", "--vary", "seed=1,2", "--yes"]
        # Once each cell has had its 503 and says it waits its 30 s (a sweep said nothing
        # of the wait: Ctrl+C came a second after it began, on a loaded machine too soon).
        waits: list[str] = []

        def both_wait(line: str) -> bool:
            if "The service is busy right now; retrying in 30 s…" in line:
                waits.append(line.split("]")[0] + "]")
            return len(waits) == 2

        code, err = _interrupted_at(args, run_env, both_wait)
    assert sorted(waits) == ["[seed 1]", "[seed 2]"]
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "krea-desktop: cancelled.", err
    assert not list((tmp_path / "data" / "pending").glob("*.json"))


def test_ctrl_c_in_a_generate_says_the_rest_is_collected_by_the_next_run(tmp_path: Path, env: dict[str, str]) -> None:
    """Ctrl+C said only "cancelled.", and the next run collected the rest of the task's
    images all the same: a person would ask for them again, and pay twice."""
    with simulator_process("--key", KEY, "--latency", "0.3", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        args = ["generate", "twenty lanterns", "--count", "20", "--delivery", "async"]
        code, err = _interrupted_at(args, run_env, lambda line: line.startswith("[1/20]"))
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        "krea-desktop: cancelled; the rest of the task's images are collected by the next run."
    ), err
    assert len(list((tmp_path / "data" / "pending").glob("*.json"))) == 1


def test_the_rest_of_a_generate_given_out_is_copied_there_by_the_next_run(tmp_path: Path, env: dict[str, str]) -> None:
    """The next run collected the rest of an interrupted ``generate --out`` into the library
    only: the folder the person named kept the first images, not the rest."""
    folder = tmp_path / "picked"
    # A second an image: the other five are still to come when Ctrl+C follows the first.
    with simulator_process("--key", KEY, "--latency", "1", env=env) as url:
        run_env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        args = ["generate", "six lanterns", "--count", "6", "--delivery", "async", "--out", str(folder)]
        code, err = _interrupted_at(args, run_env, lambda line: line.startswith("[1/6]"))
        assert code == 130, err
        assert len(list(folder.glob("*.png"))) < 6
        again = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "a harbour"],
            env=run_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"copied it into {folder}" in again.stderr
    with Library(tmp_path / "data") as library:
        lanterns = [e for e in library.entries() if e.prompt == "six lanterns"]
    assert len(lanterns) == 6
    for entry in lanterns:
        assert (folder / entry.path.name).read_bytes() == entry.path.read_bytes()


def test_a_second_ctrl_c_as_an_image_is_copied_into_out_leaves_it_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The image was noted as received before it was copied into --out and said: a second
    # Ctrl+C then left it in the library but never in --out nor printed, and the next run
    # did not fetch it. Noted last, it is fetched again (the library keeps it once).
    import json

    from krea_desktop import cli, fsutil
    from tests.helpers.sim import running_simulator

    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(data))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

    def interrupted(_target: Path, _data: bytes) -> None:
        raise KeyboardInterrupt  # the second Ctrl+C, as the copy is made

    monkeypatch.setattr(fsutil, "write_among_users_files", interrupted)
    with running_simulator() as sim:
        monkeypatch.setenv("RUNWARE_API_KEY", "sk-twice")
        monkeypatch.setenv("RUNWARE_API_URL", sim.url)
        assert cli.main(["generate", "a row of lanterns", "--count", "2", "--out", str(out)]) == 130
    assert "collected by the next run" in capsys.readouterr().err
    (kept,) = list((data / "pending").glob("*.json"))
    assert json.loads(kept.read_text())["received"] == []  # the next run fetches it, and copies it
