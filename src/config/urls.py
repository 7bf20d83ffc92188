from django.contrib import admin
from django.urls import include, path, re_path

from core import api
from core.views import index

urlpatterns = [
    path("", index, name="index"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("core.urls")),
    path("api/v1/notes/", include("notes.urls")),
    re_path(r"^api/", api.not_found),  # last: any other path under /api/ is a JSON 404
]

# JSON errors under /api/, Django's usual pages elsewhere (used when DEBUG is off).
handler400 = api.bad_request
handler403 = api.permission_denied
handler404 = api.page_not_found
handler500 = api.server_error
