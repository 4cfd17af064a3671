"""Putting a trained run to work: serve it over HTTP, export it, predict files of any size.

One module per job:

* :mod:`stream` -- ``predict`` on files of any size: chunked reading and atomic writing;
* :mod:`bank` -- keeps a long-lived run's text bank bounded;
* :mod:`serve` -- ``shopmtl serve``, a package: settings, the loaded model, request schemas,
  the bounded micro-batching queue, guards (API key, caps), the error model, the FastAPI app;
* :mod:`merged` -- the encoder with LoRA merged, as one transformers model;
* :mod:`export_hf`, :mod:`model_card` -- ``shopmtl export --format hf``;
* :mod:`export_onnx`, :mod:`onnx_engine`, :mod:`fp32` -- ``--format onnx`` and
  ``predict --engine onnxruntime``;
* :mod:`tracking` -- final metrics, baselines and config to ``training.log_with`` trackers;

The commands themselves are in :mod:`shopmtl.core.cli.deploy`. Everything reads a run
directory through :func:`shopmtl.core.engine.predict.load_run`.
"""
