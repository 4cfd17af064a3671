"""``shopmtl serve``: a trained run behind HTTP (FastAPI on uvicorn), one module per job.

* :mod:`.settings` -- the options (``--api-key``, ``--max-rows``, ``--max-queue``, ...), read
  by the CLI without importing a web framework;
* :mod:`.service` -- the loaded model: what it serves, batches of requests, the model id;
* :mod:`.schemas` -- request and response models generated from each task's inputs;
* :mod:`.batcher` -- micro-batching through a bounded queue, with a per-request timeout;
* :mod:`.guards` -- API key, body and row caps, the warning for an exposed server;
* :mod:`.errors` -- the one error shape, declared in the OpenAPI document and sent;
* :mod:`.app` -- the FastAPI application and its routes;
* :mod:`.server` -- uvicorn, signals and the concurrency cap.

Nothing is imported here, so ``settings`` and ``service`` load without FastAPI installed.
"""
