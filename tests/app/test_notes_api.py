import pytest

from notes.models import Note

pytestmark = pytest.mark.django_db

NOTES = "/api/v1/notes/"


def test_create_then_read_back_from_postgres(api):
    created = api.post(NOTES, {"title": "first", "body": "hello"})
    assert created.status_code == 201
    note = created.json()
    assert set(note) == {"id", "title", "body", "created_at", "updated_at"}
    assert Note.objects.get(pk=note["id"]).body == "hello"
    read = api.get(f"{NOTES}{note['id']}/")
    assert read.status_code == 200
    assert read.json() == note


def test_list_is_newest_first_and_paginated(api):
    for n in range(3):
        api.post(NOTES, {"title": f"note {n}"})
    page = api.get(NOTES, limit=2).json()
    assert page["count"] == 3
    assert [note["title"] for note in page["results"]] == ["note 2", "note 1"]
    assert page["previous"] is None and "offset=2" in page["next"]
    rest = api.get(NOTES, limit=2, offset=2).json()
    assert [note["title"] for note in rest["results"]] == ["note 0"]
    assert rest["next"] is None


def test_default_page_is_20_and_the_largest_is_100(api):
    Note.objects.bulk_create(Note(title=f"n{i}") for i in range(120))
    assert len(api.get(NOTES).json()["results"]) == 20
    assert len(api.get(NOTES, limit=100).json()["results"]) == 100


@pytest.mark.parametrize(
    ("params", "name", "message"),
    [
        ({"limit": 0}, "limit", "must be 1 to 100, got 0"),
        ({"limit": 101}, "limit", "must be 1 to 100, got 101"),
        ({"limit": -3717}, "limit", "must be 1 to 100, got -3717"),
        ({"limit": "many"}, "limit", "must be a whole number, got 'many'"),
        ({"offset": -1}, "offset", "must be 0 to 2147483647, got -1"),
        ({"offset": 2**31}, "offset", "must be 0 to 2147483647"),
    ],
)
def test_pagination_out_of_bounds_is_a_400_naming_the_parameter(anon, params, name, message):
    response = anon.get(NOTES, **params)
    assert response.status_code == 400
    assert any(message in text for text in response.json()["errors"][name])


def test_pagination_bounds_are_in_the_schema(anon):
    schema = anon.get("/api/v1/schema/", format="json").json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"][NOTES]["get"]["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert parameters["offset"]["minimum"] == 0


def test_patch_changes_only_given_fields(api):
    note_id = api.post(NOTES, {"title": "t", "body": "keep"}).json()["id"]
    response = api.patch(f"{NOTES}{note_id}/", {"title": "new"})
    assert response.status_code == 200
    assert response.json() == {**response.json(), "title": "new", "body": "keep"}


def test_put_replaces_the_note(api):
    note_id = api.post(NOTES, {"title": "t", "body": "old"}).json()["id"]
    response = api.put(f"{NOTES}{note_id}/", {"title": "replaced"})
    assert response.status_code == 200
    assert Note.objects.values_list("title", "body").get(pk=note_id) == ("replaced", "")


def test_delete_removes_the_row(api):
    note_id = api.post(NOTES, {"title": "gone"}).json()["id"]
    assert api.delete(f"{NOTES}{note_id}/").status_code == 204
    assert not Note.objects.filter(pk=note_id).exists()
    assert api.get(f"{NOTES}{note_id}/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "title", "This field is required."),
        ({"title": ""}, "title", "This field may not be blank."),
        ({"title": "x" * 201}, "title", "Ensure this field has no more than 200 characters."),
        ({"title": 5}, "title", "Not a valid string."),
        ({"title": None}, "title", "This field may not be null."),
        ({"title": "a\x00b"}, "title", "Null characters are not allowed."),
        ({"title": "ok", "body": 7}, "body", "Not a valid string."),
        ({"title": "ok", "body": "a\x00b"}, "body", "Null characters are not allowed."),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(api, payload, field, message):
    response = api.post(NOTES, payload)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert Note.objects.count() == 0


@pytest.mark.parametrize("title", ["x", "x" * 200, "  ", "émoji 🙂"])
def test_every_title_the_schema_allows_is_stored_as_sent(api, title):
    response = api.post(NOTES, {"title": title})
    assert response.status_code == 201, response.json()
    assert Note.objects.get(pk=response.json()["id"]).title == title


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.post(NOTES, ["title"])
    assert response.status_code == 400
    assert "__all__" in response.json()["errors"]


def test_patch_with_invalid_value_changes_nothing(api):
    note_id = api.post(NOTES, {"title": "stay"}).json()["id"]
    assert api.patch(f"{NOTES}{note_id}/", {"title": ""}).status_code == 400
    assert Note.objects.get(pk=note_id).title == "stay"


def test_reads_are_open_writes_need_a_user(anon, api):
    note_id = api.post(NOTES, {"title": "mine"}).json()["id"]
    assert anon.get(NOTES).status_code == 200
    assert anon.get(f"{NOTES}{note_id}/").status_code == 200
    item = f"{NOTES}{note_id}/"
    for response in (
        anon.post(NOTES, {"title": "x"}),
        anon.put(item, {"title": "x"}),
        anon.patch(item, {"title": "x"}),
        anon.delete(item),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    assert Note.objects.values_list("title", flat=True).get(pk=note_id) == "mine"


def test_a_logged_in_session_may_write(client, user):
    client.force_login(user)
    response = client.post(NOTES, {"title": "from the browser"}, content_type="application/json")
    assert response.status_code == 201
