"""A user mistake is one line in Prefect's logs too: the engine logs every failed task and flow run with
its traceback (console and UI), which buried the line that names file, field and fix."""

from __future__ import annotations

import logging

from cleanroom.errors import CleanroomError

ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine", "prefect.flow_engine")


class OneLineUserErrors(logging.Filter):
    """Drops the traceback of records about a CleanroomError (the message keeps its one line); other
    exceptions keep theirs: they are bugs, and the traceback is what finds them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], CleanroomError):
            record.exc_info, record.exc_text = None, None
        return True


def one_line_user_errors() -> None:
    for name in ENGINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineUserErrors) for f in logger.filters):
            logger.addFilter(OneLineUserErrors())


class NoRepeatedFailure(logging.Filter):
    """For the command line, which ends a failed run with the error's one line itself: the engine's
    lines that repeat it (with its "fix:") are left to the UI."""

    REPEATS = ("Encountered exception during execution", "Finished in state Failed(", "Task run failed with")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (" — fix: " in message and message.startswith(self.REPEATS))


def one_line_console_failures() -> None:
    """Installed by `cleanroom run` and `demo` on the console handler Prefect puts on the root logger."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, NoRepeatedFailure) for f in handler.filters
        ):
            handler.addFilter(NoRepeatedFailure())
