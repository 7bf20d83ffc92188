import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/health/"
LIVE = "/api/v1/health/live/"


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


class unreachable_database:
    """The default connection pointed at a closed port for the duration of the block."""

    def __enter__(self):
        from django.db import connections

        self.connection = connections["default"]
        self.original = self.connection.settings_dict.copy()
        self.connection.close()
        self.connection.settings_dict.update(PORT="1", HOST="127.0.0.1")

    def __exit__(self, *exc):
        self.connection.close()
        self.connection.settings_dict.update(self.original)


def test_health_is_503_naming_the_database_when_postgres_is_unreachable(client):
    with unreachable_database():
        response = client.get(HEALTH)
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response.json()["services"]["cache"]["status"] == "ok"


def test_liveness_is_200_whatever_the_database_and_cache_do(client):
    assert client.get(LIVE).json() == {"status": "ok"}
    with unreachable_database(), override_settings(CACHES=UNREACHABLE_REDIS):
        assert client.get(HEALTH).status_code == 503
        response = client.get(LIVE)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("url", [HEALTH, LIVE])
def test_probes_are_never_cached(client, url):
    assert client.get(url)["Cache-Control"] == "no-store"


def test_openapi_schema_describes_every_route(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    assert schema["openapi"].startswith("3.")
    assert {HEALTH, LIVE, "/api/v1/notes/", "/api/v1/notes/{id}/"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/notes/{id}/"]) >= {"get", "put", "patch", "delete"}
    title = schema["components"]["schemas"]["NoteRequest"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (1, 200)
    assert set(schema["paths"][HEALTH]["get"]["responses"]) == {"200", "503"}
    errors = schema["paths"]["/api/v1/notes/"]["post"]["responses"]["400"]
    assert errors["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Errors"


@pytest.mark.parametrize(
    ("url", "asset"),
    [("/api/v1/docs/", "swagger-ui-bundle.js"), ("/api/v1/redoc/", "redoc.standalone.js")],
)
def test_docs_pages_serve_their_assets_locally(client, url, asset):
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://" not in html and "//cdn" not in html  # no CDN: works offline
    assert "/static/drf_spectacular_sidecar/" in html and asset in html


def test_front_door_links_to_everything(client):
    links = client.get("/").json()
    for name in ("health", "liveness", "docs", "redoc", "schema", "notes", "admin"):
        assert client.get(links[name].replace("http://testserver", "")).status_code in {200, 302}
