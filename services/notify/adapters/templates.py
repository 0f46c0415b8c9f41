"""Jinja2 templates of the messages, in Vietnamese; one set (subject, text, HTML) per event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_text = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
_html = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html.j2"], default=True),
)


def render(name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Return (subject, plain text, HTML) for template set ``name``."""
    subject = " ".join(_text.get_template(f"{name}.subject.j2").render(context).split())
    text = _text.get_template(f"{name}.txt.j2").render(context)
    html = _html.get_template(f"{name}.html.j2").render({**context, "subject": subject})
    return subject, text, html
