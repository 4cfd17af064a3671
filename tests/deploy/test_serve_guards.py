"""The guarded server: API key, row cap, bounded queue, request timeout, exposure warning.

Each test serves the session's deploy run with the settings it checks (a live uvicorn in a
thread, a fraction of a second to start); the flood and timeout tests slow the model down
with a handler that sleeps, so the queue really fills and requests really wait.
"""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time

import fastapi  # noqa: F401 -- the [serve] extra, installed by the test command
import pytest
import uvicorn
from serving import call, exchange, serving
from shopmtl.core.deploy.serve import server as server_module
from shopmtl.core.deploy.serve.app import create_app
from shopmtl.core.deploy.serve.guards import exposure_warning
from shopmtl.core.deploy.serve.service import ModelService
from shopmtl.core.deploy.serve.settings import ServeSettings

KEY = "correct horse battery staple"
#: Every interface: what the exposure warning is about (binding it is what these tests check).
EVERYWHERE = "0.0.0.0"  # noqa: S104
ROW = {"text": "red mug", "x": 0.5, "shop": "uk"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def slowed(service: ModelService, delay: dict[str, float]) -> ModelService:
    """``service`` whose every batch first sleeps ``delay["s"]`` seconds (changeable meanwhile)."""
    fast = service.predict_batch

    def slow(jobs):
        time.sleep(delay["s"])
        return fast(jobs)

    service.predict_batch = slow  # create_app binds it, so set it before
    return service


def test_v1_needs_the_key_health_stays_open(deploy_run):
    app = create_app(ModelService(deploy_run), ServeSettings(api_key=KEY))
    with serving(app) as base:
        assert call(base, "/health")[0] == 200
        for headers in ({}, bearer("wrong"), bearer(KEY + "x"), {"Authorization": f"Basic {KEY}"}):
            status, body, response = exchange(base, "/v1/tasks", headers=headers)
            assert status == 401 and body["error"]["code"] == "unauthorized", headers
            assert response["WWW-Authenticate"] == "Bearer"
            status, body = call(base, "/v1/predict/toy_value", {"rows": [ROW]}, headers=headers)
            assert status == 401
        # an unknown task's 404 would list the tasks: without the key it is a 401 too
        assert call(base, "/v1/predict/sales", {"rows": []})[0] == 401
        assert call(base, "/v1/tasks", headers=bearer(KEY))[0] == 200
        status, body = call(base, "/v1/predict/toy_value", {"rows": [ROW]}, headers=bearer(KEY))
        assert status == 200 and len(body["predictions"]) == 1
        status, spec = call(base, "/openapi.json")
    assert status == 200 and spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = spec["paths"]["/v1/predict/toy_value"]["post"]
    assert operation["security"] == [{"bearer": []}] and "401" in operation["responses"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_more_rows_than_max_rows_is_a_413(deploy_run):
    app = create_app(ModelService(deploy_run), ServeSettings(max_rows=3))
    with serving(app) as base:
        assert call(base, "/v1/predict/toy_value", {"rows": [ROW] * 3})[0] == 200
        status, body = call(base, "/v1/predict/toy_value", {"rows": [ROW] * 4})
        assert status == 413 and body["error"]["code"] == "too_many_rows"
        assert body["error"]["details"] == {"max_rows": 3, "rows": 4}
        assert "--max-rows" in body["error"]["message"]
        status, body = call(base, "/v1/predict", {"tasks": ["toy_value"], "rows": [ROW] * 4})
        assert status == 413 and body["error"]["code"] == "too_many_rows"
        _, spec = call(base, "/openapi.json")
    rows = spec["components"]["schemas"]["ToyValueRequest"]["properties"]["rows"]
    assert rows["x-max-rows"] == 3 and "at most 3 (--max-rows)" in rows["description"]


def test_a_flood_gets_429_with_retry_after_health_stays_up_and_the_server_recovers(deploy_run):
    delay = {"s": 1.0}
    service = slowed(ModelService(deploy_run), delay)
    settings = ServeSettings(max_queue=2, max_batch_rows=1, max_wait_ms=0)
    with serving(create_app(service, settings)) as base:
        health: list[tuple[int, float]] = []

        def watch() -> None:  # /health answers at once while the model is busy
            started = time.perf_counter()
            health.append((call(base, "/health")[0], time.perf_counter() - started))

        def one(_: int):
            return exchange(base, "/v1/predict/toy_value", {"rows": [ROW]})

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            flood = [pool.submit(one, k) for k in range(12)]
            time.sleep(0.2)
            watcher = threading.Thread(target=watch)
            watcher.start()
            answers = [f.result() for f in flood]
            watcher.join()
        statuses = sorted(status for status, _, _ in answers)
        assert set(statuses) == {200, 429} and statuses.count(200) >= 2, statuses
        for status, body, headers in answers:
            if status == 429:
                assert body["error"]["code"] == "queue_full" and headers["Retry-After"] == "1"
        assert health[0][0] == 200 and health[0][1] < 1.0, health  # the model is busy >= 2 s
        delay["s"] = 0.0
        answers = [call(base, "/v1/predict/toy_value", {"rows": [ROW]}) for _ in range(3)]
        assert [status for status, _ in answers] == [200, 200, 200]


def test_a_request_over_the_timeout_is_a_503_and_the_server_keeps_serving(deploy_run):
    delay = {"s": 1.5}
    service = slowed(ModelService(deploy_run), delay)
    with serving(create_app(service, ServeSettings(request_timeout=0.3))) as base:
        started = time.perf_counter()
        status, body, headers = exchange(base, "/v1/predict/toy_value", {"rows": [ROW]})
        waited = time.perf_counter() - started
        assert status == 503 and body["error"]["code"] == "timeout" and waited < 1.2
        assert "--request-timeout" in body["error"]["message"] and headers["Retry-After"] == "1"
        time.sleep(1.5)  # the abandoned batch finishes; its result is dropped
        delay["s"] = 0.0
        assert call(base, "/v1/predict/toy_value", {"rows": [ROW]})[0] == 200


@pytest.mark.parametrize(
    ("host", "key", "warned"),
    [
        (EVERYWHERE, None, True),
        ("192.168.1.5", None, True),
        ("myhost.example", None, True),
        ("::", None, True),
        (EVERYWHERE, KEY, False),
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
    ],
)
def test_exposure_warning(host, key, warned):
    assert (exposure_warning(host, key) is not None) == warned


def test_run_server_warns_loudly_on_a_non_loopback_host_without_a_key(
    deploy_run, monkeypatch, capsys
):
    started: list[object] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own handlers
    service = ModelService(deploy_run)
    server_module.run_server(service, ServeSettings(host=EVERYWHERE))
    warned = capsys.readouterr().err
    assert "WARNING: serving on 0.0.0.0" in warned and "WITHOUT an API key" in warned
    server_module.run_server(service, ServeSettings(host=EVERYWHERE, api_key=KEY))
    server_module.run_server(service, ServeSettings(host="127.0.0.1"))
    assert "WARNING" not in capsys.readouterr().err and len(started) == 3
    assert started[0].config.limit_concurrency == ServeSettings().limit_concurrency


def test_the_cli_reads_the_key_from_the_option_or_the_environment(
    shopmtl, deploy_run_dir, monkeypatch
):
    seen: list[ServeSettings] = []
    monkeypatch.setattr(
        server_module, "run_server", lambda service, settings: seen.append(settings)
    )
    monkeypatch.setenv("SHOPMTL_API_KEY", "from-env")
    result = shopmtl("serve", deploy_run_dir, "--max-rows", 7, "--max-queue", 9)
    assert result.exit_code == 0, result.output
    result = shopmtl("serve", deploy_run_dir, "--api-key", "from-option", "--request-timeout", 2)
    assert result.exit_code == 0, result.output
    assert [(s.api_key, s.max_rows, s.max_queue) for s in seen] == [
        ("from-env", 7, 9),
        ("from-option", 1024, 256),
    ]
    assert seen[1].request_timeout == 2
    monkeypatch.setenv("SHOPMTL_API_KEY", "")  # set but empty: refused, never an open server
    result = shopmtl("serve", deploy_run_dir)
    assert result.exit_code == 1 and "the API key is empty" in result.output
    assert "Traceback" not in result.output and len(seen) == 2
