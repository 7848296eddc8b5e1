"""BENCHMARKS.md is shared by all benchmarks: each owns one section, replaced in place on every run."""

from __future__ import annotations

from pathlib import Path

HEADER = "# Benchmarks\n\nEvery figure below was written by the command shown with it, on the machine named.\n"


def replace_section(path: Path, key: str, title: str, lines: list[str], *, command: str) -> None:
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    body = "\n".join([begin, f"## {title}", "", f"Reproduce: `{command}`", "", *lines, end])
    text = path.read_text() if path.exists() else HEADER
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + body + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.write_text(text)
