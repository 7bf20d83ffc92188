"""Tests run inside the app container (`nox -s tests`) against the stack's real PostgreSQL
and Redis: pytest-django's test database on the db service, Redis database 15 for the cache.

The test settings keep the API's base policy (the one production uses): reads open, writes
need a user. `api` writes as a user with a token, `anon` as nobody."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


class JsonClient:
    """The Django test client, speaking JSON, with optional request headers."""

    def __init__(self, client, headers=None):
        self.client, self.headers = client, headers or {}

    def get(self, url, **params):
        return self.client.get(url, params, headers=self.headers)

    def post(self, url, data):
        return self.client.post(url, data, content_type="application/json", headers=self.headers)

    def put(self, url, data):
        return self.client.put(url, data, content_type="application/json", headers=self.headers)

    def patch(self, url, data):
        return self.client.patch(url, data, content_type="application/json", headers=self.headers)

    def delete(self, url):
        return self.client.delete(url, headers=self.headers)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("writer", password="a-test-password-1")


@pytest.fixture
def api(client, user):
    """A client authenticated with the user's API token, as scripts and services call it."""
    token = Token.objects.create(user=user)
    return JsonClient(client, {"Authorization": f"Token {token.key}"})


@pytest.fixture
def anon(client):
    return JsonClient(client)
