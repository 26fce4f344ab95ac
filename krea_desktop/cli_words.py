"""The command line's words for the library's errors: what the library API names by the
service's fields, or by the window's Settings, named as a person at a terminal knows it."""

from __future__ import annotations

import re

from krea_desktop.api import errors as E
from krea_desktop.user_words import as_the_app_says


def in_the_users_words(err: BaseException) -> str:
    """``err``'s message, a parameter it opens with named as the command line names it: the
    library API's messages name the service's fields ("positivePrompt has 1 character"),
    which a person who typed a prompt and --ref never wrote."""
    if isinstance(err, E.AuthenticationError):  # here the key is also the variable's
        return as_the_app_says(err, "in RUNWARE_API_KEY or the window's Settings")
    text = as_the_app_says(err)
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
