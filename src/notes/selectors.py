"""Reads of notes."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Note


def note_list() -> QuerySet[Note]:
    """Every note, newest first (the model's ordering); the API pages through it."""
    return Note.objects.all()
