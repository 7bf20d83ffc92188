"""Tests run inside the app container (`nox -s tests`) against the stack's real PostgreSQL
and Redis: pytest-django's test database on the db service, Redis database 15 for the cache."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(client):
    """The Django test client, speaking JSON."""

    class JsonClient:
        def get(self, url, **params):
            return client.get(url, params)

        def post(self, url, data):
            return client.post(url, data, content_type="application/json")

        def put(self, url, data):
            return client.put(url, data, content_type="application/json")

        def patch(self, url, data):
            return client.patch(url, data, content_type="application/json")

        def delete(self, url):
            return client.delete(url)

    return JsonClient()
