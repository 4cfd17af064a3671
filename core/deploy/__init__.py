"""Putting a trained run to work: serve it over HTTP, export it, predict files of any size.

One module per job: :mod:`stream` (chunked file prediction), :mod:`service`,
:mod:`schemas`, :mod:`batcher` and :mod:`serve` (the HTTP server), :mod:`export_hf`,
:mod:`model_card`, :mod:`export_onnx` and :mod:`onnx_engine` (other runtimes),
:mod:`tracking` (final metrics to accelerate's trackers), :mod:`cli_commands`
(``serve``, ``export``, ``predict``). Everything reads a run directory through
:func:`shopmtl.core.predict.load_run`.
"""
