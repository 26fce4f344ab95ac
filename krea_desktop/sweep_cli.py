"""``krea-desktop sweep``: a grid of variations from the command line.

Prints one saved path per cell on stdout as each arrives and the contact sheet's path as
the last line; progress and the plan on stderr. Without ``--yes`` it asks before sending
when stdin is a terminal, and refuses when it is not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from krea_desktop import console
from krea_desktop.api import errors as E
from krea_desktop.cli_words import EARLIER_UNEXPECTED, in_the_users_words, note_unexpected
from krea_desktop.wording import counted

if TYPE_CHECKING:
    from krea_desktop.api.client import RunwareClient
    from krea_desktop.library.pending import PendingTask, PendingTasks
    from krea_desktop.library.saving import SaveQueue
    from krea_desktop.library.store import Library, LibraryEntry

CONCURRENCY = 4  # cells in flight at once
# A cell of a sweep cut off by Ctrl+C whose task was sent: its image is paid for and comes.
CELL_COLLECTED_LATER = "Sent before the sweep was cancelled; the next run collects its image."

T = TypeVar("T")


def _say(msg: str) -> None:
    console.line(msg, err=True)


def _confirm(question: str) -> bool:
    _say(question)
    try:
        # The line straight from the file descriptor: sys.stdin's buffer has a lock that a
        # thread left reading it at exit (after Ctrl+C) would make Python abort over.
        answer = os.read(sys.stdin.fileno(), 4096).decode(errors="replace")
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


async def _ask(question: str) -> bool:
    """:func:`_confirm` on a daemon thread: Ctrl+C at the question ends the run at once (the
    loop's own worker threads are waited for at exit, and a thread blocked reading the
    terminal would hold the run until Enter)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bool] = loop.create_future()

    def answered(said: bool) -> None:
        if not answer.done():
            answer.set_result(said)

    def read() -> None:
        said = _confirm(question)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run ended meanwhile
            loop.call_soon_threadsafe(answered, said)

    threading.Thread(target=read, name="sweep-confirm", daemon=True).start()
    return await answer


EARLIER_SAVED = "saved {name} from an earlier run that ended before all its images arrived"
# The client's words for a wait the service's trouble causes (see RunwareClient.generate's
# on_status): a cell of a sweep says those, and no other step.
WAITING_WORDS = ("; retrying", "; asking again", "whether it has the task")


async def to_its_end(work: Callable[..., T], *args: Any, finish: Callable[[T], None] | None = None) -> T:
    """``work(*args)`` on a worker thread, as ``asyncio.to_thread``; cancelled meanwhile
    (Ctrl+C, SIGTERM), the caller waits for the thread to end before the cancel goes on.
    The thread runs on whatever its caller does: a save or a read still going through the
    library as the run's ``finally`` closes it left an image file with no row in the index,
    or could end the process. ``finish``, if given, is called with what the work returned
    before the cancel goes on (an image saved is said and noted all the same)."""
    job = asyncio.ensure_future(asyncio.to_thread(work, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([job])  # cancelled again: still waited for, never cancelled
        if finish is not None and not job.cancelled() and job.exception() is None:
            finish(job.result())
        raise


class EarlierOut:
    """The ``--out`` folders of earlier runs (a sweep, a generate) whose images a
    command-line run collects (noted with their tasks): each image collected is copied into
    its run's folder as well, and a sweep's contact sheet drawn again replaces the one
    there, which marked those cells as not made. A folder gone (it is not made again: a
    drive not connected would have it made on the disk beneath) or that cannot be written
    is said once, in one sentence, and fails nothing: the images and the sheet are in the
    library all the same.

    The window, when it is the one that collects such a task, leaves the folder alone: the
    images and the sheet drawn again are in the library."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._said: set[Path] = set()  # folders whose trouble was said

    def saved(self, entry: LibraryEntry, task: PendingTask | None) -> None:
        """Say an earlier run's image, saved in the library as ``entry``, copied first into
        the ``--out`` folder of ``task`` (its task, if known) when that named one."""
        name = entry.path.name
        folder = task.out if task is not None else None
        if folder is not None and self.copy(entry.path, folder):
            self._say(f"{EARLIER_SAVED.format(name=name)}, and copied it into {folder}")
        else:
            self._say(EARLIER_SAVED.format(name=name))

    def copy(self, path: Path, folder: Path) -> bool:
        """``path`` copied into ``folder`` (one there by its name replaced); False, the
        trouble said, when it could not be."""
        from krea_desktop.fsutil import write_among_users_files

        try:
            write_among_users_files(folder / path.name, path.read_bytes())
        except (OSError, ValueError) as exc:  # ValueError: a name this system cannot write
            if folder not in self._said:
                self._said.add(folder)
                self._say(
                    "krea-desktop: the images collected from an earlier run are in the library, but some could "
                    f"not be copied into its --out folder: {_why_not_copied(exc, folder)}."
                )
            return False
        return True


def _why_not_copied(exc: OSError | ValueError, folder: Path) -> str:
    from krea_desktop.library.saving import dangling_link, describe_failure

    if not isinstance(exc, OSError):
        return "its name is not one this system can write"
    if isinstance(exc, FileNotFoundError) and dangling_link(folder) is None and not folder.exists():
        return f"{folder} is not there any more"
    return describe_failure(exc, folder)


async def redraw_sheets_of(
    tasks: list[PendingTask], library: Library, say: Callable[[str], None], out: EarlierOut
) -> None:
    """The contact sheets of sweeps cut off (Ctrl+C, a closed window) whose cells ``tasks``
    collected: drawn again with them, since they said those cells were never made; each
    copied into the ``--out`` folder its cells were sent with, replacing the one there
    (through ``out``, which says a folder's trouble once a run)."""
    from krea_desktop.library.sheet import redraw_with_late_cells
    from krea_desktop.library.store import LibraryError

    folders: dict[str, set[Path]] = {}  # sweep ID -> the --out folders its cells were sent with
    for task in tasks:
        if task.record.sweep and not task.record.sweep.is_sheet:
            named = folders.setdefault(task.record.sweep.id, set())
            if task.out is not None:
                named.add(task.out)
    for sweep_id in sorted(folders):
        try:
            sheet = await to_its_end(redraw_with_late_cells, library, sweep_id)
        except (OSError, LibraryError) as exc:
            say(f"krea-desktop: the contact sheet of an earlier sweep could not be drawn again ({exc}).")
            continue
        if sheet is None:
            continue
        copied = [folder for folder in sorted(folders[sweep_id]) if out.copy(sheet.path, folder)]
        where = f", and replaced the copy in {', '.join(map(str, copied))}" if copied else ""
        say(f"drew the contact sheet {sheet.path.name} again with the cells collected since{where}")


async def _collect_earlier_runs(
    client: RunwareClient, library: Library, pending: PendingTasks, saver: SaveQueue, out: EarlierOut
) -> dict[str, PendingTask]:
    """Paid work of runs that ended early (Ctrl+C, a crash, a closed window), collected
    before the sweep, as ``generate`` and the window collect it: the tasks of a sweep cut
    off are said to be collected by the next run, whichever command it is. The sheets of
    sweeps whose cells come are drawn again with them, and they and the images are copied
    into those sweeps' ``--out`` folders (``out``). Returns the tasks collected, by
    taskUUID: an image of theirs the library held back comes with a later save, and is
    said as theirs then, not taken for a cell of this sweep."""
    from krea_desktop.library.pending import COLLECT_FIRST_S, set_aside_notice
    from krea_desktop.wording import within

    abandoned = pending.claim_abandoned(client.base_url, collectable=client.collectable_later)
    earlier = {task.task_uuid: task for task in abandoned}
    if pending.set_aside:
        _say(f"krea-desktop: {set_aside_notice(pending.set_aside, pending.folder)}")
    for task in abandoned:
        _say(f"Collecting the rest of an earlier run's task {task.task_uuid}…")

        def noted(entries: list[LibraryEntry], task: PendingTask = task) -> None:
            for entry in entries:
                owner = earlier.get(entry.task_uuid or "", task)
                out.saved(entry, owner)  # copied first: a run stopped in between fetches it again
                pending.received(owner, entry.image_uuid)

        try:
            async for image in client.collect(task.request, task.record, task.received, within=COLLECT_FIRST_S):
                noted(await to_its_end(saver.save, image, finish=noted))
        except E.KreaError as err:
            if E.may_collect_later(err) or (isinstance(err, E.COLLECT_LATER) and not E.service_gave_up(err)):
                why = within(in_the_users_words(err))
                _say(f"krea-desktop: an earlier task could not be collected now ({why}); it is tried again next time.")
                del earlier[task.task_uuid]  # its record stays, for the next run
                continue
            _say(f"krea-desktop: {in_the_users_words(err)}")
        except Exception:  # a mistake of this program's: the sweep goes on, the task kept
            _say(f"krea-desktop: {EARLIER_UNEXPECTED}")
            note_unexpected(task.task_uuid)
            del earlier[task.task_uuid]
            continue
        if not saver.held:  # held images keep their task's record: the next run collects them into the library
            pending.finished(task)
    await redraw_sheets_of(abandoned, library, _say, out)
    return earlier


async def run_sweep(args: argparse.Namespace) -> int:
    from krea_desktop.api import spec
    from krea_desktop.api.record import GenerationRecord
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.backend import demo_notice, open_backend
    from krea_desktop.fsutil import write_among_users_files
    from krea_desktop.library.inputs import keep_references_aside, reference_label, with_parents
    from krea_desktop.library.lineage import parent_of
    from krea_desktop.library.paths import data_dir
    from krea_desktop.library.pending import PendingTasks
    from krea_desktop.library.saving import SaveQueue, check_writable, describe_failure, prepare_out_folder
    from krea_desktop.library.sheet import SheetCell, save_sheet, value_label
    from krea_desktop.library.store import LibraryError
    from krea_desktop.models.sweep import SweepError, SweepPlan, parse_vary
    from krea_desktop.ui.money import format_cost

    try:
        axes = [parse_vary(text) for text in args.vary]
        if not axes:
            raise SweepError("Say what to vary with --vary AXIS=V1,V2,… (for example --vary ref1=-2,-1,0,1,2).")
        for option, given in (("seed", args.seed), ("creativity", args.creativity)):
            if given is not None and any(axis.name == option for axis in axes):
                raise SweepError(f"--{option} and --vary {option}=… both set the {option}; give only one of them.")
        base = GenerationRequest(
            prompt=args.prompt,
            ratio=args.ratio,
            seed=args.seed,
            creativity=args.creativity or spec.DEFAULT_CREATIVITY,
            references=tuple(args.ref),
            output_format=args.format,
            output_quality=args.quality,
            delivery_method=args.delivery or "sync",
            check_content=args.safety,
        )
        base.validate()
        # The strength axes are named by the files (or addresses) given, as the window names them.
        names = [reference_label(ref.image) if isinstance(ref.image, (str, Path)) else "" for ref in args.ref]
        plan = SweepPlan.make(base, axes, reference_names=names)
    except SweepError as exc:
        raise E.ValidationError(str(exc)) from None
    if args.out:
        prepare_out_folder(args.out)

    folder = data_dir()
    kept = await keep_references_aside(plan.base.references, folder / "references")
    backend = open_backend(data_dir=folder, demo=args.demo)
    library = backend.library
    try:
        if library.notice:
            _say(f"krea-desktop: {library.notice}")
        if backend.demo:
            _say(demo_notice(args.demo, folder, backend.key_problem))
        if kept:
            references = await to_its_end(with_parents, kept, lambda loaded, path: parent_of(library, loaded, path))
            plan = dataclasses.replace(plan, base=dataclasses.replace(plan.base, references=references))
        width, height = plan.base.size
        estimate = plan.estimate(library.last_cost(width, height, simulated=backend.demo))
        cost = (
            f"estimated cost {format_cost(estimate, simulated=backend.demo)}"
            if estimate is not None
            else "cost not known until the service reports one"
        )
        _say(f"Sweep {plan.sweep_id}: {plan.describe()}; {cost}.")
        if not args.yes:
            if sys.stdin is None or not sys.stdin.isatty():  # None: started with its input closed
                # Refused, as a "no" at the terminal is (exit 1): nothing in the command is wrong.
                raise E.KreaError(
                    f"Nothing was sent: a sweep sends {counted(plan.task_count, 'task')}, so confirm it with --yes "
                    "when the command is not run at a terminal."
                )
            if not await _ask(f"Send {counted(plan.task_count, 'task')}? [y/N]"):
                _say("krea-desktop: nothing was sent.")
                return 1
        client = backend.client
        check_writable(library, plan.task_count + 1, notes=client.collectable_later)

        pending = PendingTasks(folder)
        saver = SaveQueue(library)
        earlier_out = EarlierOut(_say)
        earlier = await _collect_earlier_runs(client, library, pending, saver, earlier_out)
        # Every reference is uploaded once, before the cells: each cell finds it in the cache.
        for ref in plan.base.references:
            await client.resolve_reference(ref)

        out_problem: str | None = None
        done = 0
        columns, rows = plan.labels()
        gate = asyncio.Semaphore(CONCURRENCY)
        # Each saved image goes to the cell of its task: the library can hold a cell's image
        # back for a moment (busy, or the disk full) and save it with a later cell's.
        place_of: dict[str, tuple[int, ...]] = {}  # taskUUID -> its cell
        tasks: dict[str, PendingTask] = {}  # taskUUID -> its record of paid work
        got: dict[tuple[int, ...], list[LibraryEntry]] = {}
        errors: dict[tuple[int, ...], str] = {}
        ended: set[str] = set()  # tasks with nothing more to collect

        def label(place: tuple[int, ...]) -> str:
            parts = [value_label(axis.name, axis.values[i]) for axis, i in zip(plan.axes, place, strict=True)]
            return ", ".join(
                f"{axis.name} {p}" if axis.name != "seed" else p for axis, p in zip(plan.axes, parts, strict=True)
            )

        def deliver(entries: list[LibraryEntry]) -> None:
            nonlocal done, out_problem
            for entry in entries:
                place = place_of.get(entry.task_uuid or "")
                if place is None:  # an earlier run's, held back by the library until now: not a cell's
                    earlier_task = earlier.get(entry.task_uuid or "")
                    earlier_out.saved(entry, earlier_task)
                    if earlier_task is not None:
                        pending.received(earlier_task, entry.image_uuid)
                    continue
                task = tasks.get(entry.task_uuid or "")
                if task is not None:
                    pending.received(task, entry.image_uuid)
                got.setdefault(place, []).append(entry)
                path = entry.path
                if args.out:
                    target = args.out / path.name
                    try:
                        write_among_users_files(target, path.read_bytes())
                        path = target
                    except OSError as exc:
                        out_problem = f"some could not be copied into --out: {describe_failure(exc, args.out)}"
                done += 1
                _say(f"[{done}/{max(done, plan.task_count)}] {label(place)}: saved {path.name}")
                console.line(console.one_line(str(path)))

        saving: set[asyncio.Future[list[LibraryEntry]]] = set()
        refused: list[E.KreaError] = []  # a key or an account the service refused

        async def saved(image: Any) -> tuple[list[LibraryEntry], bool]:
            """``image`` saved on a worker thread, and whether the sweep was interrupted
            meanwhile: a save under way then runs to its end (and is waited for before the
            library closes), and the caller records its image before it stops."""
            job = asyncio.ensure_future(asyncio.to_thread(saver.save, image))
            saving.add(job)
            job.add_done_callback(saving.discard)
            try:
                return await asyncio.shield(job), False
            except asyncio.CancelledError:
                return await job, True

        async def run_cell(place: tuple[int, ...], request: GenerationRequest) -> None:
            mine: list[str] = []  # this cell's taskUUIDs, the last one current

            def submitted(sent: GenerationRequest, wire: list[dict[str, Any]], record: GenerationRecord) -> None:
                for old in mine:  # sent again under a new taskUUID: the old one was never accepted
                    if old in tasks:
                        pending.finished(tasks.pop(old))
                mine.append(sent.task_uuid)
                place_of[sent.task_uuid] = place
                # Noted with --out: the run that collects the image (if not this one) copies it there.
                task = (
                    pending.submitted(sent, wire, record, client.base_url, args.out)
                    if client.collectable_later
                    else None
                )
                if task is not None:
                    tasks[sent.task_uuid] = task

            def waiting(status: str) -> None:
                # What the service's trouble makes the cell wait for, as it happens: a sweep
                # the service kept busy said nothing for as long as it waited (30 s, say).
                # Its other steps (submitting, generating) are not said cell by cell.
                if any(words in status for words in WAITING_WORDS):
                    _say(f"[{label(place)}] {status}")

            async with gate:
                if refused:  # the key or the account was refused: no cell after it is sent
                    errors[place] = str(refused[0])
                    return
                try:
                    async for image in client.generate(request, on_submitted=submitted, on_status=waiting):
                        entries, interrupted_meanwhile = await saved(image)
                        deliver(entries)
                        if saver.problem:  # paid images held in memory: said, as generate says it
                            _say(f"krea-desktop: {saver.problem}")
                        if interrupted_meanwhile:
                            raise asyncio.CancelledError
                except E.KreaError as err:
                    # Said to be collected later only when its task's record was written.
                    err.record_kept = E.may_collect_later(err) and bool(mine) and mine[-1] in tasks
                    said = in_the_users_words(err)
                    # The key or the account refused: said once, not by every cell sent beside it.
                    repeated = any(str(r) == str(err) for r in refused)
                    if isinstance(err, (E.AuthenticationError, E.InsufficientCreditsError)) and not err.task_accepted:
                        refused.append(err)
                    if not repeated:
                        _say(f"[{label(place)}] failed: {said}")
                    errors[place] = said
                    if not E.may_collect_later(err):
                        ended.update(mine)
                    return
                ended.update(mine)
                if place not in got and not saver.held:
                    errors[place] = "The service sent no image."

        _say(f"Columns: {', '.join(columns)}" + (f"; rows: {', '.join(rows)}" if rows else ""))
        interrupted = False
        try:
            await asyncio.gather(*(run_cell(cell.place, cell.request) for cell in plan.cells()))
        except asyncio.CancelledError:  # Ctrl+C: the sheet of what arrived, then the end
            interrupted = True
            # A second Ctrl+C would end the loop with saves still writing into the library
            # as it closes: the few seconds to finish them and the sheet are not interrupted.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _say("krea-desktop: cancelling; finishing the images on their way and the contact sheet…")
            if saving:
                await asyncio.wait(set(saving))
        finally:
            # A cell stopped while it waited to be sent again (refused outright, or its ID
            # unknown to the service) left the service nothing: not kept, not promised.
            ended.update(t for t in tasks if client.never_reached(t))
            if await backend.closed():  # Ctrl+C reaching the HTTP library as it closed
                interrupted = True

        async def unstoppable(work: Callable[[], T]) -> T:
            """``work`` on a worker thread, run to its end even if Ctrl+C comes meanwhile
            (the run then ends as cancelled, after the contact sheet)."""
            nonlocal interrupted
            job = asyncio.ensure_future(asyncio.to_thread(work))
            try:
                return await asyncio.shield(job)
            except asyncio.CancelledError:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                interrupted = True
                return await job

        if saver.held:  # held back by a library busy for a moment: saved now, if it has let go
            deliver(await unstoppable(saver.retry))
        held = {image.task_uuid for image in saver.held}  # paid images still outside the library
        for task_uuid, earlier_task in earlier.items():  # collected, its images in the library at last
            if task_uuid not in held:
                pending.finished(earlier_task)
        spilled = await unstoppable(saver.spill) if saver.held else None
        for task_uuid, task in list(tasks.items()):
            # A task whose images are all in the library is done (a cell has one image: a
            # cell that has it is done, though Ctrl+C cut its task off before it ended); one
            # with images held (in a temporary folder, or not written at all) is kept for the
            # next run to collect.
            if (task_uuid in ended or place_of.get(task_uuid) in got) and task_uuid not in held:
                pending.finished(task)
        held_places = {place_of[t] for t in held if t in place_of}
        # Cells whose task was sent and its record kept, cut off by Ctrl+C: paid for, and
        # collected by the next run (said so, not "Cancelled." as for cells never sent).
        later_places = {place_of[t] for t in tasks if t not in ended and t in place_of} - set(got)
        args.cells_kept_for_later = len(later_places) if interrupted else 0
        cells: list[SheetCell] = []
        for cell in plan.cells():
            entries = got.get(cell.place)
            if entries:
                cells.append(SheetCell(cell.place, entries[0].image_uuid, entries[0].path))
            elif cell.place in errors:
                cells.append(SheetCell(cell.place, error=errors[cell.place]))
            elif cell.place in held_places:
                cells.append(SheetCell(cell.place, error=f"Not saved in the library: {saver.reason}."))
            elif interrupted and cell.place in later_places:
                cells.append(SheetCell(cell.place, error=CELL_COLLECTED_LATER))
            elif interrupted:
                cells.append(SheetCell(cell.place, error="Cancelled."))
            else:
                cells.append(SheetCell(cell.place, error="The service sent no image."))
        # Cut off before any image came: a sheet only when cells were sent, for the next run
        # that collects them to draw again with their images (with none, it had no sheet to
        # draw, and the images came with none).
        if interrupted and not any(cell.image_uuid for cell in cells) and not later_places:
            if spilled is not None:
                _say(f"krea-desktop: some paid images could not be saved in the library; they are in {spilled}.")
            raise asyncio.CancelledError

        unsaved = LibraryError(
            f"Some paid images could not be saved in the library because {saver.reason}; "
            f"they were written to {spilled} instead."
        )
        if not any(cell.image_uuid for cell in cells) and not interrupted:
            # Nothing in the library: a contact sheet of errors alone is no picture worth keeping.
            if spilled is not None:
                raise unsaved
            if refused:
                raise refused[0]
            first = next((cell.error for cell in cells if cell.error), None)
            raise E.KreaError(
                f"None of the {plan.task_count} cells made an image" + (f": {first.rstrip('.')}." if first else ".")
            )
        base_record = plan.base.describe()
        _say("Drawing the contact sheet…")
        ref_names = plan.reference_names
        drawing = asyncio.ensure_future(
            asyncio.to_thread(save_sheet, library, base_record, plan.tag(), cells, (width, height), ref_names)
        )
        try:
            try:
                sheet = await asyncio.shield(drawing)
            except asyncio.CancelledError:  # Ctrl+C while it is drawn: a few seconds more, then the end
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                interrupted = True
                sheet = await drawing
        except (OSError, LibraryError) as exc:
            if spilled is not None:  # where the paid images went matters more than the sheet
                raise unsaved from exc
            raise
        sheet_path = sheet.path
        if args.out:
            target = args.out / sheet.path.name
            try:
                write_among_users_files(target, sheet.path.read_bytes())
                sheet_path = target
            except OSError as exc:
                out_problem = f"some could not be copied into --out: {describe_failure(exc, args.out)}"
        failed = sum(1 for c in cells if c.error)
        _say(f"Contact sheet: {sheet_path.name}")
        console.line(console.one_line(str(sheet_path)))
        if interrupted:
            if spilled is not None:
                _say(f"krea-desktop: some paid images could not be saved in the library; they are in {spilled}.")
            raise asyncio.CancelledError  # the run ends as cancelled (130), the sheet saved
    finally:
        library.close()
    if spilled is not None:
        raise unsaved
    if failed:
        raise E.KreaError(f"{failed} of {plan.task_count} cells failed; their places are marked on the contact sheet.")
    if out_problem:
        raise LibraryError(f"The images are in the library, but {out_problem}.")
    return 0
