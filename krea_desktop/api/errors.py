"""Typed errors with messages a person can act on, one sentence each."""

from __future__ import annotations

from typing import Any


class KreaError(Exception):
    """Base class: ``str(error)`` is a one-sentence message meant for a user."""

    retryable = False
    # Set by the client: the task certainly never reached the service (nothing is paid for),
    # or the service had (or may have) accepted the task when this came (its images may
    # still be made: a failure while following it, asking after a lost answer, or
    # collecting it for a later run).
    never_sent = False
    task_accepted = False
    # Set by a program that keeps the record of the task this ended and collects its images
    # by itself later (the window, the command line): its sentence then says so.
    record_kept = False
    # Set by a program that follows the task: how many of its images had arrived when this
    # came (saved, or held for want of room): the task is then not to be sent again whole.
    images_arrived = 0

    def __init__(
        self, message: str, *, code: str | None = None, parameter: str | None = None, kept_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.parameter = parameter
        # What a program that keeps the record of a task sent and collects it by itself
        # (the app, the command line) says instead: "are collected later" where the
        # library API's caller is told they "can be". None: the same as ``message``.
        self.kept_message = kept_message

    def __str__(self) -> str:
        return self.message


class ValidationError(KreaError):
    """A parameter is outside what the model accepts (raised before anything is sent)."""


class AuthenticationError(KreaError):
    """The API key is missing or not accepted."""


# What the service and the client say of a key, without where it is set: the window and
# the command line each add their own place (krea_desktop.user_words).
NO_KEY_GIVEN = "No API key was given."
NO_KEY_SENT = "The service received no API key."
KEY_REFUSED = "The API key was not accepted."


class InsufficientCreditsError(KreaError):
    """The account has no balance left."""


class ServiceBusyError(KreaError):
    """The service is at capacity; trying again later should work."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceTimeoutError(KreaError):
    """The service, or the connection to it, took too long."""

    retryable = True


class NetworkError(KreaError):
    """The service could not be reached."""

    retryable = True


class MalformedResponseError(KreaError):
    """The service answered with something that is not what the protocol promises."""


class ContentError(KreaError):
    """The request or result was refused by content checks."""


class TaskError(KreaError):
    """The service reported a failure for a task that fits no narrower class."""


class CancelledError(KreaError):
    """The user cancelled the job."""


# Failures after which a task already sent may still be collected later, so its record of
# paid work is kept: the service may finish it, a key can be corrected, and asking for
# its images again costs nothing.
COLLECT_LATER: tuple[type[KreaError], ...] = (
    ServiceTimeoutError,
    NetworkError,
    ServiceBusyError,
    AuthenticationError,
)


def said_of_the_service(err: object) -> bool:
    """Whether ``err`` speaks of the service as the key and the address reach it (a key
    refused, credits run out, a service out of reach, busy or garbled, a task it failed)
    rather than of the request itself (a parameter, a content check) or of this program:
    what a new key or service address makes stale."""
    return isinstance(
        err,
        (
            AuthenticationError,
            InsufficientCreditsError,
            ServiceBusyError,
            ServiceTimeoutError,
            NetworkError,
            MalformedResponseError,
            TaskError,
        ),
    )


def service_gave_up(err: KreaError) -> bool:
    """Whether ``err`` is the service's own word, while it was followed, that it gave the
    task up (its provider timed out): nothing more of it will come, however often asked."""
    return isinstance(err, ServiceTimeoutError) and err.code == "timeoutProvider" and err.task_accepted


def may_collect_later(err: KreaError) -> bool:
    """Whether a task that ended with ``err`` may still have images to collect, so that its
    record of paid work is kept: an answer that was lost (the task may have arrived), or a
    failure while following a task the service had accepted that says nothing of the task
    itself (a key revoked, a portal's page or a garbled answer instead of the service's)."""
    if err.never_sent:
        return False
    if service_gave_up(err):
        return False
    if isinstance(err, (ServiceTimeoutError, NetworkError)):
        return True
    return err.task_accepted and isinstance(err, (*COLLECT_LATER, MalformedResponseError, InsufficientCreditsError))
