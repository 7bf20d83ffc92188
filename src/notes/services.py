"""Writes to notes. Invalid input raises django's ValidationError with messages per field."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import Note

EDITABLE_FIELDS = ("title", "body")


def note_input_validate(data: dict, *, partial: bool) -> dict:
    """Check the shape of client input: known fields, strings, title present unless partial."""
    errors = {name: ["unknown field"] for name in sorted(set(data) - set(EDITABLE_FIELDS))}
    errors |= {
        name: ["must be a string"]
        for name, value in data.items()
        if name in EDITABLE_FIELDS and not isinstance(value, str)
    }
    if not partial and "title" not in data:
        errors["title"] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic
def note_create(*, title: str, body: str = "") -> Note:
    note = Note(title=title, body=body)
    note.full_clean()
    note.save()
    return note


@transaction.atomic
def note_update(*, note: Note, title: str | None = None, body: str | None = None) -> Note:
    if title is not None:
        note.title = title
    if body is not None:
        note.body = body
    note.full_clean()
    note.save()
    return note


@transaction.atomic
def note_delete(*, note: Note) -> None:
    note.delete()
