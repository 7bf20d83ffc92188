"""The front door and the two health endpoints (readiness, liveness), as orchestrators use them."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import MethodFirstMixin
from .selectors import services_health


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    """The API's front door: where everything is."""
    links = {
        "health": "/api/v1/health/",
        "liveness": "/api/v1/health/live/",
        "docs": "/api/v1/docs/",
        "redoc": "/api/v1/redoc/",
        "schema": "/api/v1/schema/",
        "notes": "/api/v1/notes/",
        "admin": "/admin/",
    }
    urls = {name: request.build_absolute_uri(path) for name, path in links.items()}
    return JsonResponse({"name": "djstack API", **urls})


class ProbeView(MethodFirstMixin, APIView):
    """Probes are open, unthrottled and read no session or token: a probe must not depend on
    the database through authentication, nor be refused for asking too often."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


_SERVICE = inline_serializer(
    "ServiceState",
    {
        "status": serializers.ChoiceField(["ok", "error"]),
        "latency_ms": serializers.FloatField(),
        "error": serializers.CharField(required=False),
    },
)
_READINESS = inline_serializer(
    "Readiness",
    {
        "status": serializers.ChoiceField(["ok", "error"]),
        "services": serializers.DictField(child=_SERVICE),
        "failed": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
_LIVENESS = inline_serializer("Liveness", {"status": serializers.ChoiceField(["ok"])})


class ReadinessView(ProbeView):
    @extend_schema(
        summary="Readiness: the database and the cache both answer",
        responses={200: _READINESS, 503: _READINESS},
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """200 when PostgreSQL and Redis both answer a real round trip; 503 naming what failed.
        For readinessProbe and the compose healthcheck: take the instance out of traffic."""
        states = services_health()
        failed = [state.name for state in states if not state.ok]
        body = {
            "status": "ok" if not failed else "error",
            "services": {state.name: state.as_dict() for state in states},
        }
        if failed:
            body["failed"] = failed
        return Response(body, status=503 if failed else 200, headers={"Cache-Control": "no-store"})


class LivenessView(ProbeView):
    @extend_schema(
        summary="Liveness: the process can serve requests",
        responses={200: _LIVENESS},
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """200 while the process serves requests, whatever the database or cache do: for
        livenessProbe, so an outage of PostgreSQL never gets healthy pods restarted."""
        return Response({"status": "ok"}, headers={"Cache-Control": "no-store"})
