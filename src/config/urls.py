from django.contrib import admin
from django.urls import include, path

from core.views import index

urlpatterns = [
    path("", index, name="index"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("core.urls")),
    path("api/v1/notes/", include("notes.urls")),
]
