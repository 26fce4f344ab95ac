"""The typed settings (krea_desktop.config): precedence, types, checks, the declarations."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from krea_desktop import config
from krea_desktop.api import spec
from krea_desktop.config import MemorySettingsStore, Option, OptionError, resolve
from krea_desktop.library import paths

LOCAL = "http://127.0.0.1:8765/v1"
PROXY = "https://proxy.example/v1"

# The keys settings files already hold: renaming one would lose users' settings.
LEGACY_KEYS = {
    "window/geometry",
    "window/mainSplitter",
    "window/rightSplitter",
    "generation/ratio",
    "generation/promptHistory",
    "generation/parameters",
    "api/endpoint",
    "gallery/exportFolder",
    "gallery/exportFormat",
    "gallery/thumbSide",
}


# --- precedence ------------------------------------------------------------------------------


def test_environment_then_stored_then_default() -> None:
    option = config.API_ENDPOINT
    assert resolve(option, env={"RUNWARE_API_URL": LOCAL}, stored=PROXY) == LOCAL
    assert resolve(option, env={}, stored=PROXY) == PROXY
    assert resolve(option, env={}, stored=None) == spec.DEFAULT_API_URL
    assert resolve(option, env={"OTHER": LOCAL}, stored=None) == spec.DEFAULT_API_URL


def test_a_blank_environment_variable_counts_as_unset() -> None:
    for blank in ("", "   ", "\t\n"):
        assert resolve(config.API_ENDPOINT, env={"RUNWARE_API_URL": blank}, stored=PROXY) == PROXY


def test_the_environment_value_is_normalised_like_a_stored_one() -> None:
    assert resolve(config.API_ENDPOINT, env={"RUNWARE_API_URL": f"  {LOCAL} "}, stored=None) == LOCAL


def test_an_unusable_environment_value_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(OptionError) as caught:
        resolve(config.API_ENDPOINT, env={"RUNWARE_API_URL": "http://api.example/v1"}, stored=PROXY)
    message = str(caught.value)
    assert "RUNWARE_API_URL" in message and "http://api.example/v1" in message and "HTTPS" in message
    assert isinstance(caught.value, ValueError)


def test_the_reason_for_refusing_an_environment_value_reads_as_part_of_one_sentence() -> None:
    with pytest.raises(OptionError) as caught:
        resolve(config.API_ENDPOINT, env={"RUNWARE_API_URL": "garbage"}, stored=None)
    message = str(caught.value)
    head, _, reason = message.partition("which cannot be used: ")
    assert head.startswith("RUNWARE_API_URL is set to 'garbage', ")
    assert reason[:1].islower() and message.endswith(".") and ". " not in message.replace("e.g. ", "")


def test_an_option_without_environment_ignores_it() -> None:
    assert resolve(config.RATIO, env={"generation/ratio": "16:9", "RATIO": "16:9"}, stored="4:3") == "4:3"


# --- rejected stored values fall back to the default ------------------------------------------------


@pytest.mark.parametrize(
    ("option", "stored"),
    [
        (config.RATIO, "5:7"),
        (config.RATIO, 16),
        (config.RATIO, ["16:9"]),
        (config.API_ENDPOINT, "http://app.localhost:8765/v1"),
        (config.API_ENDPOINT, "http://api.runware.ai/v1"),
        (config.API_ENDPOINT, "https://user:pw@api.runware.ai/v1"),
        (config.API_ENDPOINT, ""),
        (config.API_ENDPOINT, 42),
        (config.THUMB_SIDE, "large"),
        (config.THUMB_SIDE, "0"),
        (config.THUMB_SIDE, -20),
        (config.THUMB_SIDE, True),
        (config.THUMB_SIDE, 3.5),
        (config.WINDOW_GEOMETRY, b""),
        (config.WINDOW_GEOMETRY, "not bytes"),
        (config.MAIN_SPLITTER, 7),
        (config.PROMPT_HISTORY, {"a": 1}),
        (config.PARAMETERS, "seed=3"),
        (config.PARAMETERS, ["seed", 3]),
        (config.EXPORT_FOLDER, "   "),
        (config.EXPORT_FOLDER, 12),
        (config.EXPORT_FORMAT, "TIFF"),
        (config.EXPORT_FORMAT, 3),
    ],
)
def test_a_rejected_stored_value_gives_the_default(option: Option[Any], stored: object) -> None:
    assert config.accept(option, stored) is None
    assert resolve(option, env={}, stored=stored) == option.default


# --- type coercion: what the environment and INI files hand back -------------------------------------


def test_numbers_and_booleans_come_from_strings() -> None:
    assert resolve(config.THUMB_SIDE, env={}, stored="240") == 240
    assert resolve(config.THUMB_SIDE, env={}, stored=" 240 ") == 240
    assert resolve(config.THUMB_SIDE, env={}, stored=240) == 240
    assert config.coerce(float, "0.5") == 0.5
    assert config.coerce(float, "nan") is None
    assert config.coerce(float, True) is None
    assert config.coerce(bool, "true") is True and config.coerce(bool, "False") is False
    assert config.coerce(bool, "maybe") is None
    assert config.coerce(bool, 1) is None
    assert config.coerce(int, "12abc") is None


def test_bytes_lists_dicts_and_paths() -> None:
    assert resolve(config.MAIN_SPLITTER, env={}, stored=bytearray(b"\x00\xff")) == b"\x00\xff"
    assert resolve(config.MAIN_SPLITTER, env={}, stored=memoryview(b"ab")) == b"ab"
    assert config.coerce(list, ("a", "b")) == ["a", "b"]
    assert config.coerce(dict, {"seed": 3}) == {"seed": 3}
    assert config.coerce(Path, " ~/lib ") == Path("~/lib").expanduser()
    assert config.coerce(Path, "  ") is None


def test_checks_normalise() -> None:
    assert resolve(config.RATIO, env={}, stored=" 16:9 ") == "16:9"
    history = ["a", "", "b", "  ", "a", 7, "c"]
    assert resolve(config.PROMPT_HISTORY, env={}, stored=history) == ["b", "a", "c"]
    long = [f"prompt {i}" for i in range(config.PROMPT_HISTORY_LIMIT + 50)]
    assert resolve(config.PROMPT_HISTORY, env={}, stored=long) == long[-config.PROMPT_HISTORY_LIMIT :]
    assert resolve(config.PARAMETERS, env={}, stored={"seed": 3, 1: "x"}) == {"seed": 3}
    assert resolve(config.EXPORT_FOLDER, env={}, stored=" /tmp/out ") == "/tmp/out"
    assert resolve(config.EXPORT_FORMAT, env={}, stored="jpeg") == "JPG"


def test_defaults_are_never_shared() -> None:
    first = resolve(config.PROMPT_HISTORY, env={}, stored=None)
    first.append("changed")
    params = resolve(config.PARAMETERS, env={}, stored=None)
    params["seed"] = 1
    assert resolve(config.PROMPT_HISTORY, env={}, stored=None) == []
    assert resolve(config.PARAMETERS, env={}, stored=None) == {}
    assert config.PROMPT_HISTORY.default == [] and config.PARAMETERS.default == {}


# --- the data folder: environment only, the same answer as the library's --------------------------


def test_the_data_folder_comes_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.DATA_DIR.key is None and config.DATA_DIR.env == paths.ENV_DATA_DIR
    assert resolve(config.DATA_DIR, env={}, stored=None) is None
    assert resolve(config.DATA_DIR, env={"KREA_DESKTOP_DATA_DIR": "  "}, stored=None) is None
    folder = tmp_path / "lib"
    for value in (str(folder), f"  {folder}  "):
        monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", value)
        assert resolve(config.DATA_DIR, env={"KREA_DESKTOP_DATA_DIR": value}, stored=None) == paths.data_dir() == folder
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", "~/elsewhere")
    assert resolve(config.DATA_DIR, env={"KREA_DESKTOP_DATA_DIR": "~/elsewhere"}, stored=None) == paths.data_dir()
    with pytest.raises(ValueError):
        MemorySettingsStore(env={}).set(config.DATA_DIR, folder)


# --- the in-memory store ----------------------------------------------------------------------------


def test_memory_store_round_trip_and_precedence() -> None:
    store = MemorySettingsStore(env={})
    assert store.get(config.RATIO) == spec.DEFAULT_RATIO
    store.set(config.RATIO, "16:9")
    store.set(config.PROMPT_HISTORY, ["a", "b", "a"])
    store.set(config.WINDOW_GEOMETRY, b"\x01\x02")
    store.set(config.API_ENDPOINT, f" {PROXY} ")
    store.sync()
    assert store.values == {
        "generation/ratio": "16:9",
        "generation/promptHistory": ["b", "a"],
        "window/geometry": b"\x01\x02",
        "api/endpoint": PROXY,
    }
    assert store.get(config.RATIO) == "16:9" and store.synced == 1
    with_env = MemorySettingsStore(store.values, env={"RUNWARE_API_URL": LOCAL})
    assert with_env.get(config.API_ENDPOINT) == LOCAL
    assert store.get(config.API_ENDPOINT) == PROXY


def test_memory_store_refuses_values_its_options_reject() -> None:
    store = MemorySettingsStore(env={})
    for option, value in (
        (config.RATIO, "5:7"),
        (config.API_ENDPOINT, "http://api.example/v1"),
        (config.THUMB_SIDE, 0),
        (config.WINDOW_GEOMETRY, b""),
    ):
        with pytest.raises(ValueError):
            store.set(option, value)
    assert store.values == {}


def test_memory_store_hands_out_copies() -> None:
    store = MemorySettingsStore(env={})
    store.set(config.PARAMETERS, {"seed": 3})
    got = store.get(config.PARAMETERS)
    got["seed"] = 4
    assert store.get(config.PARAMETERS) == {"seed": 3}


# --- the declarations ---------------------------------------------------------------------------------


def _module_level_options() -> dict[str, Option[Any]]:
    return {name: value for name, value in vars(config).items() if isinstance(value, Option)}


def test_every_option_is_declared_once_with_a_unique_key() -> None:
    declared = _module_level_options()
    assert len(config.OPTIONS) == len(set(map(id, config.OPTIONS)))
    assert {id(o) for o in declared.values()} == {id(o) for o in config.OPTIONS}
    keys = [o.key for o in config.OPTIONS if o.key is not None]
    assert len(keys) == len(set(keys))
    envs = [o.env for o in config.OPTIONS if o.env is not None]
    assert len(envs) == len(set(envs))
    assert set(keys) == LEGACY_KEYS
    for option in config.OPTIONS:
        assert option.key is not None or option.env is not None, option
        assert option.doc, option.name
        # the default is always an acceptable answer of the option's own
        assert resolve(option, env={}, stored=None) == option.default


def test_each_key_is_written_once_in_the_source() -> None:
    source = Path(config.__file__).read_text(encoding="utf-8")
    literals = [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant)]
    for key in LEGACY_KEYS:
        assert literals.count(key) == 1, key


def test_options_are_frozen() -> None:
    with pytest.raises(AttributeError):
        config.RATIO.key = "elsewhere"  # type: ignore[misc]
