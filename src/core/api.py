"""What every JSON API view shares: one error shape, bounded pagination, the schema's errors.

Every error under /api/ answers {"errors": {"<field or __all__>": ["message", ...]}}: DRF's
exceptions through `exception_handler`, Django's own 400/403/404/500 through the handlers
in config.urls, unknown paths through `not_found`.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import HttpRequest, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

ALL = "__all__"  # errors that belong to no single field (NON_FIELD_ERRORS_KEY)

logger = logging.getLogger(__name__)


class DatabaseUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"


def _messages(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [message for item in value for message in _messages(item)]
    if isinstance(value, dict):  # nested serializer errors, flattened to "field: message"
        return [f"{key}: {message}" for key, item in value.items() for message in _messages(item)]
    return [str(value)]


def error_body(detail) -> dict:
    """The one error shape, from a DRF error detail (a message, a list or a dict of them)."""
    if isinstance(detail, dict) and set(detail) != {"detail"}:
        return {"errors": {str(key): _messages(value) for key, value in detail.items()}}
    if isinstance(detail, dict):
        detail = detail["detail"]
    return {"errors": {ALL: _messages(detail)}}


def exception_handler(exc, context):
    """DRF's handler (status, headers such as Allow and Retry-After), then the one shape.
    A model's ValidationError raised by a service is the client's error too: 400, not 500;
    a database that cannot be reached is a 503, not a 500 (nor an HTML page in DEBUG)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, OperationalError):  # gone or restarting: the client may retry
        logger.warning("database unavailable: %s", (str(exc).strip() or repr(exc)).splitlines()[0])
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response  # None: unexpected, Django's handler500 answers (and logs it)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(message), status=status)


# Django's error handlers (config.urls): JSON under /api/, Django's pages elsewhere.
def bad_request(request, exception):
    if _is_api(request):
        return _json_error("Bad request.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return _json_error("You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _is_api(request):
        return _json_error("Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return _json_error("Internal server error.", 500)
    return defaults.server_error(request)


@csrf_exempt  # any method on an unknown API path is a 404, never a CSRF page
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Every unknown path under /api/, in development (DEBUG) as in production."""
    return _json_error("Not found: no API endpoint at this path (paths end with a slash).", 404)


class MethodFirstMixin:
    """A method the view does not serve is a 405 for everyone: checked before authentication
    and permissions, which would otherwise turn it into a 401 for anonymous clients."""

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


class JsonErrorsMixin:
    """For views that render HTML or YAML (the docs pages, the schema): their errors too are
    JSON in the one shape, not a text page or a YAML document."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit 1..100 (default 20), offset 0..2**31-1: out of range is a 400 naming the
    parameter (DRF's own class silently falls back to the default), and the bounds are in
    the schema, so the schema and the code agree."""

    default_limit = 20
    max_limit = 100
    max_offset = 2**31 - 1

    def _bounded(self, request, name: str, low: int, high: int, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise exceptions.ValidationError(
                {name: [f"must be a whole number, got {raw!r}"]}
            ) from None
        if not low <= value <= high:
            raise exceptions.ValidationError({name: [f"must be {low} to {high}, got {value}"]})
        return value

    def get_limit(self, request):
        return self._bounded(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request):
        return self._bounded(request, self.offset_query_param, 0, self.max_offset, 0)

    def get_schema_operation_parameters(self, view):
        bounds = {
            self.limit_query_param: (1, self.max_limit, self.default_limit),
            self.offset_query_param: (0, self.max_offset, 0),
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            low, high, default = bounds[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high, default=default)
        return parameters


ERRORS_COMPONENT = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "object",
            "description": f"Messages per field; `{ALL}` for errors of no single field.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    },
}


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
    }


def document_errors(result, generator, request, public):
    """drf-spectacular post-processing hook: each operation lists the errors it can answer,
    in the one shape (drf-spectacular itself documents only the success)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Errors"] = ERRORS_COMPONENT
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            places = {parameter.get("in") for parameter in operation.get("parameters", [])}
            security = operation.get("security", [])
            errors = {}
            if "requestBody" in operation or "query" in places:
                errors["400"] = "Invalid input; `errors` names each field."
            if security and {} not in security:
                errors["401"] = "Not authenticated."
                errors["403"] = "Authenticated, but not allowed (or a session without CSRF token)."
            if "path" in places:
                errors["404"] = "Not found."
            if "requestBody" in operation:
                errors["415"] = "The body is not application/json."
            if security and api_settings.DEFAULT_THROTTLE_CLASSES:
                errors["429"] = "Too many requests; Retry-After says when to try again."
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(code, _error_response(description))
    return result
