"""Email subject templates: the fields they may name, checked when set, filled when sent."""

from __future__ import annotations

from string import Formatter

DEFAULT_SUBJECT_TEMPLATE = "Loan interview – {applicant} – {date}"
SUBJECT_FIELDS = ("title", "applicant", "conversation_id", "account_id", "date")
MAX_TEMPLATE = 500


def render_template(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``{field}`` replaced; nothing else of str.format is honoured.

    str.format would reach attributes and items (``{title.__class__}``) and
    accept widths (``{title:>999999999}``) from a template that a user, or an
    account's stored settings, supplies.
    """
    pieces = []
    for literal, name, _spec, _conversion in _parsed(template):
        pieces.append(literal)
        if name is not None:
            pieces.append(values[name])
    return "".join(pieces)


def _parsed(template: str) -> list[tuple[str, str | None, str | None, str | None]]:

    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"longer than {MAX_TEMPLATE} characters")
    try:
        pieces = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in SUBJECT_FIELDS:
            raise ValueError(f"unknown field {{{name}}}; use any of "
                             + ", ".join(f"{{{f}}}" for f in SUBJECT_FIELDS))
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no format or conversion; write just {{{name}}}")
    return pieces


def check_subject_template(template: str) -> None:
    """Raise ValueError naming the problem when a template would not render."""
    _parsed(template)
