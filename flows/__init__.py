"""Prefect flows: compositions of the phase tasks in `tasks/`."""

from flows.error_logging import one_line_user_errors

one_line_user_errors()
