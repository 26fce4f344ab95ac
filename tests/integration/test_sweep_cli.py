"""``krea-desktop sweep`` and lineage from the command line, against the simulator on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from krea_desktop.library.metadata import read_record
from krea_desktop.library.sheet import SheetCell, sheet_cells_of, sheet_reference_names_of
from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.sweep_cli import CELL_COLLECTED_LATER
from tests.helpers.sim import Paced, Sim

KEY = "sk-test-sweep-1234"


def run_cli(args: list[str], env: dict[str, str], stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krea_desktop", *args], env=env, capture_output=True, text=True, timeout=120, stdin=stdin
    )


@pytest.fixture
def service_env(env: dict[str, str], sim: Sim) -> dict[str, str]:
    return {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": sim.url}


def tasks_of(sim: Sim, task_type: str) -> list[dict[str, Any]]:
    return [t for _headers, tasks in sim.service.requests for t in tasks if t.get("taskType") == task_type]


def references(tmp_path: Path) -> list[Path]:
    paths = []
    for i, colour in enumerate(((200, 40, 40), (40, 40, 200))):
        path = tmp_path / f"ref{i + 1}.png"
        Image.new("RGB", (96, 64), colour).save(path)
        paths.append(path)
    return paths


def test_a_5x2_sweep_sends_one_task_per_cell_at_one_seed_and_uploads_each_reference_once(
    service_env: dict[str, str], sim: Sim, tmp_path: Path
) -> None:
    ref1, ref2 = references(tmp_path)
    r = run_cli(
        [
            "sweep",
            "a red fox in snow",
            "--ref",
            str(ref1),
            "--ref",
            f"{ref2}@0.5",
            "--vary",
            "ref1=-2,-1,0,1,2",
            "--vary",
            "creativity=raw,high",
            "--yes",
        ],
        service_env,
    )
    assert r.returncode == 0, r.stderr
    inference = tasks_of(sim, "imageInference")
    assert len(inference) == 10
    assert {t["numberResults"] for t in inference} == {1}
    assert len({t["seed"] for t in inference}) == 1
    cells = sorted((t["inputs"]["referenceImages"][0]["strength"], t["settings"]["creativity"]) for t in inference)
    assert cells == sorted((s, c) for s in (-2, -1, 0, 1, 2) for c in ("raw", "high"))
    assert {t["inputs"]["referenceImages"][1]["strength"] for t in inference} == {0.5}
    assert len(tasks_of(sim, "imageUpload")) == 2  # one upload per reference, whatever the cells

    lines = r.stdout.splitlines()
    assert len(lines) == 11
    for line in lines[:10]:
        record = read_record(Path(line))
        assert record is not None and record.sweep is not None and len(record.sweep.place) == 2
        column, row = record.sweep.place
        assert record.references[0].strength == (-2, -1, 0, 1, 2)[column]
        assert record.creativity == ("raw", "high")[row]
    sheet = Path(lines[-1])
    sheet_record = read_record(sheet)
    assert sheet_record is not None and sheet_record.sweep is not None and sheet_record.sweep.is_sheet
    assert len({read_record(Path(p)).sweep.id for p in lines}) == 1  # type: ignore[union-attr]
    assert len(sheet_cells_of(sheet_record)) == 10
    # Its strength axis is titled with the file given, as the window's sheet would be.
    assert sheet_reference_names_of(sheet_record) == (ref1.name, ref2.name)
    assert "Traceback" not in r.stderr


def test_a_failed_cell_keeps_its_place_on_the_sheet_and_the_exit_says_so(service_env: dict[str, str], sim: Sim) -> None:
    sim.service.inject("task-error")
    r = run_cli(["sweep", "a lighthouse", "--vary", "seed=1,2,3", "--yes"], service_env)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 3  # two cells and the sheet, last
    sheet_record = read_record(Path(lines[-1]))
    assert sheet_record is not None
    cells = sheet_cells_of(sheet_record)
    assert sorted(c.place for c in cells) == [(0,), (1,), (2,)]
    failed = [c for c in cells if c.error]
    assert len(failed) == 1 and failed[0].image_uuid is None
    last = r.stderr.strip().splitlines()[-1]
    assert "1 of 3 cells failed" in last and "Traceback" not in r.stderr


# The library refuses the first save once (a disk full for a moment, or another process
# holding its lock): that image is held and saved with the next cell's.
_FIRST_SAVE_FAILS = """
import errno, sys, threading
from krea_desktop.library import store
save, lock, calls = store.Library.save, threading.Lock(), []
def flaky(self, image, created_at=None, **kw):
    with lock:
        calls.append(image.image_uuid)
        first = len(calls) == 1
    if first:
        raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, image, created_at, **kw)
store.Library.save = flaky
from krea_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_image_the_library_held_back_for_a_moment_is_in_its_own_cell(service_env: dict[str, str], sim: Sim) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _FIRST_SAVE_FAILS, "sweep", "a lighthouse", "--vary", "seed=1,2,3", "--yes"],
        env=service_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "krea-desktop: 1 paid image is kept in memory because the disk holding" in r.stderr  # said, as it is held
    lines = r.stdout.splitlines()
    assert len(lines) == 4  # three cells and the sheet, last
    record = read_record(Path(lines[-1]))
    assert record is not None
    cells = sheet_cells_of(record)
    assert all(c.image_uuid and not c.error for c in cells)
    data = Path(service_env["KREA_DESKTOP_DATA_DIR"])
    with Library(data) as lib:
        for cell in cells:
            entry = lib.get_by_uuid(str(cell.image_uuid))
            assert entry is not None and entry.seed == (1, 2, 3)[cell.place[0]]
    for line in r.stderr.splitlines():  # each line names the cell its image belongs to
        if line.startswith("[") and ": saved " in line:
            name = line.rsplit(" ", 1)[-1].removesuffix(".png")
            seed = int(line.split("] ", 1)[1].split(":", 1)[0].removeprefix("seed "))
            with Library(data) as lib:
                entry = lib.get_by_uuid(name)
                assert entry is not None and entry.seed == seed, line
    assert not list((data / "pending").glob("*")), "every task's images arrived"


# Saves that fail from the n-th on (a disk filling up), and a spill that may fail too.
_SAVES_FAIL = """
import errno, sys, threading, time
from krea_desktop.library import saving, store
save, lock, calls = store.Library.save, threading.Lock(), []
first_failing, spill_fails, slow_retry = int(sys.argv[1]), sys.argv[2] == "spill-fails", sys.argv[3] == "slow-retry"
def flaky(self, image, created_at=None, **kw):
    with lock:
        calls.append(image.image_uuid)
        n = len(calls)
    if n == first_failing or (n > first_failing and not slow_retry):
        raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, image, created_at, **kw)
store.Library.save = flaky
if spill_fails:
    saving.SaveQueue.spill = lambda self, folder=None: None  # nothing could be written there either
if slow_retry:
    retry = saving.SaveQueue.retry
    def slow(self):
        print("RETRYING", file=sys.stderr, flush=True)
        time.sleep(1.5)
        return retry(self)
    saving.SaveQueue.retry = slow
from krea_desktop.cli import main
sys.exit(main(sys.argv[4:]))
"""


def spill_env(service_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The service's environment with the system's temporary folder in ``tmp_path``: images
    that cannot be saved in the library are spilled there, not into the real /tmp."""
    return {**service_env, "TMPDIR": str(tmp_path)}


def run_failing(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SAVES_FAIL, *args], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_paid_images_that_could_be_written_nowhere_keep_their_tasks_and_the_others_end(
    service_env: dict[str, str], sim: Sim, tmp_path: Path
) -> None:
    pending = Path(service_env["KREA_DESKTOP_DATA_DIR"]) / "pending"
    sweep = ["sweep", "a lighthouse", "--vary", "seed=1,2,3,4", "--yes", "--delivery", "sync"]
    # The fourth save fails and the spill works: only that image's task waits to be collected.
    env = spill_env(service_env, tmp_path)
    r = run_failing(env, "4", "spill-works", "-", *sweep)
    assert r.returncode == 1 and "written to" in r.stderr, r.stderr
    assert len(list(pending.glob("*.json"))) == 1
    spilled = [p for p in tmp_path.glob("krea-desktop-unsaved-*/*") if p.is_file()]
    assert len(spilled) == 1 and str(spilled[0].parent) in r.stderr  # the image, where the message says
    for leftover in pending.glob("*.json"):
        leftover.unlink()
    # Every save fails and nothing can be written elsewhere: every task is kept.
    r = run_failing(env, "1", "spill-fails", "-", *sweep)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "Not saved in the library" in r.stderr or "kept in memory" in r.stderr or "could not" in r.stderr
    assert len(list(pending.glob("*.json"))) == 4


def test_ctrl_c_while_held_images_are_saved_again_keeps_them_and_the_sheet(
    service_env: dict[str, str], sim: Sim, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVES_FAIL, "2", "spill-works", "slow-retry",
         "sweep", "a lighthouse", "--vary", "seed=1,2", "--yes", "--delivery", "sync"],
        env=spill_env(service_env, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    _out, err = interrupted_at(proc, "RETRYING")
    assert proc.returncode == 130, err
    assert "Contact sheet:" in err and "Traceback" not in err
    with Library(Path(service_env["KREA_DESKTOP_DATA_DIR"])) as lib:
        assert lib.count() == 3  # both cells (the one held back, saved by the retry) and the sheet


def test_a_refused_key_ends_the_sweep_without_a_sheet_of_errors(service_env: dict[str, str], sim: Sim) -> None:
    """The key refused for the first cells: the others are not sent, and no contact sheet
    of errors alone is saved; the exit says why in one sentence."""
    sim.service.config.api_key = "another-key"
    r = run_cli(["sweep", "a lighthouse", "--vary", "seed=1,2,3,4,5,6,7,8,9,10", "--yes"], service_env)
    assert r.returncode == 1
    assert r.stdout == ""  # no image, no sheet
    assert r.stderr.strip().splitlines()[-1].startswith("krea-desktop: The API key was not accepted")
    cell_lines = [line for line in r.stderr.splitlines() if "] failed: " in line]
    assert cell_lines and all("RUNWARE_API_KEY" in line for line in cell_lines)  # the command line's words
    assert len(cell_lines) == 1  # said once, not by each cell sent beside the first
    assert len(tasks_of(sim, "imageInference")) <= 4  # at most the cells already on their way
    with Library(Path(service_env["KREA_DESKTOP_DATA_DIR"])) as lib:
        assert lib.count() == 0


def test_without_yes_and_no_terminal_nothing_is_sent(service_env: dict[str, str], sim: Sim) -> None:
    r = run_cli(["sweep", "a lighthouse", "--vary", "creativity=raw,low"], service_env)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "--yes" in r.stderr.strip().splitlines()[-1]
    assert "2 tasks" in r.stderr
    assert tasks_of(sim, "imageInference") == []


@pytest.mark.parametrize(
    ("vary", "phrase"),
    [
        (["ref3=0,1"], "there are no references"),
        (["strength=1,2"], "is not an axis"),
        (["ref1=-3,1"], "The strength -3 for reference 1 is outside −2 to +2."),  # which reference it is
        (["seed=1", "creativity=raw", "ref1=1"], "one or two things"),
        (["creativity=raw,wild"], "is not one of"),
    ],
)
def test_an_impossible_sweep_is_one_sentence_and_nothing_is_sent(
    service_env: dict[str, str], sim: Sim, vary: list[str], phrase: str
) -> None:
    args = ["sweep", "a lighthouse", "--yes"]
    for v in vary:
        args += ["--vary", v]
    r = run_cli(args, service_env)
    assert r.returncode == 2  # the command's use, as an option that cannot be parsed
    lines = r.stderr.strip().splitlines()
    assert phrase in lines[-1] and "Traceback" not in r.stderr
    assert tasks_of(sim, "imageInference") == []


@pytest.mark.parametrize(
    ("option", "value", "axis"), [("seed", "7", "seed=1,2"), ("creativity", "high", "creativity=raw,low")]
)
def test_an_option_given_beside_its_own_axis_is_refused_rather_than_ignored(
    service_env: dict[str, str], sim: Sim, option: str, value: str, axis: str
) -> None:
    r = run_cli(["sweep", "a lighthouse", "--yes", f"--{option}", value, "--vary", axis], service_env)
    assert r.returncode == 2
    said = r.stderr.strip().splitlines()[-1]
    assert said.endswith(f"--{option} and --vary {option}=… both set the {option}; give only one of them.")
    assert tasks_of(sim, "imageInference") == []


def test_lineage_from_the_command_line_and_info_reports_the_parent(service_env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli(["generate", "a harbour at dawn"], service_env)
    assert first.returncode == 0, first.stderr
    parent_path = Path(first.stdout.strip())
    parent_uuid = parent_path.stem
    # The library file itself, and a byte-identical copy elsewhere, are both the parent.
    copy = tmp_path / "copy-of-harbour.png"
    shutil.copyfile(parent_path, copy)
    child = run_cli(
        ["generate", "a harbour at dusk", "--ref", f"{parent_path}@1.2", "--ref", f"{copy}@-0.5"], service_env
    )
    assert child.returncode == 0, child.stderr
    child_path = Path(child.stdout.strip())
    info = run_cli(["info", "--json", str(child_path)], service_env)
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert [ref["parent"] for ref in described["references"]] == [parent_uuid, parent_uuid]
    assert [ref["strength"] for ref in described["references"]] == [1.2, -0.5]
    with Library(Path(service_env["KREA_DESKTOP_DATA_DIR"])) as library:
        child_entry = library.get_by_uuid(child_path.stem)
        parent_entry = library.get_by_uuid(parent_uuid)
        assert child_entry is not None and parent_entry is not None
        assert library.parents(child_entry.id) == [(parent_uuid, 1.2), (parent_uuid, -0.5)]
        assert library.descendants(parent_entry.id) == [child_entry.id]
        assert library.ancestors(child_entry.id) == [parent_entry.id]


def test_a_reference_from_outside_the_library_has_no_parent(service_env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "outside.png"
    Image.new("RGB", (64, 64), (10, 200, 90)).save(ref)
    r = run_cli(["generate", "a meadow", "--ref", str(ref)], service_env)
    assert r.returncode == 0, r.stderr
    record = read_record(Path(r.stdout.strip()))
    assert record is not None and record.references[0].parent is None


@pytest.mark.parametrize(("answer", "code", "sent"), [(b"y\n", 0, 2), (b"n\n", 1, 0)])
def test_at_a_terminal_it_asks_before_sending(
    service_env: dict[str, str], sim: Sim, answer: bytes, code: int, sent: int
) -> None:
    import os
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "krea_desktop", "sweep", "a lighthouse", "--vary", "seed=5,6"],
            env=service_env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.write(controller, answer)
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == code, err.decode()
    assert b"Send 2 tasks? [y/N]" in err
    assert len(tasks_of(sim, "imageInference")) == sent
    assert len(out.splitlines()) == (3 if sent else 0)


def test_ctrl_c_at_the_question_ends_it_at_once_and_sends_nothing(service_env: dict[str, str], sim: Sim) -> None:
    import os
    import pty
    import signal
    import time

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "krea_desktop", "sweep", "a lighthouse", "--vary", "seed=5,6"],
            env=service_env, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        while b"[y/N]" not in proc.stderr.readline():  # the question is up
            assert proc.poll() is None
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)  # not waiting for Enter
        err = proc.stderr.read()
    finally:
        os.close(controller)
        os.close(terminal)
        if proc.poll() is None:
            proc.kill()
    assert code == 130 and b"cancelled." in err and b"Traceback" not in err
    assert tasks_of(sim, "imageInference") == []


def interrupted_at(proc: subprocess.Popen[str], opening: str, signum: int = signal.SIGINT) -> tuple[str, str]:
    """Ctrl+C (or ``signum``) to ``proc`` once it says a line that opens with ``opening``;
    then its whole output (stdout, and stderr from that line on)."""
    assert proc.stderr is not None
    said = []
    while not (line := proc.stderr.readline()).startswith(opening):
        assert line, "".join(said)
        said.append(line)
    proc.send_signal(signum)
    return proc.communicate(timeout=60)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_cells_run_keeps_what_arrived_on_a_sheet(
    service_env: dict[str, str], sim: Sim, signum: int, code: int
) -> None:
    """And SIGTERM (kill, timeout, a service manager) the same: it ended the command where
    it was, with no word and no sheet."""
    sim.service.config.latency_per_image = 0.5  # cells still running when the first arrives
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", "sweep", "a lighthouse", "--vary", "seed=1,2,3,4,5,6,7,8", "--yes"],
        env=service_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    out, err = interrupted_at(proc, "[1/8]", signum)
    assert proc.returncode == code, err
    assert "krea-desktop: cancelled" in err and "Traceback" not in err
    assert "Contact sheet:" in err
    assert "could not save" not in err  # an image on its way into the library gets there
    sheet = Path(out.splitlines()[-1])
    record = read_record(sheet)
    assert record is not None
    cells = sheet_cells_of(record)
    assert len(cells) == 8
    made = [c for c in cells if c.image_uuid]
    assert 1 <= len(made) < 8
    assert all(c.error in ("Cancelled.", CELL_COLLECTED_LATER) for c in cells if not c.image_uuid)


def async_sweep_cut_off(env: dict[str, str], *options: str) -> tuple[str, str]:
    """An async sweep of eight seeds (and ``options``), Ctrl+C once its first image is
    saved; its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", "sweep", "a lighthouse", "--vary", "seed=1,2,3,4,5,6,7,8",
         "--delivery", "async", "--yes", *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    out, err = interrupted_at(proc, "[1/8]")
    assert proc.returncode == 130, err
    return out, err


def test_ctrl_c_says_which_cells_were_sent_and_are_collected_by_the_next_run(
    service_env: dict[str, str], sim: Sim
) -> None:
    """Cells whose task was sent when Ctrl+C came are paid for, and their records kept for
    the next run: the sheet marked them "Cancelled.", as cells never sent, and the run said
    only "cancelled."."""
    sim.service.config = Paced(sim.service.config, [0.3])  # type: ignore[assignment]  # the first cell alone comes
    out, err = async_sweep_cut_off(service_env)
    kept = sorted((Path(service_env["KREA_DESKTOP_DATA_DIR"]) / "pending").glob("*.json"))
    cells = sheet_cells_of(read_record(Path(out.splitlines()[-1])))  # type: ignore[arg-type]
    errors = [c.error for c in cells]
    # Four sent at once: the first made, three on their way (and a fifth, sent as the first
    # ended, when Ctrl+C came after it); the others never sent.
    later = errors.count(CELL_COLLECTED_LATER)
    assert errors.count(None) == 1 and later in (3, 4) and later == len(kept), (errors, kept)
    assert errors.count("Cancelled.") == 7 - later
    assert f"krea-desktop: cancelled; the images of {later} cells already sent are collected by the next run." in err


def test_a_sweep_cut_off_before_its_first_image_leaves_a_sheet_the_next_run_fills(
    service_env: dict[str, str], sim: Sim
) -> None:
    """Ctrl+C before any cell's image came drew no sheet, though four cells were sent and
    paid for: the next run collected their images, with no sheet to draw again."""
    sim.service.config = Paced(sim.service.config, [5.0] * 4 + [0.3] * 10)  # type: ignore[assignment]
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", "sweep", "a lighthouse", "--vary", "seed=1,2,3,4,5,6,7,8",
         "--delivery", "async", "--yes"],
        env=service_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip

    def sent() -> int:
        return sum(t.get("taskType") == "imageInference" for _, tasks in sim.service.requests for t in tasks)

    deadline = time.monotonic() + 60
    while sent() < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent() == 4  # the four cells in flight at once; none has its image for 5 s
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled; the images of 4 cells already sent are collected by the next run." in err
    sheet = Path(out.splitlines()[-1])
    errors = [c.error for c in sheet_cells_of(read_record(sheet))]  # type: ignore[arg-type]
    assert errors.count(CELL_COLLECTED_LATER) == 4 and errors.count("Cancelled.") == 4
    again = run_cli(["generate", "a harbour"], service_env)
    assert again.returncode == 0, again.stderr
    assert f"drew the contact sheet {sheet.name} again with the cells collected since" in again.stderr
    cells, made, _library_sheet = drawn_again(service_env, sheet)
    assert len(made) == 4 and all(cells[place].image_uuid == entry.image_uuid for place, entry in made.items())


@pytest.mark.parametrize(
    "next_run", [["generate", "a harbour"], ["sweep", "a harbour", "--vary", "seed=9,10", "--yes"]], ids=lambda a: a[0]
)
def test_cells_collected_by_the_next_run_are_drawn_into_the_sweeps_sheet(
    service_env: dict[str, str], sim: Sim, next_run: list[str]
) -> None:
    """The sheet saved at Ctrl+C marks the cells sent and still to come; the next run
    collected their images, and the sheet (the one exported and shared) still said so."""
    # The first cell soon, the three (or four) sent beside it a moment later, then quickly.
    sim.service.config = Paced(sim.service.config, [0.3] + [5.0] * 4 + [0.3] * 10)  # type: ignore[assignment]
    out, _err = async_sweep_cut_off(service_env)
    sheet_path = Path(out.splitlines()[-1])
    later = [c.place for c in sheet_cells_of(read_record(sheet_path)) if c.error == CELL_COLLECTED_LATER]  # type: ignore[arg-type]
    assert later
    again = run_cli(next_run, service_env)  # whichever command: it waits for them, then does its own
    assert again.returncode == 0, again.stderr
    assert f"drew the contact sheet {sheet_path.name} again with the cells collected since" in again.stderr
    cells, made, _library_sheet = drawn_again(service_env, sheet_path)
    # Those the service had came (one sent as Ctrl+C came may never have reached it), and
    # the sheet shows every image of the sweep in the library.
    assert set(made) & set(later) and all(cells[place].image_uuid and not cells[place].error for place in made), cells


def drawn_again(
    env: dict[str, str], sheet: Path
) -> tuple[dict[tuple[int, ...], SheetCell], dict[tuple[int, ...], LibraryEntry], Path]:
    """The cells of the contact sheet at ``sheet``, by place; the sweep's images in the
    library, by place; and the library's own copy of that sheet."""
    record = read_record(sheet)
    assert record is not None and record.sweep is not None
    cells = {c.place: c for c in sheet_cells_of(record)}
    with Library(Path(env["KREA_DESKTOP_DATA_DIR"])) as library:
        entries = library.sweep_entries(record.sweep.id)
        made = {e.record.sweep.place: e for e in entries if e.record.sweep and e.record.sweep.place}
        own = library.get_by_uuid(sheet.stem)
    assert own is not None
    return cells, made, own.path


@pytest.mark.parametrize(
    "next_run", [["generate", "a harbour"], ["sweep", "a harbour", "--vary", "seed=9,10", "--yes"]], ids=lambda a: a[0]
)
def test_cells_collected_by_the_next_run_are_copied_into_the_sweeps_out_folder(
    service_env: dict[str, str], sim: Sim, tmp_path: Path, next_run: list[str]
) -> None:
    """The next run collected the cells of a sweep given --out into the library and drew
    its sheet again there, but the folder kept the sheet that said they were never made,
    and had none of their images."""
    sim.service.config = Paced(sim.service.config, [0.3] + [5.0] * 4 + [0.3] * 10)  # type: ignore[assignment]
    folder = tmp_path / "picked"
    out, _err = async_sweep_cut_off(service_env, "--out", str(folder))
    sheet_copy = Path(out.splitlines()[-1])
    assert sheet_copy.parent == folder
    later = [c.place for c in sheet_cells_of(read_record(sheet_copy)) if c.error == CELL_COLLECTED_LATER]  # type: ignore[arg-type]
    assert later
    notes = [json.loads(p.read_text()) for p in (Path(service_env["KREA_DESKTOP_DATA_DIR"]) / "pending").glob("*.json")]
    assert notes and all(note["out"] == str(folder) for note in notes)
    again = run_cli(next_run, service_env)
    assert again.returncode == 0, again.stderr
    assert f"again with the cells collected since, and replaced the copy in {folder}" in again.stderr
    cells, made, library_sheet = drawn_again(service_env, sheet_copy)
    assert sheet_copy.read_bytes() == library_sheet.read_bytes()
    assert set(made) & set(later)
    for place, entry in made.items():  # every image of the sweep in the library is in the folder, and on its sheet
        assert (folder / entry.path.name).read_bytes() == entry.path.read_bytes(), place
        assert cells[place].image_uuid == entry.image_uuid and not cells[place].error, cells
    for place in set(made) & set(later):
        assert f"saved {made[place].path.name} from an earlier run" in again.stderr
    assert f"copied it into {folder}" in again.stderr


def test_an_out_folder_gone_before_the_next_run_is_said_once_and_the_library_keeps_everything(
    service_env: dict[str, str], sim: Sim, tmp_path: Path
) -> None:
    sim.service.config = Paced(sim.service.config, [0.3] + [5.0] * 4 + [0.3] * 10)  # type: ignore[assignment]
    folder = tmp_path / "picked"
    out, _err = async_sweep_cut_off(service_env, "--out", str(folder))
    sheet_name = Path(out.splitlines()[-1]).name
    shutil.rmtree(folder)  # deleted, or a drive taken away
    again = run_cli(["generate", "a harbour"], service_env)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    said = (
        "krea-desktop: the images collected from an earlier run are in the library, but some could not be copied "
        f"into its --out folder: {folder} is not there any more."
    )
    assert again.stderr.count(said) == 1, again.stderr
    assert f"drew the contact sheet {sheet_name} again with the cells collected since\n" in again.stderr
    assert not folder.exists()  # not made again on whatever disk is there now
    data = Path(service_env["KREA_DESKTOP_DATA_DIR"])
    assert not list((data / "pending").glob("*.json"))  # collected: nothing left for a later run
    with Library(data) as library:
        sheet = library.get_by_uuid(Path(sheet_name).stem)
        assert sheet is not None
        cells = sheet_cells_of(sheet.record)
        made = [e for e in library.sweep_entries(sheet.record.sweep.id) if e.record.sweep and e.record.sweep.place]  # type: ignore[union-attr]
    assert len(made) > 1 and sum(1 for c in cells if c.image_uuid) == len(made)


# The library refuses the earlier run's images ("a lighthouse") until this run's first
# comes: they are held through the collection, and saved with the first cell's image.
_EARLIER_HELD = """
import errno, sys
from krea_desktop.library import saving, store
save, queue_save, state = store.Library.save, saving.SaveQueue.save, {"released": False}
def flaky(self, image, created_at=None, **kw):
    if not state["released"]:
        raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, image, created_at, **kw)
def releasing(self, image):
    if image.record.prompt == "a harbour":
        state["released"] = True
    return queue_save(self, image)
store.Library.save = flaky
saving.SaveQueue.save = releasing
from krea_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_earlier_runs_image_the_library_held_back_is_not_taken_for_a_cell(
    service_env: dict[str, str], sim: Sim
) -> None:
    """An image collected from an earlier run, held back by the library (busy, the disk full
    for a moment), came with the first cell's save: it was printed and drawn as that cell,
    the cell's own image left off the sheet, or the run ended in a traceback."""
    sim.service.config = Paced(sim.service.config, [0.3] + [2.0] * 4 + [0.3] * 10)  # type: ignore[assignment]
    async_sweep_cut_off(service_env)
    data = Path(service_env["KREA_DESKTOP_DATA_DIR"])
    assert list((data / "pending").glob("*.json"))
    r = subprocess.run(
        [sys.executable, "-c", _EARLIER_HELD, "sweep", "a harbour", "--vary", "seed=9,10", "--yes"],
        env=service_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "from an earlier run that ended before all its images arrived" in r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3  # its two cells and its sheet: nothing of the earlier run
    with Library(data) as lib:
        for line in lines[:2]:
            entry = lib.get_by_uuid(Path(line).stem)
            assert entry is not None and entry.prompt == "a harbour", line
    cells = sheet_cells_of(read_record(Path(lines[-1])))  # type: ignore[arg-type]
    with Library(data) as lib:
        seeds = {c.place: lib.get_by_uuid(str(c.image_uuid)).seed for c in cells}  # type: ignore[union-attr]
    assert seeds == {(0,): 9, (1,): 10}
    assert not list((data / "pending").glob("*.json")), "every earlier task's images arrived"


_SLOW_SHEET = """
import sys, time
from krea_desktop.library import sheet
draw = sheet.save_sheet
def slow(*args, **kwargs):
    time.sleep(1.5)  # as a sheet of a hundred cells takes
    return draw(*args, **kwargs)
sheet.save_sheet = slow
from krea_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_while_the_contact_sheet_is_drawn_keeps_the_sheet(service_env: dict[str, str], sim: Sim) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SHEET, "sweep", "a lighthouse", "--vary", "seed=1,2", "--yes"],
        env=service_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    out, err = interrupted_at(proc, "Drawing the contact sheet")
    assert proc.returncode == 130, err
    assert "Contact sheet:" in err and "Traceback" not in err
    sheet = Path(out.splitlines()[-1])
    record = read_record(sheet)
    assert record is not None and len(sheet_cells_of(record)) == 2
    with Library(Path(service_env["KREA_DESKTOP_DATA_DIR"])) as lib:
        assert lib.count() == 3  # the two cells and their sheet


def test_eleven_references_are_refused_in_the_words_of_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "r.png"
    Image.new("RGB", (8, 8)).save(ref)
    args = ["sweep", "two words", "--demo", "--vary", "seed=1,2", "--yes"]
    for _ in range(11):
        args += ["--ref", str(ref)]
    r = run_cli(args, env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "krea-desktop: The --ref list has 11 images, but at most 10 are allowed."
    )
