import pytest

from notes.models import Note

pytestmark = pytest.mark.django_db

NOTES = "/api/v1/notes/"


def test_create_then_read_back_from_postgres(api):
    created = api.post(NOTES, {"title": "first", "body": "hello"})
    assert created.status_code == 201
    note_id = created.json()["id"]
    assert Note.objects.get(pk=note_id).body == "hello"
    read = api.get(f"{NOTES}{note_id}/")
    assert read.status_code == 200
    assert read.json()["title"] == "first"


def test_list_is_newest_first_and_paginated(api):
    for n in range(3):
        api.post(NOTES, {"title": f"note {n}"})
    page = api.get(NOTES, limit=2).json()
    assert page["count"] == 3
    assert [note["title"] for note in page["results"]] == ["note 2", "note 1"]
    rest = api.get(NOTES, limit=2, offset=2).json()
    assert [note["title"] for note in rest["results"]] == ["note 0"]


def test_patch_changes_only_given_fields(api):
    note_id = api.post(NOTES, {"title": "t", "body": "keep"}).json()["id"]
    response = api.patch(f"{NOTES}{note_id}/", {"title": "new"})
    assert response.status_code == 200
    assert response.json() == {**response.json(), "title": "new", "body": "keep"}


def test_put_replaces_the_note(api):
    note_id = api.post(NOTES, {"title": "t", "body": "old"}).json()["id"]
    response = api.put(f"{NOTES}{note_id}/", {"title": "replaced"})
    assert response.status_code == 200
    assert Note.objects.get(pk=note_id).body == ""


def test_delete_removes_the_row(api):
    note_id = api.post(NOTES, {"title": "gone"}).json()["id"]
    assert api.delete(f"{NOTES}{note_id}/").status_code == 204
    assert not Note.objects.filter(pk=note_id).exists()
    assert api.get(f"{NOTES}{note_id}/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "title", "This field is required."),
        ({"title": ""}, "title", "This field cannot be blank."),
        ({"title": "x" * 201}, "title", "at most 200 characters"),
        ({"title": 5}, "title", "must be a string"),
        ({"title": "ok", "colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(api, payload, field, message):
    response = api.post(NOTES, payload)
    assert response.status_code == 400
    assert any(message in text for text in response.json()["errors"][field])
    assert Note.objects.count() == 0


def test_malformed_json_is_a_400(client):
    response = client.post(NOTES, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["errors"]["__all__"][0]


def test_wrong_content_type_is_a_400(client):
    response = client.post(NOTES, {"title": "form"})
    assert response.status_code == 400


def test_bad_pagination_is_a_400(api):
    response = api.get(NOTES, limit="many")
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]
    assert api.get(NOTES, limit=1000).status_code == 400


def test_patch_with_invalid_value_changes_nothing(api):
    note_id = api.post(NOTES, {"title": "stay"}).json()["id"]
    assert api.patch(f"{NOTES}{note_id}/", {"title": ""}).status_code == 400
    assert Note.objects.get(pk=note_id).title == "stay"


def test_unknown_note_is_404(api):
    assert api.get(f"{NOTES}999999/").status_code == 404
    assert api.patch(f"{NOTES}999999/", {"title": "x"}).status_code == 404


def test_method_not_allowed(client):
    assert client.delete(NOTES).status_code == 405
