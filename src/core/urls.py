from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

urlpatterns = [
    path("health/", views.ReadinessView.as_view(), name="health"),
    path("health/live/", views.LivenessView.as_view(), name="liveness"),
    path("schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="openapi-schema",
                                                template_name="core/redoc.html"),
         name="api-redoc"),
]
