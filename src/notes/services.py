"""Writes to notes. Invalid values raise django's ValidationError with messages per field
(the API answers it as a 400 in the one error shape)."""

from __future__ import annotations

from django.db import transaction

from .models import Note


@transaction.atomic
def note_create(*, title: str, body: str = "") -> Note:
    note = Note(title=title, body=body)
    note.full_clean()
    note.save()
    return note


@transaction.atomic
def note_update(*, note: Note, title: str | None = None, body: str | None = None) -> Note:
    """Change the given fields; None leaves a field as it is."""
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
