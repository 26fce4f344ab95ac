"""The ``krea-desktop`` command: the window, ``generate``, ``sweep``, ``info`` and ``simulator``."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from krea_desktop import __version__, console
from krea_desktop import display as display_check
from krea_desktop.api import errors as E
from krea_desktop.api import spec
from krea_desktop.cli_words import EARLIER_UNEXPECTED, in_the_users_words, note_unexpected
from krea_desktop.wording import counted, within

# Opening the window imports nothing of the command-line generator: the window's start-up
# time counts every import made before its first paint.
if TYPE_CHECKING:
    import argparse

    from krea_desktop.api.request import ReferenceImage


def parse_ref(text: str) -> ReferenceImage:
    """``PATH_OR_URL[@STRENGTH]``: the strength suffix is optional (default +0.7). The
    image is only named here; :func:`~krea_desktop.library.inputs.keep_references` reads and checks it."""
    import argparse

    from krea_desktop.api.request import ReferenceImage, path_as_typed
    from krea_desktop.library.inputs import is_data_uri, is_web_url

    source, strength = text, spec.DEFAULT_STRENGTH
    head, sep, tail = text.rpartition("@")
    if sep and head and not path_as_typed(text).is_file():  # a file named "shot@2" is that file
        try:
            strength = float(tail)
            source = head
        except ValueError:
            # An "@" that belongs to the URL or file name; unless the file is the part
            # before it, and what follows was meant as its strength.
            if not path_as_typed(text).exists() and path_as_typed(head).is_file():
                said = f"the strength “{tail}” after {head}@ is not a number"
                if not tail:
                    said = f"no strength follows {head}@"
                raise argparse.ArgumentTypeError(f"{said}; give one from -2 to 2, as in {head}@0.7") from None
    if not (spec.STRENGTH_MIN <= strength <= spec.STRENGTH_MAX):  # nan fails this too
        raise argparse.ArgumentTypeError(f"the strength {tail} after {head}@ is not from -2 to 2, as in {head}@0.7")
    try:
        web = is_web_url(source)
    except ValueError:  # "http://[::1": a bracket left open
        web = False
    if web or is_data_uri(source):
        return ReferenceImage(source.strip(), strength)
    if not source.strip():
        raise argparse.ArgumentTypeError("an empty reference names no image; give a file, or an http(s) address")
    scheme = source.partition("://")[0]
    if scheme.lower() == "file":  # as a file manager copies a file's place
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return ReferenceImage(Path(url2pathname(urlsplit(source).path)), strength)
    if scheme.lower() in ("http", "https"):
        raise argparse.ArgumentTypeError(
            f"“{source.strip()}” is not a complete web address; give a file, or an address such as "
            "https://example.com/image.png"
        )
    if scheme != source and scheme.isalpha() and len(scheme) > 1:  # "C:\\..." is a file
        raise argparse.ArgumentTypeError(f"{scheme}:// addresses cannot be read; give a file, or an http(s) address")
    return ReferenceImage(path_as_typed(source), strength)


def _typed_path(text: str) -> Path:
    """A folder as typed: ``--out=~/pics`` is in the home folder, as ``--out ~/pics`` (the
    shell's) is; argparse's own Path made a folder named "~"."""
    import argparse

    from krea_desktop.api.request import path_as_typed

    if not text.strip():  # an unset variable ("--out $OUT"): not the current folder
        raise argparse.ArgumentTypeError("an empty folder name names no folder")
    return path_as_typed(text)


def _creativity(text: str) -> str:
    """A creativity level in any case, as ``--vary creativity=…`` takes it."""
    import argparse

    level = text.strip().lower()
    if level not in spec.CREATIVITY_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(spec.CREATIVITY_LEVELS)}")
    return level


def _format(text: str) -> str:
    import argparse

    value = spec.normalize_output_format(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(spec.OUTPUT_FORMATS)}")
    return value


def _seed(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not spec.SEED_MIN <= value <= spec.SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be from {spec.SEED_MIN} to {spec.SEED_MAX}")
    return value


def _ranged(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        import argparse

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}")
        return value

    return parse


COMMANDS = ("generate", "sweep", "info", "simulator")


def build_window_parser() -> argparse.ArgumentParser:
    """``krea-desktop [IMAGE ...]``: the window, showing each IMAGE with the parameters it
    carries (how "Open With" and the .desktop file's ``Exec=krea-desktop %F`` call it)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="krea-desktop",
        description="Open the window; IMAGE files are shown with the parameters they carry.",
        epilog=(
            "without a window:\n  krea-desktop {generate,sweep,info,simulator} --help\n"
            "in the desktop's menu:\n  krea-desktop --install-desktop-entry    (--uninstall-desktop-entry takes it out)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"krea-desktop {__version__}")
    parser.add_argument(
        "--smoke-test", action="store_true", help="open the window offscreen, make one demo image, exit"
    )
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="a PNG, JPEG or WEBP file to open")
    return parser


def _add_generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt")
    parser.add_argument("--ratio", default=spec.DEFAULT_RATIO, choices=list(spec.RATIOS_BY_NAME))
    parser.add_argument("--seed", type=_seed, help=f"from {spec.SEED_MIN} to {spec.SEED_MAX:,} (default: random)")
    parser.add_argument(
        "--creativity",
        type=_creativity,
        default=None,  # spec.DEFAULT_CREATIVITY, once it is known not to be given (sweep)
        metavar="{" + ",".join(spec.CREATIVITY_LEVELS) + "}",
        help=f"{', '.join(spec.CREATIVITY_LEVELS)} (default: {spec.DEFAULT_CREATIVITY})",
    )
    parser.add_argument("--format", type=_format, default=spec.DEFAULT_OUTPUT_FORMAT, help="PNG, JPG or WEBP")
    parser.add_argument(
        "--quality",
        type=_ranged(spec.QUALITY_MIN, spec.QUALITY_MAX),
        default=spec.DEFAULT_QUALITY,
        help=f"{spec.QUALITY_MIN} to {spec.QUALITY_MAX} (default: {spec.DEFAULT_QUALITY})",
    )
    parser.add_argument(
        "--ref",
        type=parse_ref,
        action="append",
        default=[],
        metavar="PATH_OR_URL[@STRENGTH]",
        help="a reference image and its strength from -2 (away) to 2 (toward); repeatable, up to 10",
    )
    parser.add_argument("--out", type=_typed_path, help="also copy each image into this folder")
    parser.add_argument("--demo", action="store_true", help="use the built-in simulator even if a key is set")
    parser.add_argument("--safety", action="store_true", help="ask the service to check content")


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="krea-desktop", description="Iterate on images with Krea 2 Medium.")
    parser.add_argument("--version", action="version", version=f"krea-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate images without opening the window")
    _add_generate_options(gen)
    gen.add_argument(
        "--count",
        type=_ranged(spec.RESULTS_MIN, spec.RESULTS_MAX),
        default=1,
        help=f"images to make, {spec.RESULTS_MIN} to {spec.RESULTS_MAX} (default: 1)",
    )
    gen.add_argument(
        "--delivery",
        choices=spec.DELIVERY_METHODS,
        help="sync waits for the whole batch; async (the default for batches) shows each image",
    )

    sweep = sub.add_parser(
        "sweep",
        help="generate a grid of variations and its contact sheet",
        description="One task per cell, at one fixed seed unless the seed is an axis. Prints one saved path "
        "per cell, then the contact sheet's path as the last line.",
    )
    _add_generate_options(sweep)
    sweep.add_argument(
        "--vary",
        action="append",
        default=[],
        required=True,
        metavar="AXIS=V1,V2,...",
        help="AXIS is ref1..ref10 (that --ref's strength), creativity or seed; one or two --vary",
    )
    sweep.add_argument("--delivery", choices=spec.DELIVERY_METHODS, help="how each cell's image is delivered")
    sweep.add_argument("--yes", action="store_true", help="send without asking (required when not at a terminal)")

    info = sub.add_parser("info", help="print the parameters the app recalls from image files")
    info.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="a PNG, JPEG or WEBP file")
    info.add_argument("--json", action="store_true", help="one JSON object per file, in the order given")

    sim = sub.add_parser("simulator", help="serve the built-in Runware simulator on this machine")
    from krea_desktop.simulator.cli import add_arguments

    add_arguments(sim)
    return parser


async def _generate(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from krea_desktop.api.record import GenerationRecord
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.backend import demo_notice, open_backend
    from krea_desktop.fsutil import write_among_users_files
    from krea_desktop.library.inputs import keep_references_aside, with_parents
    from krea_desktop.library.lineage import parent_of
    from krea_desktop.library.paths import data_dir
    from krea_desktop.library.pending import COLLECT_FIRST_S, PendingTask, PendingTasks, set_aside_notice
    from krea_desktop.library.saving import SaveQueue, check_writable, describe_failure, prepare_out_folder
    from krea_desktop.library.store import LibraryEntry, LibraryError
    from krea_desktop.sweep_cli import EarlierOut, redraw_sheets_of

    refs = tuple(args.ref)
    if len(refs) > spec.MAX_REFERENCES:
        raise E.ValidationError(f"At most {spec.MAX_REFERENCES} references can be used; {len(refs)} were given.")
    request = GenerationRequest(
        prompt=args.prompt,
        ratio=args.ratio,
        number_results=args.count,
        seed=args.seed,
        creativity=args.creativity or spec.DEFAULT_CREATIVITY,
        references=refs,
        output_format=args.format,
        output_quality=args.quality,
        delivery_method=args.delivery or ("async" if args.count > 1 else "sync"),
        check_content=args.safety,
    )
    request.validate()  # before any reference is read or downloaded
    folder = data_dir()
    kept = await keep_references_aside(refs, folder / "references") if refs else []
    if args.out:
        prepare_out_folder(args.out)
    backend = open_backend(data_dir=folder, demo=args.demo)
    if kept:
        parents = await asyncio.to_thread(
            with_parents, kept, lambda loaded, path: parent_of(backend.library, loaded, path)
        )
        request = dataclasses.replace(request, references=parents)
    if backend.library.notice:
        console.line(f"krea-desktop: {backend.library.notice}", err=True)
    if backend.demo:
        console.line(demo_notice(args.demo, folder, backend.key_problem), err=True)
    saver = SaveQueue(backend.library)
    pending = PendingTasks(folder)
    tasks: dict[str, PendingTask] = {}  # taskUUID -> its record of paid work
    current_uuid = request.task_uuid
    done = 0
    out_problem: str | None = None

    def say(msg: str) -> None:
        console.line(msg, err=True)

    earlier_out = EarlierOut(say)  # the --out folders of earlier runs whose images are collected

    def mark(entry: LibraryEntry) -> None:
        """Note a saved image in its task's record (the next run does not fetch it again)."""
        task = tasks.get(entry.task_uuid or "")
        if task is not None:
            pending.received(task, entry.image_uuid)

    def submitted(sent: GenerationRequest, wire: list[dict[str, Any]], record: GenerationRecord) -> None:
        nonlocal current_uuid
        old = tasks.pop(current_uuid, None)
        if old is not None:  # sent again under a new taskUUID: the old one was never accepted
            pending.finished(old)
        current_uuid = sent.task_uuid
        # Noted for the next run to collect, where it can (not the demo simulator's), with
        # --out: the run that collects the rest (if not this one) copies them there too.
        task = (
            pending.submitted(sent, wire, record, backend.client.base_url, args.out)
            if backend.client.collectable_later
            else None
        )
        if task is not None:
            tasks[sent.task_uuid] = task
        # Said at once, should a second Ctrl+C end the run before its end says it again.
        args.kept_for_later = task is not None

    def deliver(entry: LibraryEntry) -> None:
        nonlocal done, out_problem
        if entry.task_uuid != current_uuid:  # copied into its run's --out, if it had one
            earlier_out.saved(entry, tasks.get(entry.task_uuid or ""))
            mark(entry)
            return
        path = entry.path
        if args.out:
            target = args.out / path.name
            try:
                write_among_users_files(target, path.read_bytes())  # never a truncated copy
                path = target
            except OSError as exc:
                out_problem = f"some could not be copied into --out: {describe_failure(exc, args.out)}"
        done += 1
        seed = "no seed" if entry.seed is None else f"seed {entry.seed}"
        # A service that sends more than was asked: each is kept (paid for) and counted.
        say(f"[{done}/{max(done, request.number_results)}] saved {path.name} ({seed})")
        console.line(console.one_line(str(path)))
        # Noted as received last: a second Ctrl+C before this leaves the image to be
        # fetched again by the next run (the library keeps it once), rather than kept
        # but never copied into --out nor said.
        mark(entry)

    async def save(image: Any) -> None:
        """``image`` saved on a worker thread, then handed over. Ctrl+C meanwhile does not
        stop the save (the thread runs on): it is waited for and its image handed over
        before the run stops; saved but not handed over, it was neither printed, copied
        into --out, nor noted as received (the next run fetched it again)."""
        job = asyncio.ensure_future(asyncio.to_thread(saver.save, image))
        try:
            entries = await asyncio.shield(job)
        except asyncio.CancelledError:
            for entry in await job:
                deliver(entry)
            raise
        for entry in entries:
            deliver(entry)

    ended_cleanly: set[str] = set()  # tasks with nothing more to collect
    try:
        check_writable(backend.library, request.number_results, notes=backend.client.collectable_later)
        # Paid work of runs that ended early (a crash, a kill, Ctrl+C) is collected first.
        abandoned = pending.claim_abandoned(backend.client.base_url, collectable=backend.client.collectable_later)
        if pending.set_aside:
            say(f"krea-desktop: {set_aside_notice(pending.set_aside, pending.folder)}")
        for task in abandoned:
            tasks[task.task_uuid] = task
            say(f"Collecting the rest of an earlier run's task {task.task_uuid}…")
            try:
                async for image in backend.client.collect(
                    task.request, task.record, task.received, within=COLLECT_FIRST_S
                ):
                    await save(image)
                ended_cleanly.add(task.task_uuid)
            except E.KreaError as err:
                if E.may_collect_later(err) or (isinstance(err, E.COLLECT_LATER) and not E.service_gave_up(err)):
                    why = within(in_the_users_words(err))
                    say(
                        f"krea-desktop: an earlier task could not be collected now ({why}); "
                        "it is tried again next time."
                    )
                    continue
                ended_cleanly.add(task.task_uuid)  # failed for good: trying again would fail the same way
                say(f"krea-desktop: {in_the_users_words(err)}")
            except Exception:  # a mistake of this program's: this run's own work goes on, the task kept
                say(f"krea-desktop: {EARLIER_UNEXPECTED}")
                note_unexpected(task.task_uuid)
        await redraw_sheets_of(abandoned, backend.library, say, earlier_out)
        try:
            async for image in backend.client.generate(request, on_status=say, on_submitted=submitted):
                await save(image)
                if saver.problem:
                    say(f"krea-desktop: {saver.problem}")
            ended_cleanly.add(current_uuid)
        except E.KreaError as err:
            # Kept when the service may still finish it: the next run collects what it makes.
            if E.may_collect_later(err):
                # Said so only when the task's record was written (a task was sent, and the
                # note of it kept): an upload of a reference that broke off sent no task.
                err.record_kept = current_uuid in tasks
            else:
                ended_cleanly.add(current_uuid)  # refused, never sent, or failed for good
            raise
    finally:
        if backend.client.never_reached(current_uuid):  # stopped while waiting to send it again
            ended_cleanly.add(current_uuid)  # the service never took it: nothing to collect
        # Ctrl+C can reach the HTTP library's own waits as it closes, and cancel this task a
        # second time: the images held, the task's record and what the run says are seen to
        # all the same, and the cancel goes on once they are.
        cancelled_closing = await backend.closed()
        for entry in await asyncio.to_thread(saver.retry):
            deliver(entry)
        spilled = await asyncio.to_thread(saver.spill) if saver.held else None
        for task_uuid in ended_cleanly:
            # Images spilled outside the library keep their task's record: the next run
            # collects them into it (a temporary folder does not outlive a restart).
            if task_uuid in tasks and not saver.held and spilled is None:
                pending.finished(tasks[task_uuid])
        # What a Ctrl+C says: this run's task, sent and its record kept, is collected by the
        # next run (an earlier run's left uncollected says so where it failed).
        args.kept_for_later = current_uuid in tasks and current_uuid not in ended_cleanly
        backend.library.close()
        if cancelled_closing:
            raise asyncio.CancelledError
    if spilled is not None:
        raise LibraryError(
            f"Some paid images could not be saved in the library because {saver.reason}; "
            f"they were written to {spilled} instead."
        )
    if saver.held:
        raise LibraryError(f"{counted(len(saver.held), 'paid image')} could not be saved because {saver.reason}.")
    if out_problem:
        raise LibraryError(f"The images are in the library, but {out_problem}.")
    return 0


def _cannot_open(why: str) -> int:
    print(f"krea-desktop: {why}; at a terminal, use generate, sweep or info (see --help).", file=sys.stderr)
    return 1


def _open_window(*, smoke_test: bool = False, open_paths: Sequence[Path] = ()) -> int:
    why, x11 = (None, "") if smoke_test else display_check.find_display()
    if why is not None:
        return _cannot_open(why)
    preflight = display_check.X11Preflight(x11) if x11 else None
    # The imports before the first paint (Qt's bindings, then the window's modules) make
    # many objects and no cycles worth finding: without the cyclic collector running
    # through them, nor the bindings' source scan, the window is ready about 15 ms sooner.
    # run_app collects again, on the GUI thread, once the window is built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from krea_desktop.ui.bindings import load_for_window

        try:
            load_for_window()
            from krea_desktop.ui.app import run_app
        except (ImportError, OSError) as exc:  # Qt's own libraries need a system one that is missing
            why = preflight.why() if preflight is not None else None
            return _cannot_open(why or f"Qt could not be loaded ({exc}), so the window cannot open")
        why = preflight.why() if preflight is not None else None
        if why is not None:  # before Qt is asked for the display: it would abort
            return _cannot_open(why)
        return run_app(smoke_test=smoke_test, open_paths=open_paths)
    except KeyboardInterrupt:  # Ctrl+C before the window was up (once up, it closes the window)
        return 130
    finally:
        # Unless the window's threads still run, collected from its GUI thread meanwhile
        # (ui/collector.py: loaded once a window is built).
        collector = sys.modules.get("krea_desktop.ui.collector")
        if collecting and (collector is None or collector.installed() is None):
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--base64-helper"]:  # the bundle's executable serving as its own decode helper
        from krea_desktop.api.b64helper import main as helper_main

        return helper_main()
    if argv[:1] in (["--install-desktop-entry"], ["--uninstall-desktop-entry"]):
        from krea_desktop.desktop_entry import main as desktop_entry_main

        return desktop_entry_main(argv)
    if not argv:  # the window, as a double-click starts it: no parser to load
        return _open_window()
    words = [a for a in argv if not a.startswith("-")]
    if sys.stderr is None:  # started with it closed ("2>&-"): print() would write its lines into the output
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    if words and words[0] not in COMMANDS and not os.path.lexists(words[0]):
        import difflib

        meant = difflib.get_close_matches(words[0], COMMANDS, n=1, cutoff=0.6)
        if meant:  # "generat": a command mistyped, not an image to open in the window
            print(
                f"krea-desktop: there is no command or file “{console.shown(words[0])}”; did you mean {meant[0]}?",
                file=sys.stderr,
            )
            return 2
        if not os.path.splitext(words[0])[1] and os.sep not in words[0] and "/" not in words[0]:
            # "help", "gen", a prompt without "generate": neither a command nor an image's name
            print(
                f"krea-desktop: there is no command or file “{console.shown(words[0])}”; "
                f"the commands are {', '.join(COMMANDS[:-1])} and {COMMANDS[-1]} (see --help).",
                file=sys.stderr,
            )
            return 2
    if not words or words[0] not in COMMANDS:
        # argparse cannot put optional file names beside subcommands: the window has its own parser
        window_args = build_window_parser().parse_args(argv)
        return _open_window(smoke_test=window_args.smoke_test, open_paths=window_args.images)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("generate", "sweep"):
        from krea_desktop.library.paths import ENV_DATA_DIR, data_dir
        from krea_desktop.library.store import LibraryError
        from krea_desktop.logfile import logging_to

        if os.environ.get(ENV_DATA_DIR) is not None and not os.environ[ENV_DATA_DIR].strip():
            # Set, but to nothing (a script's variable left empty, say): taken as unset, as the
            # window takes it, and said, since the images go into the person's own library.
            print(
                f"krea-desktop: {ENV_DATA_DIR} is set but empty, so the library in {data_dir()} is used.",
                file=sys.stderr,
            )
        try:
            # What the library and the client note of their working goes to the log file,
            # as the window's does; the terminal gets the command's own sentences.
            with logging_to(data_dir() / "logs"):
                if args.command == "sweep":
                    from krea_desktop.sweep_cli import run_sweep

                    code = run_interruptibly(run_sweep(args))
                else:
                    code = run_interruptibly(_generate(args))
            unwritten = console.output_problem()
            if unwritten is not None:
                print(
                    f"krea-desktop: the output could not be written ({unwritten}); every image is in the library.",
                    file=sys.stderr,
                )
                return code or 1
            return code
        except (E.KreaError, LibraryError) as err:
            print(f"krea-desktop: {console.shown(in_the_users_words(err))}", file=sys.stderr)
            # A value the model does not take (a prompt too short, an eleventh --ref, a --vary
            # out of range) is the command's use, as an option that cannot be parsed is: 2,
            # which a script tells from the service or the library failing (1).
            return 2 if isinstance(err, E.ValidationError) and not err.task_accepted else 1
        except OSError as exc:  # a file or folder the command line had to use
            name = f" ({exc.filename})" if exc.filename else ""
            print(f"krea-desktop: {exc.strerror or exc}{name}.", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if getattr(args, "kept_for_later", False):  # generate, a task sent and not ended
                print(
                    "krea-desktop: cancelled; the rest of the task's images are collected by the next run.",
                    file=sys.stderr,
                )
            elif getattr(args, "cells_kept_for_later", 0):  # sweep: cells sent and not ended
                from krea_desktop.wording import counted

                cells = counted(args.cells_kept_for_later, "cell")
                print(
                    f"krea-desktop: cancelled; the images of {cells} already sent are collected by the next run.",
                    file=sys.stderr,
                )
            else:
                print("krea-desktop: cancelled.", file=sys.stderr)
            return 143 if terminated() else 130
    if args.command == "info":
        from krea_desktop.info import run as run_info

        try:
            return run_info(args.images, as_json=args.json)
        except KeyboardInterrupt:
            print("krea-desktop: cancelled.", file=sys.stderr)
            return 130
    from krea_desktop.simulator.cli import run

    return run(args)


def run_interruptibly(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)``, Ctrl+C ending it as Python 3.11 and later mean to: the first
    cancels ``main``, whose own ``except CancelledError`` then says what was kept and saves
    what it holds, and KeyboardInterrupt is raised once it has ended; a second ends it at
    once. SIGTERM (``kill``, ``timeout``, a service manager stopping it) ends it the same
    way (see :func:`terminated`).

    Both are handled here in every version. Before 3.11, asyncio.run let KeyboardInterrupt
    out wherever the program was (in the middle of a file's save) without cancelling
    anything; from 3.11 it cancels ``main`` inside the signal handler, which can land
    between two lines of asyncio's own (see :func:`_run_with_signals_cancelling`)."""
    import asyncio
    import signal

    return _run_with_signals_cancelling(main, asyncio.run, (signal.SIGINT, signal.SIGTERM))


_TERMINATED: list[bool] = []  # SIGTERM ended the last command run interruptibly


def terminated() -> bool:
    """Whether SIGTERM ended the command: its exit code is then 143 (128 + 15), not 130."""
    return bool(_TERMINATED)


def _run_with_signals_cancelling(
    main: Coroutine[Any, Any, int], run: Callable[[Any], int], signals: Sequence[int]
) -> int:
    """``run(main)`` (a function that runs a coroutine to its end on a loop of its own),
    each of ``signals`` (SIGINT, SIGTERM) whose handling is still Python's default
    cancelling ``main`` first, and ending it at once the second time; then
    KeyboardInterrupt (see :func:`run_interruptibly`)."""
    import asyncio
    import contextlib
    import signal
    import threading

    defaults: dict[int, Callable[[int, Any], Any] | int] = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: signal.SIG_DFL,
    }
    if threading.current_thread() is not threading.main_thread():
        return run(main)  # signals are someone else's here
    ours = [s for s in signals if signal.getsignal(s) is defaults.get(s)]  # not another program's
    if not ours:
        return run(main)
    running: list[tuple[asyncio.Task[Any], asyncio.AbstractEventLoop]] = []
    interrupted = False
    _TERMINATED.clear()

    async def noted() -> int:
        task = asyncio.current_task()
        assert task is not None
        running.append((task, asyncio.get_running_loop()))
        return await main

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal interrupted
        if signum == signal.SIGTERM:
            _TERMINATED[:] = [True]
        if interrupted or not running or running[0][0].done():
            raise KeyboardInterrupt
        interrupted = True
        task, loop = running[0]
        # Cancelled by the loop, between two steps. A signal's handler runs between any two
        # lines of the step it interrupts: cancelled here, the tasks ``main`` waits for and
        # the futures they wait on could be cancelled between asyncio's check that a future
        # is pending and the setting of its result (a Semaphore waking its next waiter),
        # and the command ended in InvalidStateError instead of saying what it kept.
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to cancel
            loop.call_soon_threadsafe(task.cancel)

    for signum in ours:
        signal.signal(signum, on_signal)
    try:
        return run(noted())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum in ours:
            signal.signal(signum, defaults[signum])


if __name__ == "__main__":
    raise SystemExit(main())
