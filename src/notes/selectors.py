"""Reads of notes."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Note

MAX_PAGE_SIZE = 100


def note_list(*, limit: int = 20, offset: int = 0) -> tuple[int, QuerySet[Note]]:
    notes = Note.objects.all()
    return notes.count(), notes[offset : offset + limit]


def note_get(*, note_id: int) -> Note | None:
    return Note.objects.filter(pk=note_id).first()
