"""YAML as the product reads its configuration files: PyYAML's safe loader, except that a key repeated
in one mapping is an error (YAML would keep the last value silently: `min_group_size: 10` followed by
`min_group_size: 2` made k = 2); a file that cannot be read (missing, a folder, not UTF-8) or parsed
becomes one line naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from cleanroom.errors import ConfigurationError
from cleanroom.text_files import read_text_file


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in first_line:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first on line {first_line[key]}): the later value would win silently",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, path: Path) -> Any:
    """Parse `text` (read from `path`); raises ConfigurationError naming the file, line and fix."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None)
        if problem and problem.startswith("duplicate key"):
            raise ConfigurationError(problem, where=where, fix="keep one value for that key") from None
        raise ConfigurationError(
            f"not valid YAML{f' ({problem})' if problem else ''}", where=where, fix="correct the YAML syntax"
        ) from None


def read_yaml_file(path: Path, what: str, fix_missing: str) -> Any:
    """Read and parse a UTF-8 YAML file; every way it can be unreadable is one ConfigurationError."""
    return load_yaml(read_text_file(path, what, fix_missing), Path(path))
