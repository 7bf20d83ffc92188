"""Small JSON helpers shared by the API views."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse


class BadRequest(Exception):
    """Raised by views for input the client must fix; answered as 400 with the errors."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def json_body(request: HttpRequest) -> dict:
    if request.content_type != "application/json":
        raise BadRequest({"__all__": ["send a JSON object with Content-Type: application/json"]})
    try:
        data = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest({"__all__": [f"malformed JSON: {exc}"]}) from None
    if not isinstance(data, dict):
        raise BadRequest({"__all__": ["the body must be a JSON object"]})
    return data


def error_response(errors: dict[str, list[str]], status: int = 400) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)
