"""Prefect flows: compositions of the phase tasks in `tasks/`."""
