"""Prefect deployments of the lifecycle: from the UI, on a schedule, and when a party has new data."""
