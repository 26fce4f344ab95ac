"""The command line's words for the library's errors: what the library API names by the
service's fields, or by the window's Settings, named as a person at a terminal knows it."""

from __future__ import annotations

import re

from krea_desktop.api import errors as E
from krea_desktop.user_words import as_the_app_says

# A reference the window says to save and drop is, at the terminal, saved and given to --ref.
_DROPPED = (
    ("save the image and drop the file", "save the image and give the file to --ref"),
    ("save a smaller copy and drop the file", "save a smaller copy and give that to --ref"),
    ("save it as a file and drop that instead", "save it as a file and give that to --ref"),
)


def in_the_users_words(err: BaseException) -> str:
    """``err``'s message, a parameter it opens with named as the command line names it: the
    library API's messages name the service's fields ("positivePrompt has 1 character"),
    which a person who typed a prompt and --ref never wrote."""
    if isinstance(err, E.AuthenticationError):  # here the key is also the variable's
        return as_the_app_says(err, "in RUNWARE_API_KEY or the window's Settings")
    text = as_the_app_says(err)
    for window_words, terminal_words in _DROPPED:  # at a terminal there is nothing to drop onto
        text = text.replace(window_words, terminal_words)
    parameter = getattr(err, "parameter", None)
    if not isinstance(err, E.ValidationError) or not parameter or not text.startswith(parameter):
        return text
    if parameter == "positivePrompt":
        name = "The prompt"
    elif match := re.fullmatch(r"inputs\.referenceImages\[(\d+)\](\.strength|\.image)?", parameter):
        number = int(match.group(1)) + 1
        name = f"The strength of --ref {number}" if match.group(2) == ".strength" else f"--ref {number}"
    elif parameter == "inputs.referenceImages":
        name = "The --ref list"
    else:
        return text
    return name + text[len(parameter) :]


# Said when collecting an earlier run's task fails for a reason of this program's own.
EARLIER_UNEXPECTED = (
    "an earlier task could not be collected now (an unexpected error, noted in the log); it is tried again next time."
)


def note_unexpected(task_uuid: str) -> None:
    import logging

    logging.getLogger(__name__).exception("collecting the earlier task %s failed", task_uuid)
