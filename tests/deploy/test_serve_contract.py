"""The server keeps its own OpenAPI contract: schemathesis, every check, zero failures.

schemathesis reads ``/openapi.json`` of a live server (the deploy run, an API key set) and
sends generated requests to every operation, valid and invalid ones, with and without the
key. Each response must have a declared status, declared headers, the declared content
type and body schema; schema-valid requests must be accepted and invalid ones refused with
a 4xx; the key must be enforced. Its own CLI is run, as a user would run it, with a fixed
seed so a CI run is repeatable.
"""

from __future__ import annotations

import subprocess
import sys
import time

import fastapi  # noqa: F401 -- the [serve] extra, installed by the test command
from serving import serving
from shopmtl.core.deploy.serve.app import create_app
from shopmtl.core.deploy.serve.service import ModelService
from shopmtl.core.deploy.serve.settings import ServeSettings

KEY = "contract-test-key"


def test_schemathesis_finds_no_failure_with_every_check(deploy_run, tmp_path):
    settings = ServeSettings(api_key=KEY, max_rows=64, max_body_bytes=200_000)
    with serving(create_app(ModelService(deploy_run), settings)) as base:
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "20",
                "--seed",
                "0",
                "--header",
                f"Authorization: Bearer {KEY}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # its example database stays out of the repo
            timeout=120,
        )
        took = time.perf_counter() - started
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    # the toy run: /health, /v1/tasks, two task routes and /v1/predict, each one tested
    assert "No issues found" in report and "Tested: 5" in report, report[-2000:]
    assert took < 60, f"schemathesis took {took:.0f} s (keep it under 60 s)"
