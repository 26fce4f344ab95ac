"""The Qt-free models the window observes: the reference set and the job queue."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from krea_desktop.api import spec
from krea_desktop.api.request import GenerationRequest
from krea_desktop.library.store import LibraryEntry
from krea_desktop.models.events import Event
from krea_desktop.models.jobs import CANCELLED, FAILED, FINISHED, RUNNING, JobQueue
from krea_desktop.models.references import Reference, ReferenceSet, StateError
from krea_desktop.wording import counted, file_size, for_count, size_over


def ref(folder: Path, n: int, strength: float = 0.7) -> Reference:
    return Reference(folder / f"{n:02d}.png", f"sha{n}", strength, f"source-{n}.png", 64, 48)


def test_event_calls_listeners_in_order_and_survives_a_failing_one() -> None:
    seen: list[Any] = []
    event: Event[[int]] = Event()
    event.connect(lambda v: seen.append(("a", v)))
    event.connect(lambda v: 1 / 0)
    stop = event.connect(lambda v: seen.append(("c", v)))
    event.emit(1)
    stop()
    event.emit(2)
    assert seen == [("a", 1), ("c", 1), ("a", 2)]


def test_reference_set_order_strengths_and_limits(tmp_path: Path) -> None:
    refs = ReferenceSet(tmp_path)
    changes: list[int] = []
    strengths: list[tuple[int, float]] = []
    refs.changed.connect(lambda: changes.append(len(refs)))
    refs.strength_changed.connect(lambda i, v: strengths.append((i, v)))
    for n in range(spec.MAX_REFERENCES):
        assert refs.add(ref(tmp_path, n))
    assert not refs.add(ref(tmp_path, 99))  # full
    assert refs.room() == 0 and refs.room(pending=-1) == 1
    refs.remove(9)
    assert not refs.add(ref(tmp_path, 0))  # the same image twice
    refs.move(0, 2)
    assert [r.sha256 for r in refs][:3] == ["sha1", "sha2", "sha0"]
    refs.set_strength(2, 9.0)
    refs.set_strength(2, 2.0)  # no change: no event
    refs.set_strength(0, -1.234)
    assert strengths == [(2, 2.0), (0, -1.23)]
    assert [r.strength for r in refs.requests()][:3] == [-1.23, 0.7, 2.0]
    assert changes == [*range(1, 11), 9, 9]


def test_reference_set_replace_all_and_clear(tmp_path: Path) -> None:
    refs = ReferenceSet(tmp_path)
    refs.add(ref(tmp_path, 1))
    refs.replace_all([ref(tmp_path, 2, -3.0), ref(tmp_path, 2), *[ref(tmp_path, n) for n in range(3, 20)]])
    assert len(refs) == spec.MAX_REFERENCES and refs[0].strength == spec.STRENGTH_MIN
    assert [r.sha256 for r in refs][:2] == ["sha2", "sha3"]
    refs.clear()
    assert len(refs) == 0


def test_reference_set_persists_order_strength_and_source(tmp_path: Path) -> None:
    refs = ReferenceSet(tmp_path / "refs")
    refs.add(ref(tmp_path / "refs", 1, -0.5))
    refs.add(ref(tmp_path / "refs", 2, 1.5))
    refs.save()
    again = ReferenceSet(tmp_path / "refs").read_saved()
    assert [(s.path.name, s.strength, s.source) for s in again] == [
        ("01.png", -0.5, "source-1.png"),
        ("02.png", 1.5, "source-2.png"),
    ]
    assert ReferenceSet(tmp_path / "none").read_saved() == []


@pytest.mark.parametrize("text", ["{not json", "[]", '{"references": 3}'])
def test_reference_set_refuses_a_damaged_state_in_one_sentence(tmp_path: Path, text: str) -> None:
    (tmp_path / "tray.json").write_text(text)
    with pytest.raises(StateError) as err:
        ReferenceSet(tmp_path).read_saved()
    # Kept aside, byte for byte, where the message says: the next save would replace it.
    (aside,) = tmp_path.glob("tray.json.damaged-*")
    assert aside.read_text() == text and not (tmp_path / "tray.json").exists()
    assert str(err.value) == f"The saved reference tray could not be read, so it starts empty (kept as {aside.name})."


def test_reference_set_reads_hostile_entries_safely(tmp_path: Path) -> None:
    entries = [{"file": "a.png", "strength": "x"}, 5, {"file": 3}, {"file": "b.png", "strength": 40, "source": 1}]
    (tmp_path / "tray.json").write_text(json.dumps({"references": entries}))
    saved = ReferenceSet(tmp_path).read_saved()
    assert [(s.path.name, s.strength, s.source) for s in saved] == [
        ("a.png", spec.DEFAULT_STRENGTH, ""),
        ("b.png", spec.STRENGTH_MAX, ""),
    ]


def test_reference_set_keeps_the_files_its_images_were_read_from_and_reads_hostile_ones_safely(
    tmp_path: Path,
) -> None:
    refs = ReferenceSet(tmp_path)
    refs.note_origin("a" * 64, (1, 2, 3, 4))
    refs.note_origin("b" * 64, (1, 5, 6, 7))
    refs.note_origin("a" * 64, (9, 9, 9, 9))  # the same image read from a copy elsewhere: both known
    refs.save()
    again = ReferenceSet(tmp_path)
    again.read_saved()
    assert [again.read_from(k) for k in ((1, 2, 3, 4), (1, 5, 6, 7), (9, 9, 9, 9), (0, 0, 0, 0))] == [
        "a" * 64,
        "b" * 64,
        "a" * 64,
        None,
    ]
    hostile = [[1, 2, 3, 4], [1, 2, 3, -4, "x"], [1, 2, 3, True, "x"], "x", [1, 2, 3, 4, 5], [7, 7, 7, 7, "c" * 64]]
    (tmp_path / "tray.json").write_text(json.dumps({"references": [], "origins": hostile}))
    third = ReferenceSet(tmp_path)
    assert third.read_saved() == []
    assert third.read_from((7, 7, 7, 7)) == "c" * 64 and third.read_from((1, 2, 3, 4)) is None


def test_a_job_ending_with_images_waiting_to_be_saved_counts_them_as_they_come() -> None:
    queue = JobQueue()
    queue.add(1, GenerationRequest("two words", number_results=3))
    queue.image_saved(1, entry(10, None))
    queue.images_held(1, 2)
    queue.finished(1)
    job = queue.get(1)
    assert job is not None and job.message == "Done: 1 image saved; 2 images are waiting to be saved."
    changed: list[str] = []
    queue.changed.connect(lambda j: changed.append(j.message))
    queue.image_saved(1, entry(11, None))
    queue.remove(1)  # the row dismissed: the image still goes to the gallery
    shown: list[object] = []
    queue.image.connect(lambda j, e, _x: shown.append((j, e.id)))
    queue.image_saved(1, entry(12, None))
    assert changed == ["Done: 2 images saved; 1 image is waiting to be saved."]
    assert shown == [(None, 12)]


def entry(n: int, cost: float | None) -> LibraryEntry:
    return LibraryEntry(
        id=n,
        image_uuid=f"u{n}",
        task_uuid="t",
        file_name=f"u{n}.png",
        format="PNG",
        width=1,
        height=1,
        ratio=None,
        prompt="p",
        creativity=None,
        seed=n,
        number_results=None,
        output_quality=None,
        cost=cost,
        nsfw=None,
        created_at="",
        favourite=False,
        missing=False,
        broken=False,
        file_size=1,
        record_json="{}",
        images_dir=Path("."),
    )


def test_the_session_cost_never_adds_the_simulators_amounts_to_what_was_charged() -> None:
    queue = JobQueue()
    queue.add(1, GenerationRequest("two words", number_results=3))
    queue.image_saved(1, entry(10, 0.004))
    queue.image_saved(1, dataclasses.replace(entry(11, 0.0045), simulated=True))
    queue.image_saved(1, dataclasses.replace(entry(12, 0.002), simulated=False))
    assert queue.session_cost == pytest.approx(0.006)
    assert queue.session_cost_simulated == pytest.approx(0.0045)


def test_job_queue_routes_every_report_to_its_subscribers() -> None:
    queue = JobQueue()
    log: list[tuple[str, Any]] = []
    queue.added.connect(lambda j: log.append(("added", j.job_id)))
    queue.changed.connect(lambda j: log.append(("changed", j.status)))
    queue.image.connect(lambda j, e, extra: log.append(("image", (j.job_id, e.id, extra))))
    queue.ended.connect(lambda j: log.append(("ended", (j.state, j.message))))
    queue.cost_changed.connect(lambda total: log.append(("cost", round(total, 4))))
    job = queue.add(1, GenerationRequest("two words", number_results=3))
    queue.started(1)
    queue.image_saved(1, entry(10, 0.004), "thumb")
    queue.image_saved(1, entry(11, None))
    queue.set_status(1, "Waiting for the service…")
    queue.failed(1, "The network went away.")
    queue.set_status(1, "late")  # ignored once ended
    assert job.state == FAILED and job.received == 2 and job.cost == pytest.approx(0.004)
    assert job.expected == 3 and job.elapsed() >= 0
    assert log == [
        ("added", 1),
        ("changed", "Starting…"),
        ("image", (1, 10, "thumb")),
        ("cost", 0.004),
        ("image", (1, 11, None)),
        ("changed", "Waiting for the service…"),
        ("ended", (FAILED, "The network went away; the 2 images received before that are kept.")),
    ]


def test_job_queue_states_running_list_and_trim() -> None:
    queue = JobQueue()
    for n in range(1, 25):
        queue.add(n, GenerationRequest("two words"))
    queue.finished(1)
    queue.cancelled(2)
    assert queue.get(1) is not None and queue.get(1).state == FINISHED  # type: ignore[union-attr]
    assert queue.get(2).state == CANCELLED and queue.get(3).state == RUNNING  # type: ignore[union-attr]
    assert queue.running() == list(range(3, 25))
    for n in range(3, 25):
        queue.finished(n)
    assert len(queue.jobs()) == JobQueue.MAX_ENDED and queue.get(1) is None
    queue.remove(24)
    assert queue.get(24) is None and not queue.running()


def test_a_failed_job_is_not_dropped_for_the_jobs_that_end_after_it() -> None:
    """A failed job (its error waiting to be read, its Try again) went, with its request,
    once 20 more jobs had ended: one sweep of 21 cells was enough."""
    queue = JobQueue()
    queue.add(1, GenerationRequest("the one that failed"))
    queue.failed(1, "The service is busy right now; try again in a moment.")
    for n in range(2, 40):
        queue.add(n, GenerationRequest("two words"))
        queue.finished(n)
    assert queue.get(1) is not None and queue.get(1).state == FAILED  # type: ignore[union-attr]
    assert len(queue.jobs()) == JobQueue.MAX_ENDED and queue.get(2) is None and queue.get(39) is not None
    for n in range(40, 40 + JobQueue.MAX_FAILED):  # failed ones are kept up to a bound of their own
        queue.add(n, GenerationRequest("two words"))
        queue.failed(n, "The network went away.")
    assert queue.get(1) is None and queue.get(40) is not None
    assert len([j for j in queue.jobs() if j.state == FAILED]) == JobQueue.MAX_FAILED


def test_a_jobs_ending_names_one_image_in_the_singular_and_more_in_the_plural() -> None:
    queue = JobQueue()
    for n in (1, 2, 3, 4):
        queue.add(n, GenerationRequest("two words", number_results=4))
    queue.image_saved(1, entry(10, None))
    queue.finished(1)
    queue.image_saved(2, entry(11, None))
    queue.failed(2, "The network went away.")
    for i in (12, 13):
        queue.image_saved(3, entry(i, None))
    queue.cancelled(3)
    queue.cancelled(4)
    assert [queue.get(n).message for n in (1, 2, 3, 4)] == [  # type: ignore[union-attr]
        "Done: 1 image saved.",
        "The network went away; the 1 image received before that is kept.",
        "Cancelled; 2 images kept.",
        "Cancelled.",  # not "0 images kept": there was nothing to keep
    ]


@pytest.mark.parametrize(
    ("n", "noun", "said"),
    [
        (0, "image", "0 images are"),
        (1, "image", "1 image is"),
        (2, "paid image", "2 paid images are"),
        (12500, "image", "12,500 images are"),
    ],
)
def test_counts_read_as_a_person_would_say_them(n: int, noun: str, said: str) -> None:
    assert f"{counted(n, noun)} {for_count(n, 'is', 'are')}" == said


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 KB"),
        (2_345, "2 KB"),
        (340_400, "340 KB"),
        (999_499, "999 KB"),
        (999_500, "1.00 MB"),
        (1_624_000, "1.62 MB"),
    ],
)
def test_a_file_size_reads_in_kb_under_a_megabyte_never_as_zero(n: int, said: str) -> None:
    assert file_size(n) == said


@pytest.mark.parametrize(
    ("n", "limit", "said"),
    [
        (200_000_001, 200_000_000, ("201 MB", "200 MB")),
        (209_715_200, 200_000_000, ("210 MB", "200 MB")),
        (1_500, 1_000, ("2 KB", "1 KB")),
        (150, 100, ("150 bytes", "100 bytes")),
        (1_234_567_890, 1_000_000_000, ("1,235 MB", "1,000 MB")),
    ],
)
def test_a_size_over_a_limit_never_reads_as_the_limit(n: int, limit: int, said: tuple[str, str]) -> None:
    assert size_over(n, limit) == said
