"""How the library's errors read to the people of the window and the command line. The
library API's messages say what happened and what its caller can do; these two programs
also know where the key is set, and they keep the record of a task sent and collect its
images by themselves."""

from __future__ import annotations

from krea_desktop.api import errors as E

IN_SETTINGS = "in Settings"


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
    return text
