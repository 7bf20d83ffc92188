from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views
from .api import JsonErrorsMixin


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JsonErrorsMixin, SpectacularSwaggerView):
    pass


class RedocView(JsonErrorsMixin, SpectacularRedocView):
    template_name = "core/redoc.html"  # without the CDN fonts of drf-spectacular's page


urlpatterns = [
    path("health/", views.ReadinessView.as_view(), name="health"),
    path("health/live/", views.LivenessView.as_view(), name="liveness"),
    path("schema/", SchemaView.as_view(), name="openapi-schema"),
    path("docs/", SwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("redoc/", RedocView.as_view(url_name="openapi-schema"), name="api-redoc"),
]
