from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .openapi import build_schema
from .selectors import services_health


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    """The API's front door: where everything is."""
    return JsonResponse(
        {
            "name": "djstack API",
            "health": request.build_absolute_uri("/api/v1/health/"),
            "docs": request.build_absolute_uri("/api/v1/docs/"),
            "schema": request.build_absolute_uri("/api/v1/schema/"),
            "notes": request.build_absolute_uri("/api/v1/notes/"),
            "admin": request.build_absolute_uri("/admin/"),
        }
    )


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database and the cache both answer; 503 naming what failed."""
    states = services_health()
    failed = [state.name for state in states if not state.ok]
    body = {
        "status": "ok" if not failed else "error",
        "services": {state.name: state.as_dict() for state in states},
    }
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


@require_safe
def openapi_schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(build_schema(server_url=request.build_absolute_uri("/")))


@require_safe
def api_docs(request: HttpRequest):
    """Swagger UI, its assets served by the app itself so the page works offline."""
    return render(request, "core/docs.html", {"schema_url": "/api/v1/schema/"})
