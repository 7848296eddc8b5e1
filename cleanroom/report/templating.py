"""The report's Jinja2 environment (autoescaped): the page and every section are templates in
`templates/`; charts come in as markup drawn by matplotlib."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Environment(
    loader=PackageLoader("cleanroom.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)
TEMPLATES.globals["zip"] = zip


def render(template: str, **values: Any) -> Markup:
    """A template rendered to markup, ready to place in the page."""
    return Markup(TEMPLATES.get_template(template).render(**values))
