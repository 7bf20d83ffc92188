"""The notes API: a viewset over services (writes) and selectors (reads).

Permissions, authentication, throttling and pagination come from REST_FRAMEWORK in
settings: open in development, writes need a user in production (docs/api.md).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from core.api import MethodFirstMixin

from . import selectors, services
from .serializers import NoteSerializer


@extend_schema_view(
    list=extend_schema(summary="List notes, newest first"),
    create=extend_schema(summary="Create a note"),
    retrieve=extend_schema(summary="Read a note"),
    update=extend_schema(summary="Replace a note (a body left out becomes empty)"),
    partial_update=extend_schema(summary="Change some fields of a note"),
    destroy=extend_schema(summary="Delete a note"),
)
class NoteViewSet(MethodFirstMixin, viewsets.ModelViewSet):
    """Notes: short texts with a title. Reads are open; in production writes need a user."""

    serializer_class = NoteSerializer

    def get_queryset(self):
        return selectors.note_list()

    def perform_create(self, serializer: NoteSerializer) -> None:
        serializer.instance = services.note_create(**serializer.validated_data)

    def perform_update(self, serializer: NoteSerializer) -> None:
        serializer.instance = services.note_update(
            note=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance) -> None:
        services.note_delete(note=instance)
