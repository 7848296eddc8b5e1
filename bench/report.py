"""BENCHMARKS.md is shared by all benchmarks: each owns one section, replaced in place on every run."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cleanroom.demo_setup import ensure_demo_workspace
from cleanroom.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

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


def bench_arguments(doc: str, name: str) -> argparse.ArgumentParser:
    """The options every benchmark has: its workspace under var/bench/ and --no-write."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=ROOT / "var" / "bench" / name)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    return parser


def fresh_workspace(path: Path, scale: float = 0.02) -> tuple[Settings, Path]:
    """A new demo workspace (keys, spec, signed by every node, exports at `scale`); returns the spec path."""
    shutil.rmtree(path, ignore_errors=True)
    settings = Settings(workspace=path)
    return settings, ensure_demo_workspace(settings, scale=scale)


def publish(lines: list[str], key: str, title: str, *, command: str, dry_run: bool) -> None:
    """Print a benchmark's result and, unless it is a dry run, replace its section of BENCHMARKS.md."""
    from rich.console import Console

    Console().print("\n".join(lines))
    if not dry_run:
        replace_section(ROOT / "BENCHMARKS.md", key, title, lines, command=command)
