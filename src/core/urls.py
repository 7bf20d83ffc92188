from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("schema/", views.openapi_schema, name="openapi-schema"),
    path("docs/", views.api_docs, name="api-docs"),
]
