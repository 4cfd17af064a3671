"""The worked example of a plugin that ships its own Parquet splits (examples/shopmtl-parquet-plugin),
end to end as its author would run it: pip-installed into a fresh environment, checked, trained
jointly with two built-in tasks (tiny random encoder, a few steps), used to predict a file that
leaves out its nullable numeric input, and served.

Integration: a real ``pip install`` and three ``shopmtl`` processes (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import textwrap

import pandas as pd
import pytest
from conftest import REPO, SMOKE_CONFIG
from venvs import clean_env, fresh_venv, run

EXAMPLE = REPO / "examples" / "shopmtl-parquet-plugin"

SERVE = textwrap.dedent(
    """\
    import io, json, logging, sys, threading, time, urllib.request
    import uvicorn
    from shopmtl.core.deploy.serve.app import create_app
    from shopmtl.core.deploy.serve.service import ModelService
    from shopmtl.core.deploy.serve.settings import ServeSettings
    from shopmtl.core.engine.predict import load_run
    from shopmtl.registry.manager import load_plugins
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS

    log = io.StringIO()
    logging.basicConfig(stream=log, level=logging.WARNING)
    plugins = load_plugins(BUILTIN_PLUGINS)
    service = ModelService(load_run(sys.argv[1], plugins.tasks))
    settings = ServeSettings(port=int(sys.argv[2]))
    server = uvicorn.Server(uvicorn.Config(create_app(service, settings), port=settings.port))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{settings.port}"
    tasks = json.loads(urllib.request.urlopen(base + "/v1/tasks").read())
    rows = [{"review": "lovely sturdy mug", "category": "gifts"}]  # no price: it is nullable
    request = urllib.request.Request(
        base + "/v1/predict/review_rating", data=json.dumps({"rows": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    predicted = json.loads(urllib.request.urlopen(request).read())
    server.should_exit = True
    print(json.dumps({"tasks": tasks, "predicted": predicted, "log": log.getvalue()}))
    """
)


@pytest.mark.integration
def test_the_parquet_example_installs_checks_trains_predicts_and_serves(tmp_path):
    env = clean_env()
    python = fresh_venv(tmp_path)
    source = shutil.copytree(
        EXAMPLE, tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "tests")
    )
    pip = ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation"]
    run([str(python), *pip, str(source)], env=env, cwd=tmp_path)
    shopmtl = [str(python), "-I", "-m", "shopmtl.core.cli"]

    checked = run([*shopmtl, "plugins", "check", "reviews"], env=env, cwd=tmp_path)
    assert "task review_rating: ok" in checked.stdout, checked.stdout

    tasks = (
        "tasks={review_rating: {}, sales: {max_train_examples: 256, max_eval_examples: 128},"
        " price_bin: {max_train_examples: 256, max_eval_examples: 128}}"
    )
    steps = ("training.max_steps=4", "training.eval_every=2")
    trained = run(
        [*shopmtl, "train", str(SMOKE_CONFIG), tasks, *steps, "--output-dir", "run"],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"review_rating", "sales", "price_bin"}, trained.stdout

    rows = pd.DataFrame({"review": ["flimsy faded bag", "lovely great candle"]})
    rows.assign(category=["decor", "gifts"]).to_csv(tmp_path / "in.csv", index=False)
    predict = ["predict", "run", "--task", "review_rating", "--input", "in.csv"]
    run([*shopmtl, *predict, "--output", "out.csv"], env=env, cwd=tmp_path)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["review", "category", "stars", "stars_rounded"]
    assert out["stars"].notna().all() and out["stars_rounded"].between(1, 5).all()

    (tmp_path / "serve.py").write_text(SERVE)
    served = run([str(python), "-I", "serve.py", "run", "8731"], env=env, cwd=tmp_path)
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    listed = {t["name"]: t for t in answer["tasks"]["tasks"]}
    assert listed["review_rating"]["outputs"] == ["stars", "stars_rounded"]
    assert list(answer["predicted"]["predictions"][0]) == ["stars", "stars_rounded"]
    assert "Traceback" not in answer["log"], answer["log"]
