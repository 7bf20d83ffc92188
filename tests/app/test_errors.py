"""Every error under /api/ has one shape: {"errors": {"<field or __all__>": ["message"]}}."""

import pytest
from django.test import Client, override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from config import urls as project_urls

pytestmark = pytest.mark.django_db

NOTES = "/api/v1/notes/"


def assert_error(response, status, key="__all__"):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"][key] and all(isinstance(m, str) for m in body["errors"][key])
    return body["errors"][key]


def test_400_validation(api):
    assert_error(api.post(NOTES, {"title": ""}), 400, "title")


def test_400_malformed_json(api):
    response = api.client.post(
        NOTES, "{not json", content_type="application/json", headers=api.headers
    )
    assert "JSON parse error" in assert_error(response, 400)[0]


def test_401_anonymous_write(anon):
    assert_error(anon.post(NOTES, {"title": "x"}), 401)


def test_403_session_write_without_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(NOTES, {"title": "x"}, content_type="application/json")
    assert "CSRF" in assert_error(response, 403)[0]


@pytest.mark.parametrize(
    "url",
    [f"{NOTES}999999/", f"{NOTES}abc/", f"{NOTES}-5/", "/api/v1/nothing-here/", "/api/v1/notes"],
)
def test_404_unknown_note_or_path(anon, url):
    assert_error(anon.get(url), 404)


def test_404_outside_the_api_stays_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("DELETE", NOTES),
        ("PUT", NOTES),
        ("QUERY", NOTES),
        ("POST", f"{NOTES}1/"),
        ("POST", "/api/v1/health/"),
        ("QUERY", "/api/v1/health/"),
        ("DELETE", "/api/v1/health/live/"),
        ("QUERY", "/api/v1/health/live/"),
        ("POST", "/api/v1/schema/"),
        ("QUERY", "/api/v1/docs/"),
        ("DELETE", "/api/v1/redoc/"),
    ],
)
def test_405_json_on_every_api_path_even_for_anonymous_clients(client, method, url):
    response = client.generic(method, url)
    assert_error(response, 405)
    assert "GET" in response["Allow"]


def test_415_a_body_that_is_not_json(api):
    response = api.client.post(NOTES, {"title": "form"}, headers=api.headers)  # multipart
    assert "Unsupported media type" in assert_error(response, 415)[0]


class Boom(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        raise RuntimeError("a bug in a view")


class OncePerMinute(AnonRateThrottle):
    rate = "1/minute"


class Throttled(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = [OncePerMinute]

    def get(self, request):
        return Response({"ok": True})


# This module is also the URLconf of the tests below: the project's routes and handlers,
# plus a view with a bug and a throttled one.
urlpatterns = [
    path("api/v1/boom/", Boom.as_view()),
    path("api/v1/throttled/", Throttled.as_view()),
    *project_urls.urlpatterns,
]
handler500 = project_urls.handler500


@override_settings(ROOT_URLCONF=__name__)
def test_500_a_bug_is_json_without_details(client):
    client.raise_request_exception = False
    messages = assert_error(client.get("/api/v1/boom/"), 500)
    assert messages == ["Internal server error."]


@override_settings(ROOT_URLCONF=__name__)
def test_429_throttled_with_retry_after(client):
    assert client.get("/api/v1/throttled/").status_code == 200  # counted in the real Redis
    response = client.get("/api/v1/throttled/")
    assert "throttled" in assert_error(response, 429)[0]
    assert int(response["Retry-After"]) > 0
