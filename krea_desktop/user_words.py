"""How the library's errors read to the people of the window and the command line. The
library API's messages say what happened and what its caller can do; these two programs
also know where the key is set, and they keep the record of a task sent and collect its
images by themselves."""

from __future__ import annotations

import os

from krea_desktop.api import errors as E

IN_SETTINGS = "in Settings"
IN_THE_ENVIRONMENT = "in the RUNWARE_API_KEY environment variable"  # keystore.ENV_KEY


def where_the_key_is() -> str:
    """Where the window's key is set: the environment's variable, when set, comes before
    Settings (which cannot change it)."""
    return IN_THE_ENVIRONMENT if os.environ.get("RUNWARE_API_KEY", "").strip() else IN_SETTINGS


def as_the_app_says(err: BaseException, key_place: str = IN_SETTINGS) -> str:
    """``err``'s one sentence as a program that keeps its tasks says it: "are collected
    later" where the library API says "can be", and a key missing or refused sent to
    ``key_place``, where it is set."""
    if not isinstance(err, E.KreaError):
        return str(err)
    text = err.kept_message or err.message
    if isinstance(err, E.AuthenticationError) and text in (E.NO_KEY_GIVEN, E.NO_KEY_SENT, E.KEY_REFUSED):
        remedy = "check it" if text == E.KEY_REFUSED else "add one"
        text = f"{text.removesuffix('.')}; {remedy} {key_place}."
    if err.record_kept and err.kept_message is None:
        text = _collected_later(err, text)
    return text


COLLECTED_LATER = "the task's images are collected later"


def _collected_later(err: E.KreaError, text: str) -> str:
    """``text`` saying that the images of the task it ended are collected later (its
    record is kept): a person told only that "the connection to the service broke off"
    takes the paid images for lost, and may pay for them again. For a connection or a
    wait that failed, the clause takes the place of the advice ("check your connection",
    "try again": sending the task again would pay for it twice); a key or an account to
    put right keeps its own."""
    if isinstance(err, (E.NetworkError, E.ServiceTimeoutError)):
        text = text.split(";")[0].rstrip(".") + "."
    return f"{text.removesuffix('.')}; {COLLECTED_LATER}."
