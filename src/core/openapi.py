"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/schema/."""

from __future__ import annotations

from notes.models import Note

_NOTE_FIELDS = {
    "title": {"type": "string", "maxLength": Note._meta.get_field("title").max_length},
    "body": {"type": "string"},
}

_ERRORS = {
    "description": "Invalid input; `errors` maps each field to its messages.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
}
_NOT_FOUND = {"description": "No note with that id."}


def _json(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": schema_ref}}},
    }


def build_schema(*, server_url: str) -> dict:
    note_id = {"name": "note_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "djstack API", "version": "1.0.0"},
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": {
            "/api/v1/health/": {
                "get": {
                    "summary": "State of the database and the cache",
                    "responses": {
                        "200": _json("#/components/schemas/Health", "Both answer."),
                        "503": _json("#/components/schemas/Health", "One or both failed."),
                    },
                }
            },
            "/api/v1/notes/": {
                "get": {
                    "summary": "List notes, newest first",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "maximum": 100},
                        },
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": _json("#/components/schemas/NoteList", "A page of notes."),
                        "400": _ERRORS,
                    },
                },
                "post": {
                    "summary": "Create a note",
                    "requestBody": _request("#/components/schemas/NoteInput"),
                    "responses": {
                        "201": _json("#/components/schemas/Note", "Created."),
                        "400": _ERRORS,
                    },
                },
            },
            "/api/v1/notes/{note_id}/": {
                "parameters": [note_id],
                "get": {
                    "summary": "Read a note",
                    "responses": {
                        "200": _json("#/components/schemas/Note", "The note."),
                        "404": _NOT_FOUND,
                    },
                },
                "patch": {
                    "summary": "Change some fields of a note",
                    "requestBody": _request("#/components/schemas/NotePatch"),
                    "responses": {
                        "200": _json("#/components/schemas/Note", "Updated."),
                        "400": _ERRORS,
                        "404": _NOT_FOUND,
                    },
                },
                "put": {
                    "summary": "Replace a note",
                    "requestBody": _request("#/components/schemas/NoteInput"),
                    "responses": {
                        "200": _json("#/components/schemas/Note", "Replaced."),
                        "400": _ERRORS,
                        "404": _NOT_FOUND,
                    },
                },
                "delete": {
                    "summary": "Delete a note",
                    "responses": {"204": {"description": "Deleted."}, "404": _NOT_FOUND},
                },
            },
        },
        "components": {"schemas": _SCHEMAS},
    }


def _request(schema_ref: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


_SCHEMAS = {
    "NoteInput": {
        "type": "object",
        "required": ["title"],
        "properties": _NOTE_FIELDS,
        "additionalProperties": False,
    },
    "NotePatch": {"type": "object", "properties": _NOTE_FIELDS, "additionalProperties": False},
    "Note": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            **_NOTE_FIELDS,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "NoteList": {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}},
        },
    },
    "Errors": {
        "type": "object",
        "properties": {
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            }
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "error"]},
            "services": {"type": "object"},
            "failed": {"type": "array", "items": {"type": "string"}},
        },
    },
}
