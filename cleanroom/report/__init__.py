"""The collaboration report: content (JSON), a self-contained HTML page with charts, nothing else."""
