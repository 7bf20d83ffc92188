"""JSON API for notes: thin views over services (writes) and selectors (reads)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.http import BadRequest, error_response, json_body

from . import selectors, services


def _int_param(request: HttpRequest, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.GET.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest({name: [f"must be a whole number, got {raw!r}"]}) from None
    if value < 0 or (maximum is not None and value > maximum):
        limit = f"0 to {maximum}" if maximum is not None else "0 or more"
        raise BadRequest({name: [f"must be {limit}, got {value}"]})
    return value


def _api(view):
    """Answer BadRequest and ValidationError as 400 with the field messages."""

    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return error_response(exc.errors)
        except ValidationError as exc:
            return error_response(exc.message_dict)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@csrf_exempt  # a JSON API for non-browser clients; no cookie-based auth is accepted here
@require_http_methods(["GET", "POST"])
@_api
def notes_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        data = services.note_input_validate(json_body(request), partial=False)
        note = services.note_create(**data)
        return JsonResponse(note.as_dict(), status=201)
    limit = _int_param(request, "limit", 20, maximum=selectors.MAX_PAGE_SIZE)
    offset = _int_param(request, "offset", 0)
    count, notes = selectors.note_list(limit=limit, offset=offset)
    return JsonResponse({"count": count, "results": [note.as_dict() for note in notes]})


@csrf_exempt
@require_http_methods(["GET", "PUT", "PATCH", "DELETE"])
@_api
def note_item(request: HttpRequest, note_id: int) -> HttpResponse:
    note = selectors.note_get(note_id=note_id)
    if note is None:
        return JsonResponse({"errors": {"__all__": [f"no note with id {note_id}"]}}, status=404)
    if request.method == "GET":
        return JsonResponse(note.as_dict())
    if request.method == "DELETE":
        services.note_delete(note=note)
        return HttpResponse(status=204)
    partial = request.method == "PATCH"
    data = services.note_input_validate(json_body(request), partial=partial)
    if not partial:
        data.setdefault("body", "")  # PUT replaces the whole note
    note = services.note_update(note=note, **data)
    return JsonResponse(note.as_dict())
