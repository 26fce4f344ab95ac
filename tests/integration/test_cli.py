"""The command line as a person runs it: a subprocess, the simulator on 127.0.0.1 or the
built-in demo, files on disk."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.library.metadata import read_record
from krea_desktop.library.store import Library
from tests.helpers.images import SVG, Route, huge_header_png, serving, truncated_png
from tests.helpers.sim import free_port
from tests.helpers.sim import simulator_process as start_simulator

KEY = "sk-test-7f3a-recognisable"


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krea_desktop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def simulator(env: dict[str, str], *faults: str) -> Iterator[tuple[str, None]]:
    args = ["--key", KEY]
    for fault in faults:
        args += ["--fault", fault]
    with start_simulator(*args, env=env) as url:
        yield url, None


@pytest.fixture
def simulator_process(env: dict[str, str]) -> Iterator[tuple[str, None]]:
    """The simulator as its own process, answering the first task 503 and dropping the
    connection after accepting the second."""
    with simulator(env, "503", "drop-after") as s:
        yield s


def test_demo_generation_prints_paths_and_saves_into_the_library(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    ref = tmp_path / "ref.png"
    Image.new("RGB", (64, 64), (20, 200, 40)).save(ref)
    r = run_cli(
        [
            "generate",
            "a green meadow, gouache",
            "--ratio",
            "16:9",
            "--count",
            "3",
            "--seed",
            "99",
            "--creativity",
            "high",
            "--format",
            "JPG",
            "--quality",
            "80",
            "--ref",
            f"{ref}@-1.5",
            "--out",
            str(out),
        ],
        env,
    )
    assert r.returncode == 0, r.stderr
    assert "Demo mode" in r.stderr
    paths = [Path(p) for p in r.stdout.split()]
    assert len(paths) == 3 and all(p.parent == out and p.exists() for p in paths)
    assert len(re.findall(r"^\[\d/3\] saved ", r.stderr, re.M)) == 3  # one progress line per image
    seeds = set()
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.size == (1376, 768)
        record = read_record(p)
        assert record is not None
        assert record.prompt == "a green meadow, gouache"
        assert record.creativity == "high" and record.ratio == "16:9"
        assert record.references[0].strength == -1.5
        seeds.add(record.seed)
    assert seeds == {99, 100, 101}
    # The reference is the copy kept in the data folder, as a tray reference is; the file
    # names it by its name alone (never a folder), and recall finds it there.
    first = read_record(paths[0])
    assert first is not None
    name = first.references[0].source or ""
    assert "/" not in name and "\\" not in name
    kept = Path(env["KREA_DESKTOP_DATA_DIR"]) / "references" / name
    assert kept.read_bytes() == ref.read_bytes()
    assert kept.stem == hashlib.sha256(ref.read_bytes()).hexdigest()
    with Library(Path(env["KREA_DESKTOP_DATA_DIR"])) as lib:
        assert lib.count() == 3


def test_generation_against_the_simulator_process_survives_its_faults(
    env: dict[str, str], simulator_process: tuple[str, None]
) -> None:
    url, _ = simulator_process
    env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
    r = run_cli(["generate", "a harbour at dawn", "--count", "2"], env)
    assert r.returncode == 0, r.stderr
    assert "Demo mode" not in r.stderr
    assert len(r.stdout.split()) == 2
    assert KEY not in r.stdout + r.stderr


def test_a_service_that_sends_more_than_asked_is_counted_as_it_came_never_3_of_2(env: dict[str, str]) -> None:
    with simulator(env, "more-images") as (url, _):
        r = run_cli(
            ["generate", "a harbour at dawn", "--count", "2", "--delivery", "sync"],
            {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url},
        )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 3  # each image paid for is kept
    counters = re.findall(r"^\[(\d+)/(\d+)\] saved", r.stderr, re.M)
    assert counters == [("1", "2"), ("2", "2"), ("3", "3")]


@pytest.mark.parametrize(("suffix", "said"), [("abc", "the strength “abc” after"), ("", "no strength follows")])
def test_a_strength_that_is_not_a_number_is_said_so_not_a_missing_file(
    env: dict[str, str], tmp_path: Path, suffix: str, said: str
) -> None:
    """``--ref r0.png@abc`` said “r0.png@abc” does not exist, of a file that does."""
    ref = tmp_path / "r0.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(ref)
    r = run_cli(["generate", "a harbour at dawn", "--demo", "--ref", f"{ref}@{suffix}"], env)
    assert r.returncode == 2 and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert said in last and "from -2 to 2" in last and "does not exist" not in last
    named = tmp_path / "at@home.png"  # an "@" of the file's own name still names the file
    Image.new("RGB", (32, 32), (40, 200, 40)).save(named)
    r = run_cli(["generate", "a harbour at dawn", "--demo", "--ref", str(named)], env)
    assert r.returncode == 0, r.stderr


def test_a_wrong_key_fails_with_one_line(env: dict[str, str], simulator_process: tuple[str, None]) -> None:
    url, _ = simulator_process
    env = {**env, "RUNWARE_API_KEY": "wrong-key", "RUNWARE_API_URL": url}
    r = run_cli(["generate", "a harbour at dawn"], env)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert "API key was not accepted" in lines[-1]
    assert lines[-1].endswith(" in RUNWARE_API_KEY or the window's Settings.")  # the command line's words
    assert "Traceback" not in r.stderr


def test_a_dead_network_fails_with_one_line(env: dict[str, str]) -> None:
    env = {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": f"http://127.0.0.1:{free_port()}/v1"}
    t = time.monotonic()
    r = run_cli(["generate", "a harbour at dawn"], env)
    assert r.returncode == 1
    assert "could not be reached" in r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t < 60


def test_an_unusable_service_address_is_the_commands_use_exit_2_in_one_sentence(env: dict[str, str]) -> None:
    r = run_cli(["generate", "a harbour at dawn"], {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": "garbage"})
    assert r.returncode == 2 and r.stdout == ""  # as README says: nothing was sent
    (said,) = r.stderr.strip().splitlines()
    assert said.startswith("krea-desktop: ") and "RUNWARE_API_URL" in said and said.endswith(".")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["generate", "x"], "krea-desktop: The prompt has 1 character, but it must have from 2 to 3000."),
        (["generate", "two words", "--ratio", "5:4"], "invalid choice"),
        (["generate", "two words", "--count", "21"], "from 1 to 20"),
        (["generate", "two words", "--seed", "-1"], "from 0 to"),
        (["generate", "two words", "--quality", "100"], "from 20 to 99"),
        (["generate", "two words", "--format", "gif"], "PNG, JPG, WEBP"),
        (["generate", "two words", "--ref", "/no/such/file.png"], "does not exist"),
        (["generate", "two words", "--ref", ""], "an empty reference names no image"),
        (["generate", "two words", "--ref", "ftp://127.0.0.1/x.png"], "ftp:// addresses cannot be read"),
        (["generate", "two words", "--out", ""], "an empty folder name names no folder"),
        (["generat", "two words"], "krea-desktop: there is no command or file “generat”; did you mean generate?"),
        (["generate", "two words", "--ref", "http://"], "“http://” is not a complete web address; give a file"),
        (["generate", "two words", "--ref", "http://[::1"], "“http://[::1” is not a complete web address"),
        (["sweep", "two words", "--vary", "seed=1,2", "--out", " "], "an empty folder name names no folder"),
        # Addresses refused before any connection: a host no IPv4 address is, and hosts IDNA refuses.
        (["generate", "two words", "--ref", "https://192.168.1.300/ref.png"], "could not be downloaded; check the"),
        (["generate", "two words", "--ref", "https://a..b/x.png"], "could not be downloaded; check the"),
        (["generate", "two words", "--ref", "https://xn--/fox.png"], "could not be downloaded; check the"),
        (
            ["generate", "two words", "--ref", "https://example.test/a.png@3"],
            "argument --ref: the strength 3 after https://example.test/a.png@ is not from -2 to 2, as in ",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(env: dict[str, str], args: list[str], phrase: str) -> None:
    r = run_cli([*args, "--demo"], env, timeout=60)
    assert r.returncode != 0
    assert phrase in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args", [["help"], ["gen", "a fox"], ["a fox in the snow"]])
def test_a_word_that_is_neither_a_command_nor_a_file_is_refused_and_no_window_opens(
    env: dict[str, str], args: list[str]
) -> None:
    r = run_cli(args, {**env, "QT_QPA_PLATFORM": "offscreen"}, timeout=30)
    assert r.returncode == 2
    assert r.stderr == (
        f"krea-desktop: there is no command or file “{args[0]}”; "
        "the commands are generate, sweep, info and simulator (see --help).\n"
    )


def test_with_no_display_the_window_is_not_tried_and_one_sentence_says_why(env: dict[str, str]) -> None:
    bare = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if sys.platform in ("win32", "darwin"):
        pytest.skip("a window always has a screen there")
    r = run_cli([], bare, timeout=30)
    assert r.returncode == 1
    assert r.stderr == (
        "krea-desktop: there is no display to open the window on; "
        "at a terminal, use generate, sweep or info (see --help).\n"
    )


WAYLAND_DEFAULT = "the display named by QT_QPA_PLATFORM (Wayland's default display, wayland-0) does not answer"


@pytest.mark.parametrize(
    ("platform", "said"),
    [
        ("wayland", WAYLAND_DEFAULT),
        ("wayland;xcb", WAYLAND_DEFAULT),
        ("wayland-egl:foo=1", WAYLAND_DEFAULT),
        ("xcb", "there is no display to open the window on"),
    ],
)
def test_a_display_platform_chosen_with_no_display_is_one_sentence_not_qts_abort(
    env: dict[str, str], tmp_path: Path, platform: str, said: str
) -> None:
    """QT_QPA_PLATFORM set for a desktop (Sway's, say) and a login with no display: Qt
    aborted the process (exit 134) with a paragraph about reinstalling. With Wayland
    chosen and no WAYLAND_DISPLAY, libwayland connects to wayland-0: that one is asked."""
    if sys.platform in ("win32", "darwin"):
        pytest.skip("a window always has a screen there")
    bare = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = run_cli([], {**bare, "QT_QPA_PLATFORM": platform, "XDG_RUNTIME_DIR": str(tmp_path)}, timeout=30)
    assert (r.returncode, r.stderr) == (
        1,
        f"krea-desktop: {said}{', so the window cannot open there' if 'answer' in said else ''}; "
        "at a terminal, use generate, sweep or info (see --help).\n",
    )


def test_wayland_chosen_with_no_wayland_display_named_is_its_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libwayland connects to wayland-0 when WAYLAND_DISPLAY is unset (a systemd user
    unit, a launcher): a window that would open there is not refused."""
    import socket

    from krea_desktop import display

    if sys.platform in ("win32", "darwin"):
        pytest.skip("no Wayland there")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":97")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "wayland-0"))
        server.listen(4)
        for platform in ("wayland", "wayland;xcb"):
            monkeypatch.setenv("QT_QPA_PLATFORM", platform)
            assert display.no_display() is None


@pytest.mark.parametrize(
    ("names", "said"),
    [
        ({"DISPLAY": ":97"}, "DISPLAY=:97"),  # an X forward that ended, a server gone
        ({"DISPLAY": "127.0.0.1:97.0"}, "DISPLAY=127.0.0.1:97.0"),
        ({"WAYLAND_DISPLAY": "wayland-97"}, "WAYLAND_DISPLAY=wayland-97"),
        ({"DISPLAY": ":97", "WAYLAND_DISPLAY": "wayland-97"}, "DISPLAY=:97 or WAYLAND_DISPLAY=wayland-97"),
    ],
)
def test_a_display_that_does_not_answer_is_one_sentence_not_qts_abort(
    env: dict[str, str], tmp_path: Path, names: dict[str, str], said: str
) -> None:
    if sys.platform in ("win32", "darwin"):
        pytest.skip("no X11 or Wayland display there")
    assert not Path("/tmp/.X11-unix/X97").exists()
    bare = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = run_cli([], {**bare, **names, "XDG_RUNTIME_DIR": str(tmp_path)}, timeout=30)
    assert (r.returncode, r.stderr) == (
        1,
        f"krea-desktop: the display named by {said} does not answer, so the window cannot open there; "
        "at a terminal, use generate, sweep or info (see --help).\n",
    )


def test_a_file_address_is_the_file(env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "my fox.png"
    Image.new("RGB", (64, 48), "teal").save(ref)
    r = run_cli(["generate", "two words", "--demo", "--ref", f"{ref.as_uri()}@0.5"], env)
    assert r.returncode == 0, r.stderr
    saved = read_record(Path(r.stdout.split()[0]))
    assert saved is not None and [ref_.strength for ref_ in saved.references] == [0.5]


def test_help_gives_each_numbers_range(env: dict[str, str]) -> None:
    said = " ".join(run_cli(["generate", "--help"], env, timeout=60).stdout.split())
    assert "1 to 20 (default: 1)" in said and "20 to 99 (default: 95)" in said
    assert f"from 0 to {2**63 - 1:,} (default: random)" in said


def test_eleven_references_are_refused(env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "r.png"
    Image.new("RGB", (8, 8)).save(ref)
    args = ["generate", "two words", "--demo"]
    for _ in range(11):
        args += ["--ref", str(ref)]
    r = run_cli(args, env)
    assert r.returncode == 2  # the command's use, told from the service failing (1)
    assert "At most 10 references" in r.stderr


def one_sentence_refusal(r: subprocess.CompletedProcess[str]) -> str:
    """The only line on stderr of a run that exited 1 and printed nothing."""
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_non_image_reference_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "notes.png"
    ref.write_text("not an image")
    line = one_sentence_refusal(run_cli(["generate", "two words", "--demo", "--ref", str(ref)], env))
    assert "“notes.png” is not an image Krea Desktop can read" in line


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda d: d / "missing.png", "“missing.png” does not exist"),
        (lambda d: d, "is a folder"),
        (lambda d: write(d / "bomb.png", huge_header_png()), "is too large"),
        (lambda d: write(d / "drawing.svg", SVG), "is an SVG drawing"),
        (lambda d: write(d / "cut.png", truncated_png()), "damaged"),
    ],
)
def test_a_bad_reference_file_is_one_sentence_and_nothing_is_kept(
    env: dict[str, str], tmp_path: Path, make: Any, phrase: str
) -> None:
    ref = make(tmp_path)
    line = one_sentence_refusal(run_cli(["generate", "two words", "--demo", "--ref", f"{ref}@0.5"], env))
    assert phrase in line
    data = Path(env["KREA_DESKTOP_DATA_DIR"])
    assert not (data / "references").exists() or not any((data / "references").iterdir())
    assert not (data / "library.sqlite").exists()  # refused before the library was opened


def test_a_reference_whose_name_starts_with_a_tilde_is_a_file_not_a_home(env: dict[str, str], tmp_path: Path) -> None:
    ref = tmp_path / "~draft.png"
    Image.new("RGB", (64, 48), "teal").save(ref)
    r = run_cli(["generate", "two words", "--demo", "--ref", "~draft.png@0.5", "--count", "1"], env, timeout=120)
    assert "Traceback" not in r.stderr
    assert r.returncode == 1  # not in the working folder: one sentence, not a crash
    assert r.stderr.strip().splitlines()[-1].endswith("“~draft.png” does not exist; it may have been moved or deleted.")
    r = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "generate", "two words", "--demo", "--ref", "~draft.png@0.5"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 1


def test_a_reader_that_stops_reading_does_not_stop_the_batch(env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", "generate", "two words", "--demo", "--count", "6"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline().decode().strip()  # as `| head -1` reads, then goes
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 0, err
    assert first.endswith(".png")
    assert "Traceback" not in err and "Broken pipe" not in err
    assert "[6/6] saved" in err
    with Library(Path(env["KREA_DESKTOP_DATA_DIR"])) as lib:
        assert lib.count() == 6  # every image is in the library


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_reference_url_is_downloaded_checked_and_kept(env: dict[str, str]) -> None:
    big = io.BytesIO()
    Image.new("RGB", (3000, 1000), (200, 40, 40)).save(big, "PNG")
    routes = {
        "/wide.png": Route(big.getvalue(), "image/png"),
        "/page.html": Route(b"<html><body>no image</body></html>", "text/html"),
    }
    with serving(routes) as web:
        r = run_cli(["generate", "a red field", "--demo", "--ref", f"{web.url}/wide.png@1.25"], env)
        refused = run_cli(["generate", "a red field", "--demo", "--ref", f"{web.url}/page.html"], env)
    assert r.returncode == 0, r.stderr
    record = read_record(Path(r.stdout.split()[0]))
    assert record is not None
    kept = Path(env["KREA_DESKTOP_DATA_DIR"]) / "references" / (record.references[0].source or "")
    assert kept.is_file()
    assert record.references[0].strength == 1.25
    with Image.open(kept) as im:  # normalised as the tray does: no longer than the upload limit
        assert max(im.size) == spec.UPLOAD_MAX_SIDE
    said = one_sentence_refusal(refused)
    # Words for a terminal too: "drag the image itself" meant nothing there.
    assert "is a web page or other document, not an image; use the image itself instead." in said


def test_a_path_with_a_line_break_is_still_one_line_of_the_output(env: dict[str, str], tmp_path: Path) -> None:
    """It was printed as two lines, two paths that are not there, where ``info`` writes the
    line break as an escape."""
    out = tmp_path / "two\nlines"
    r = run_cli(["generate", "a green meadow", "--demo", "--count", "2", "--out", str(out)], env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith(str(tmp_path / "two\\nlines") + "/")
        assert (out / Path(line).name).is_file()
    info = run_cli(["info", str(out / Path(lines[0]).name)], env)
    assert info.returncode == 0, info.stderr
    assert Path(lines[0]).name in info.stdout


@contextmanager
def stalling_server() -> Iterator[tuple[str, threading.Event]]:
    """A web server on 127.0.0.1 that takes connections and never answers; its address,
    and an event set once a connection has come."""
    listener = socket.create_server(("127.0.0.1", 0))
    came = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                held.append(conn)
                came.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", came
    finally:
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize(
    "command", [["generate", "a red field"], ["sweep", "a red field", "--vary", "seed=1,2", "--yes"]]
)
def test_ctrl_c_while_a_reference_downloads_ends_the_command_at_once(env: dict[str, str], command: list[str]) -> None:
    """The download ran on a thread the command waited for after Ctrl+C: a stalled web
    server kept it for its 20 s timeout, and a second Ctrl+C did not help."""
    with stalling_server() as (url, came):
        proc = subprocess.Popen(
            [sys.executable, "-m", "krea_desktop", *command, "--demo", "--ref", f"{url}/stalled.png"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert came.wait(60)
        time.sleep(0.2)  # the request sent, its answer awaited
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=8)  # well before the download's own timeout
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "krea-desktop: cancelled."
    assert out == "" and "Traceback" not in err
    assert not list((Path(env["KREA_DESKTOP_DATA_DIR"]) / "references").glob("*.png"))


def test_simulator_help_lists_faults(env: dict[str, str]) -> None:
    r = run_cli(["simulator", "--help"], env, timeout=60)
    assert r.returncode == 0
    for word in ("--port", "--key", "--latency", "--fault", "drop-after"):
        assert word in r.stdout


def test_simulator_speaks_the_protocol_to_a_plain_http_client(env: dict[str, str]) -> None:
    import httpx

    with simulator(env, "503") as (url, _):
        check_protocol(url, httpx)


def check_protocol(url: str, httpx: Any) -> None:
    task = {
        "taskType": "imageInference",
        "taskUUID": "6f1c1b7e-8a55-4b6c-9d1c-3c5e0a9b7d21",
        "model": "krea:krea@2-medium",
        "positivePrompt": "a red kite",
        "width": 1024,
        "height": 1024,
        "outputType": "URL",
        "outputFormat": "WEBP",
        "numberResults": 1,
    }
    r = httpx.post(url, json=[task], headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 503  # the first injected fault
    r = httpx.post(url, json=[task], headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 200
    item = r.json()["data"][0]
    img = httpx.get(item["imageURL"], timeout=30)
    assert img.headers["content-type"] == "image/webp"
    bad = httpx.post(
        url,
        json=[{**task, "taskUUID": "0c1f6f4e-1b1a-4d8e-9a7b-2b2a8c6e4f10", "width": 1000}],
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert bad.status_code == 400
    assert json.loads(bad.text)["errors"][0]["parameter"] in ("width", "height")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a file every write to fails with ENOSPC")
def test_output_that_cannot_be_written_stops_no_paid_batch(env: dict[str, str], tmp_path: Path) -> None:
    """``> /dev/full``: the batch goes on to its end, every image saved, and one sentence
    at the end says the output was lost (not the library's disk)."""
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "a fox", "--demo", "--count", "3"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        "krea-desktop: the output could not be written (No space left on device); every image is in the library."
    )
    assert "Traceback" not in r.stderr and "[3/3] saved" in r.stderr
    with Library(tmp_path / "data") as lib:
        assert lib.count() == 3


def test_out_with_a_tilde_after_an_equals_sign_is_the_home_folder(env: dict[str, str], tmp_path: Path) -> None:
    """The shell leaves ``--out=~/pics`` as it is: it made a folder named "~" here."""
    env["HOME"] = str(tmp_path / "home")
    r = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "generate", "a fox", "--demo", "--out=~/pics"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "home" / "pics").glob("*.png"))) == 1
    assert not (tmp_path / "~").exists()


def test_a_services_message_cannot_act_on_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Escape sequences and direction overrides in a service's message are shown, not obeyed."""
    from krea_desktop import console

    console.line("krea-desktop: refused \x1b[31m red \x1b]52;c;ZWNobw==\x07 \u202etxt.exe", err=True)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\x07" not in err
    assert err == "krea-desktop: refused \\u001b[31m red \\u001b]52;c;ZWNobw==\\u0007 \\u202etxt.exe\n"


def test_out_naming_a_file_is_one_sentence_and_nothing_is_sent(env: dict[str, str], tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("notes")
    r = run_cli(["generate", "a fox", "--demo", "--out", str(afile)], env)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines()[-1] == (
        f"krea-desktop: Nothing was sent: {afile} is a file, and --out names the folder to copy the images into."
    )
    assert afile.read_text() == "notes"


def run_in_shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command line as a shell starts it, for redirections Python cannot make of its own."""
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell's redirections")
def test_a_sweep_started_with_its_input_closed_is_refused_as_at_no_terminal(env: dict[str, str]) -> None:
    r = run_in_shell(f"exec {sys.executable} -m krea_desktop sweep 'a fox' --vary seed=1,2 --demo <&-", env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "confirm it with --yes when the command is not run at a terminal." in r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell's redirections")
def test_with_its_messages_closed_the_output_holds_only_paths_and_json(env: dict[str, str], tmp_path: Path) -> None:
    """Started with stderr closed, print() would have written every progress line and
    error into stdout, among the paths (or the JSON lines) a script reads."""
    r = run_in_shell(f"exec {sys.executable} -m krea_desktop generate 'a fox' --count 2 --demo 2>&-", env)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(Path(line).is_file() for line in lines), r.stdout
    red = write(tmp_path / "red.png", png_bytes())
    r = run_in_shell(f"exec {sys.executable} -m krea_desktop info --json {red} {tmp_path / 'missing.png'} 2>&-", env)
    assert r.returncode == 1
    assert [json.loads(line)["file"] for line in r.stdout.splitlines()] == [str(red), str(tmp_path / "missing.png")]


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell's redirections")
def test_with_its_output_closed_generate_says_the_paths_reached_no_one(env: dict[str, str]) -> None:
    r = run_in_shell(f"exec {sys.executable} -m krea_desktop generate 'a fox' --demo >&-", env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "the output could not be written" in r.stderr


def test_ctrl_c_while_info_reads_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from krea_desktop import cli, info

    def interrupted(path: Path) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "read", interrupted)
    try:
        code = cli.main(["info", str(write(tmp_path / "red.png", png_bytes()))])
    except KeyboardInterrupt:
        pytest.fail("Ctrl+C left the command as a traceback")
    assert code == 130
    assert capsys.readouterr().err == "krea-desktop: cancelled.\n"


def test_a_reference_file_named_with_an_at_sign_is_that_file(env: dict[str, str], tmp_path: Path) -> None:
    """ "shot@2" on disk is that file, not "shot" at a strength of 2."""
    write(tmp_path / "shot@2", png_bytes())
    r = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "generate", "a fox", "--ref", "shot@2", "--demo"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 1


def test_demo_mode_asked_for_with_a_key_set_says_so_not_that_no_key_is_set(env: dict[str, str]) -> None:
    r = run_cli(["generate", "a fox", "--demo"], {**env, "RUNWARE_API_KEY": "sk-set-all-the-same"})
    assert r.returncode == 0
    assert r.stderr.splitlines()[0] == "Demo mode (--demo): images come from the built-in simulator, not Runware."


def test_an_out_folder_that_is_a_link_to_nowhere_or_a_name_too_long_is_said_so_before_sending(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A link to a folder not there said "could not be written (File exists)", and a name
    too long for the disk a bare "File name too long (nnn…)." without "Nothing was sent"."""
    link = tmp_path / "pics-link"
    link.symlink_to(tmp_path / "unmounted" / "pictures")
    r = run_cli(["generate", "a fox", "--demo", "--out", str(link)], env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"krea-desktop: Nothing was sent: {link} is a link to {tmp_path / 'unmounted' / 'pictures'}, which is not "
        "there (a drive not connected?)."
    )
    assert link.is_symlink() and not (tmp_path / "unmounted").exists()
    long_name = tmp_path / ("n" * 300)
    r = run_cli(["generate", "a fox", "--demo", "--out", str(long_name)], env)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("krea-desktop: Nothing was sent: ") and last.endswith(
        " is a name too long for the disk; choose a shorter one."
    ), last


def test_a_locked_keyring_is_said_so_not_that_no_key_is_set(env: dict[str, str]) -> None:
    """A keyring that holds the key but is locked: the command line said "no API key is
    set", and the person took the key for lost (the window said the keyring was locked)."""
    r = run_cli(["generate", "a fox"], {**env, "PYTHON_KEYRING_BACKEND": "tests.helpers.keyrings.SealedKeyring"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == (
        "Demo mode: the system keyring could not be read (it may be locked), so no API key was found in it; "
        "unlock the keyring and restart, or add the key again in Settings, or set RUNWARE_API_KEY."
    )


def test_a_data_folder_under_a_file_names_the_file(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("in the way")
    r = run_cli(["generate", "a fox", "--demo"], {**env, "KREA_DESKTOP_DATA_DIR": str(tmp_path / "afile" / "sub")})
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"krea-desktop: The data folder {tmp_path / 'afile' / 'sub'} cannot be made: {tmp_path / 'afile'} is a file, "
        "not a folder; move that file away or set KREA_DESKTOP_DATA_DIR."
    )


def test_a_file_where_the_references_folder_or_the_index_goes_is_named_as_such(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A file named ``references`` said "(File exists)", and a folder named
    ``library.sqlite`` "disk I/O error": neither said what stood in the way."""
    data = Path(env["KREA_DESKTOP_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    (data / "references").write_text("in the way")
    ref = tmp_path / "r0.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(ref)
    r = run_cli(["generate", "a fox", "--demo", "--ref", str(ref)], env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"krea-desktop: The reference could not be kept: {data / 'references'} is a file where a folder should be; "
        "move that file away."
    )
    assert (data / "references").read_text() == "in the way"
    (data / "references").unlink()
    for name in ("library.sqlite", "library.sqlite-wal", "library.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    (data / "library.sqlite").mkdir()
    (data / "library.sqlite" / "mine.txt").write_text("kept")
    r = run_cli(["generate", "a fox", "--demo"], env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"krea-desktop: The library index {data / 'library.sqlite'} is a folder, not a file; move that folder away, "
        "and a new index is made from the images."
    )
    assert (data / "library.sqlite" / "mine.txt").read_text() == "kept"


def test_a_data_folder_linked_to_a_drive_not_connected_is_not_called_a_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    # "… is a file, not a folder; move that file away": following it would delete the link.
    (tmp_path / "library").symlink_to(tmp_path / "unmounted" / "drive")
    for folder in (tmp_path / "library", tmp_path / "library" / "sub"):
        r = run_cli(["generate", "a fox", "--demo"], {**env, "KREA_DESKTOP_DATA_DIR": str(folder)})
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"krea-desktop: The data folder {folder} cannot be reached: {tmp_path / 'library'} is a link to "
            f"{tmp_path / 'unmounted' / 'drive'}, which is not there (a drive not connected?); connect it or set "
            "KREA_DESKTOP_DATA_DIR."
        )
    assert (tmp_path / "library").is_symlink()


def test_a_reference_named_with_an_at_sign_in_the_home_folder_is_that_file(env: dict[str, str], tmp_path: Path) -> None:
    """--ref=~/shot@2: the shell leaves ~ alone after "=", and the file is still that file."""
    write(tmp_path / "shot@2", png_bytes())
    r = run_cli(["generate", "a fox", "--ref=~/shot@2", "--demo"], {**env, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell's redirections")
def test_a_mistyped_command_with_its_messages_closed_writes_nothing_into_the_output(env: dict[str, str]) -> None:
    r = run_in_shell(f"exec {sys.executable} -m krea_desktop generat 'a fox' 2>&-", env)
    assert r.returncode == 2 and r.stdout == ""


def test_a_relative_data_folder_is_the_same_folder_at_every_run(env: dict[str, str], tmp_path: Path) -> None:
    """KREA_DESKTOP_DATA_DIR=data, as typed in a terminal: the second run found the index the
    first had made and ended in a traceback (SQLite is opened by URI, which must be absolute)."""
    work = tmp_path / "work"
    work.mkdir()
    relative = {**env, "KREA_DESKTOP_DATA_DIR": "data"}
    for prompt in ("a first kite", "a second kite"):
        r = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", prompt, "--demo"],
            env=relative,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    with Library(work / "data") as lib:
        assert sorted(e.prompt for e in lib.entries()) == ["a first kite", "a second kite"]


@pytest.mark.parametrize("strength", ["2.01", "-2.5", "nan", "inf"])
def test_a_strength_out_of_range_is_an_option_that_cannot_be_parsed(
    env: dict[str, str], tmp_path: Path, strength: str
) -> None:
    """Exit 2, as for --count 21: README gives 2 for options it cannot parse."""
    ref = tmp_path / "ref.png"
    Image.new("RGB", (64, 64), (20, 200, 40)).save(ref)
    r = run_cli(["generate", "two words", "--demo", "--ref", f"{ref}@{strength}"], env, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"the strength {strength} after {ref}@ is not from -2 to 2" in r.stderr and r.stdout == ""


def test_the_windows_help_names_the_menu_entry_options(env: dict[str, str]) -> None:
    """README tells pipx users to run --install-desktop-entry; --help did not name it."""
    said = run_cli(["--help"], env, timeout=60).stdout
    assert "krea-desktop --install-desktop-entry" in said and "--uninstall-desktop-entry" in said


@pytest.mark.parametrize(
    ("prompt", "said"), [("x", "has 1 character"), ("   ", "has 0 characters"), ("y" * 3001, "has 3,001 characters")]
)
def test_a_prompt_the_model_does_not_take_is_the_commands_use_exit_2(
    env: dict[str, str], prompt: str, said: str
) -> None:
    """Exit 1 said the same as the service failing: a script could not tell that it had
    called the command wrong. Values the model does not take are refused as options that
    cannot be parsed are, with 2."""
    r = run_cli(["generate", prompt, "--demo"], env)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = [line for line in r.stderr.splitlines() if line.startswith("krea-desktop: ")]
    assert line.startswith("krea-desktop: The prompt ") and said in line, line


def test_a_reference_address_that_fails_is_said_in_the_words_of_the_terminal(
    env: dict[str, str], tmp_path: Path
) -> None:
    """At a terminal there is nothing to drop a file onto: the advice names --ref."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *_args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/missing.png"
        r = run_cli(["generate", "two words", "--demo", "--ref", url], env)
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 1 and r.stdout == ""
    said = r.stderr.strip().splitlines()[-1]
    assert "404" in said and said.endswith("save the image and give the file to --ref."), said
    assert "drop" not in said


def test_a_simulator_on_a_port_in_use_says_so_in_one_sentence(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli(["simulator", "--port", str(port)], env, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"krea-desktop simulator: 127.0.0.1:{port} is already in use; "
        "choose another port with --port (0: any free one)."
    ), r.stderr


def test_a_simulator_on_an_address_not_this_machines_says_why_in_the_systems_words(env: dict[str, str]) -> None:
    """It said "(error while attempting to bind on address ('192.0.2.1', 0): cannot assign
    requested address)", a Python tuple in a sentence."""
    r = run_cli(["simulator", "--host", "192.0.2.1"], env, timeout=60)  # a documentation address: bound to nothing
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "krea-desktop simulator: cannot listen on 192.0.2.1:0 (cannot assign requested address)."
    ), r.stderr


def test_a_data_folder_variable_set_but_empty_is_said_before_the_default_library_is_used(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A script whose KREA_DESKTOP_DATA_DIR was left empty wrote into the person's own
    library without a word (empty is taken as unset, as the window takes it)."""
    xdg = tmp_path / "xdg"
    r = run_cli(["generate", "two words", "--demo"], {**env, "KREA_DESKTOP_DATA_DIR": "", "XDG_DATA_HOME": str(xdg)})
    assert r.returncode == 0, r.stderr
    library = xdg / "krea-desktop"
    assert r.stderr.splitlines()[0] == (
        f"krea-desktop: KREA_DESKTOP_DATA_DIR is set but empty, so the library in {library} is used."
    )
    assert Path(r.stdout.split()[0]).parent == library / "images"


def test_ctrl_c_while_an_image_is_saved_hands_it_over_before_the_run_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The save runs on a worker thread and ends whatever Ctrl+C does: its image was in
    the library but neither printed, copied into --out, nor noted as received, and the
    next run fetched it again."""
    import asyncio
    import threading

    from krea_desktop import cli
    from krea_desktop.library.saving import SaveQueue

    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    saving, go_on = threading.Event(), threading.Event()
    real_save = SaveQueue.save

    def slow_save(self: SaveQueue, image: Any) -> Any:
        saving.set()
        go_on.wait(10)
        return real_save(self, image)

    monkeypatch.setattr(SaveQueue, "save", slow_save)
    out = tmp_path / "out"
    args = cli.build_parser().parse_args(["generate", "a fox in snow", "--demo", "--out", str(out)])

    async def interrupted() -> None:
        run = asyncio.ensure_future(cli._generate(args))
        await asyncio.to_thread(saving.wait, 10)
        run.cancel()  # Ctrl+C, the image being saved
        await asyncio.sleep(0.05)
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(interrupted())
    with Library(tmp_path / "data") as library:
        (saved,) = library.entries()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(out / saved.file_name)]
    assert (out / saved.file_name).read_bytes() == saved.path.read_bytes()
