"""How an error reads once the window or the command line keeps its task to collect later."""

from __future__ import annotations

from krea_desktop.api import errors as E
from krea_desktop.user_words import as_the_app_says


def kept(err: E.KreaError) -> E.KreaError:
    err.record_kept = True
    return err


def test_a_lost_connection_says_the_images_are_collected_later_in_place_of_its_advice() -> None:
    # "Check your connection" (or "try again") would send the task again, and pay twice.
    assert as_the_app_says(kept(E.NetworkError("The service could not be reached; check your connection."))) == (
        "The service could not be reached; the task's images are collected later."
    )
    assert as_the_app_says(kept(E.ServiceTimeoutError("The service did not answer within 20 seconds."))) == (
        "The service did not answer within 20 seconds; the task's images are collected later."
    )


def test_a_key_to_put_right_keeps_its_advice_beside_the_collecting() -> None:
    assert as_the_app_says(kept(E.AuthenticationError(E.KEY_REFUSED))) == (
        "The API key was not accepted; check it in Settings; the task's images are collected later."
    )


def test_an_error_whose_task_is_not_kept_or_already_says_so_is_unchanged() -> None:
    assert as_the_app_says(E.NetworkError("The connection to the service broke off.")) == (
        "The connection to the service broke off."
    )
    busy = kept(
        E.ServiceTimeoutError("Busy; can be collected.", kept_message="Busy; the task's images are collected later.")
    )
    assert as_the_app_says(busy) == "Busy; the task's images are collected later."
