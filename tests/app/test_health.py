import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/health/"


def test_health_is_200_when_postgres_and_redis_answer(client):
    response = client.get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"]["database"]["status"] == "ok"
    assert body["services"]["cache"]["status"] == "ok"


def test_the_database_really_is_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    assert int(version.split(".")[0]) >= 16


def test_the_cache_really_is_redis():
    client = cache.client.get_client()
    assert client.ping() is True
    assert client.info("server")["redis_version"]


UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


def test_health_is_503_naming_the_cache_when_redis_is_unreachable(client):
    with override_settings(CACHES=UNREACHABLE_REDIS):  # Django rebuilds the cache handlers
        response = client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["cache"]
    assert body["services"]["database"]["status"] == "ok"
    assert "error" in body["services"]["cache"]


def test_health_is_503_naming_the_database_when_postgres_is_unreachable(client):
    from django.db import connections

    original = connections["default"].settings_dict.copy()
    connections["default"].close()
    connections["default"].settings_dict.update(PORT="1", HOST="127.0.0.1")
    try:
        response = client.get(HEALTH)
    finally:
        connections["default"].close()
        connections["default"].settings_dict.update(original)
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


def test_openapi_schema_describes_every_route(client):
    schema = client.get("/api/v1/schema/").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/health/", "/api/v1/notes/", "/api/v1/notes/{note_id}/"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/notes/{note_id}/"]) >= {"get", "put", "patch", "delete"}


def test_docs_page_serves_its_assets_locally(client):
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://" not in html and "http://" not in html  # no CDN: works offline
    assert "swagger-ui-bundle.js" in html


def test_front_door_links_to_everything(client):
    links = client.get("/").json()
    for name in ("health", "docs", "schema", "notes", "admin"):
        assert client.get(links[name].replace("http://testserver", "")).status_code in {200, 302}
