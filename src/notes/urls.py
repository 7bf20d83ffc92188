from django.urls import path

from . import views

urlpatterns = [
    path("", views.notes_collection, name="notes"),
    path("<int:note_id>/", views.note_item, name="note"),
]
