"""``shopmtl serve``: a real uvicorn server on a free loopback port, spoken to over HTTP.

One server (in a thread) serves the session's deploy run for every test; one test starts
the server in its own process and stops it with SIGTERM.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import fastapi  # noqa: F401 -- the [serve] extra, installed by the test command
import numpy as np
import pandas as pd
import pytest
from serving import call, free_port, serving
from shopmtl import BuildContext
from shopmtl.core.deploy.serve.app import create_app
from shopmtl.core.deploy.serve.service import ModelService
from shopmtl.core.deploy.serve.settings import ServeSettings
from shopmtl.core.engine.predict import predict_frame, predict_tasks
from toy_tasks import build

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(deploy_run):
    """The deploy run served in a thread; its base URL."""
    settings = ServeSettings(max_batch_rows=64, max_wait_ms=5, max_body_bytes=20_000)
    with serving(create_app(ModelService(deploy_run), settings)) as base:
        yield base


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Input rows of both toy tasks (no labels), some numerics missing."""
    return (
        build(BuildContext(settings=None))["test"]
        .head(20)
        .drop(columns=["value", "flag", "row_id"])
    )


def records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def test_health_and_tasks(server, deploy_run):
    assert call(server, "/health") == (
        200,
        {"status": "ok", "model": ModelService(deploy_run).model_id},
    )
    status, body = call(server, "/v1/tasks")
    assert status == 200
    assert body["model"]["run"] == "smoke" and len(body["model"]["sha256"]) == 64
    tasks = {t["name"]: t for t in body["tasks"]}
    assert tasks["toy_value"]["inputs"] == {
        "text": ["text"],
        "numeric": ["x"],
        "categorical": ["shop"],
        "derived": [],
    }
    assert tasks["toy_value"]["outputs"] == ["prediction"] and tasks["toy_flag"]["outputs"] == [
        "probability"
    ]
    assert tasks["toy_flag"]["labels"] == ["flag"]


def test_request_schemas_are_in_the_openapi_document(server):
    status, spec = call(server, "/openapi.json")
    assert status == 200
    schemas = spec["components"]["schemas"]
    row = schemas["toy_value_row"]
    # x is a numeric input: null or absent means missing, so only the text is required.
    assert set(row["properties"]) == {"row_id", "text", "x", "shop"}
    assert set(row["required"]) == {"text"}
    assert "/v1/predict/toy_value" in spec["paths"] and "/v1/predict/toy_flag" in spec["paths"]


def test_predictions_equal_shopmtl_predict(server, deploy_run, rows):
    for task in ("toy_value", "toy_flag"):
        status, body = call(server, f"/v1/predict/{task}", {"rows": records(rows)})
        assert status == 200, body
        expected = predict_frame(deploy_run, task, rows.assign(row_id=None)).iloc[
            :, len(rows.columns) + 1 :
        ]
        got = pd.DataFrame(body["predictions"])
        assert list(got.columns) == list(expected.columns)
        np.testing.assert_allclose(
            got.to_numpy(float), expected.to_numpy(float), rtol=1e-5, atol=1e-6
        )


def test_several_tasks_in_one_request(server, deploy_run, rows):
    status, body = call(
        server, "/v1/predict", {"tasks": ["toy_value", "toy_flag"], "rows": records(rows)}
    )
    assert status == 200, body
    expected = predict_tasks(deploy_run, ["toy_value", "toy_flag"], rows.assign(row_id=None)).iloc[
        :, len(rows.columns) + 1 :
    ]
    got = pd.DataFrame(body["predictions"])
    assert list(got.columns) == ["toy_value.prediction", "toy_flag.probability"]
    np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-5, atol=1e-6)


def test_concurrent_requests_are_answered_each_with_its_own_rows(server, deploy_run, rows):
    expected = predict_frame(deploy_run, "toy_value", rows.assign(row_id=None))[
        "prediction"
    ].to_numpy()

    def one(k: int):
        status, body = call(server, "/v1/predict/toy_value", {"rows": records(rows.iloc[[k]])})
        return status, body["predictions"][0]["prediction"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(len(rows))))
    assert [s for s, _ in answers] == [200] * len(rows)
    np.testing.assert_allclose([v for _, v in answers], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ({"x": 1.0, "shop": "uk"}, "rows[1].text"),  # missing field
        ({"text": "red mug", "x": "lots", "shop": "uk"}, "rows[1].x"),  # mistyped
        ({"text": ["red"], "x": 1.0}, "rows[1].text"),
    ],
)
def test_a_bad_row_is_a_422_naming_the_row_and_field(server, row, where):
    good = {"text": "blue bag", "x": 0.5, "shop": "fr"}
    status, body = call(server, "/v1/predict/toy_value", {"rows": [good, row]})
    assert status == 422 and body["error"]["code"] == "invalid_request"
    assert body["error"]["message"].startswith(where) and body["error"]["details"][0]["row"] == 1


def test_nan_and_infinity_are_refused(server):
    for value in ("NaN", "Infinity", "-Infinity"):
        raw = ('{"rows": [{"text": "red mug", "x": ' + value + ', "shop": "uk"}]}').encode()
        status, body = call(server, "/v1/predict/toy_value", raw=raw)
        message = body["error"]["message"]
        assert status == 422 and message.startswith("rows[0].x") and "finite" in message


def test_body_errors(server):
    status, body = call(server, "/v1/predict/toy_value", raw=b"{not json")
    assert status == 422 and "not valid JSON" in body["error"]["message"]
    status, body = call(server, "/v1/predict/sales", {"rows": []})
    message = body["error"]["message"]
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "no task 'sales'" in message and "toy_value" in message
    status, body = call(server, "/v1/predict", {"tasks": ["toy_value", "nope"], "rows": []})
    message = body["error"]["message"]
    assert status == 422 and message.startswith("tasks.1") and "'toy_flag'" in message
    status, body = call(
        server, "/v1/predict", {"tasks": ["toy_value", "toy_flag"], "rows": [{"text": "a", "x": 1}]}
    )
    assert status == 422 and body["error"]["message"].startswith("rows[0].other")
    big = {"rows": [{"text": "red mug " * 50, "x": 1.0, "shop": "uk"}] * 100}
    status, body = call(server, "/v1/predict/toy_value", big)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert "20,000 bytes" in body["error"]["message"]
    status, body = call(server, "/v1/predict/toy_value", {"rows": []})
    assert status == 200 and body["predictions"] == []
    # and it keeps serving
    assert (
        call(
            server,
            "/v1/predict/toy_value",
            {"rows": [{"text": "red mug", "x": None, "shop": None}]},
        )[0]
        == 200
    )


def test_an_internal_error_is_a_500_without_traceback_and_the_server_keeps_serving(
    server, deploy_run, monkeypatch
):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(deploy_run.model, "apply_head", broken)
    status, body = call(
        server, "/v1/predict/toy_flag", {"rows": [{"text": "red mug", "other": "mug"}]}
    )
    assert status == 500 and body == {
        "error": {
            "code": "internal",
            "message": "internal error (ZeroDivisionError); the server log has the details",
            "details": None,
        }
    }
    monkeypatch.undo()
    assert (
        call(server, "/v1/predict/toy_flag", {"rows": [{"text": "red mug", "other": "mug"}]})[0]
        == 200
    )


SERVE_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import toy_tasks
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.core.cli.deploy import serve_run
from shopmtl.core.deploy.serve.settings import ServeSettings
serve_run({run!r}, load_plugins([("toy", toy_tasks)], only=[]), ["toy_flag"], ServeSettings(port={port}))
"""


def test_the_server_process_binds_loopback_serves_and_stops_cleanly_on_sigterm(deploy_run_dir):
    port = free_port()
    script = SERVE_SCRIPT.format(tests=str(TESTS), run=str(deploy_run_dir), port=port)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if call(base, "/health", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the server did not come up within 60 s"
                time.sleep(0.2)
        assert (
            call(base, "/v1/predict/toy_value", {"rows": []})[0] == 404
        )  # only the task asked for
        assert (
            call(base, "/v1/predict/toy_flag", {"rows": [{"text": "red mug", "other": "mug"}]})[0]
            == 200
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
    assert "Shutting down" in output and "Traceback" not in output


def test_serve_refuses_a_run_without_weights_and_a_task_the_run_lacks(
    shopmtl, deploy_run_dir, tmp_path
):
    import shutil

    unknown = shopmtl("serve", deploy_run_dir, "--task", "sales", "--port", free_port())
    assert (
        unknown.exit_code == 1
        and "has no task 'sales'" in unknown.output
        and "Traceback" not in unknown.output
    )
    bare = tmp_path / "run"
    shutil.copytree(deploy_run_dir, bare, ignore=shutil.ignore_patterns("*.safetensors"))
    result = shopmtl("serve", bare, "--port", free_port())
    assert result.exit_code == 1 and "model/encoder.safetensors is missing" in result.output


def test_a_numeric_input_may_be_left_out_and_reads_as_missing(server, deploy_run, rows):
    """x is nullable: rows without it predict as rows whose x is null, in serve and in predict."""
    without = rows.drop(columns=["x"]).head(3)
    status, body = call(server, "/v1/predict/toy_value", {"rows": records(without)})
    assert status == 200, body
    expected = predict_frame(deploy_run, "toy_value", without.assign(x=np.nan))
    direct = predict_frame(deploy_run, "toy_value", without)
    assert list(direct.columns) == [*without.columns, "prediction"]
    np.testing.assert_allclose(direct["prediction"], expected["prediction"], rtol=1e-6)
    np.testing.assert_allclose(
        pd.DataFrame(body["predictions"])["prediction"], expected["prediction"], rtol=1e-5
    )
