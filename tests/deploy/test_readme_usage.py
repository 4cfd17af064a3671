"""README's "Using a trained model" cannot rot: its `test: shell` blocks run in order, in a
temporary folder, with the tiny smoke model, and what they write is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
_BLOCK = re.compile(
    r"<!--\s*test:\s*shell\s*-->\s*\n```bash\n(?P<body>.*?)^```", re.DOTALL | re.MULTILINE
)


def usage_blocks() -> list[str]:
    """The marked shell blocks of the README's "Using a trained model" section, in order."""
    start = README.index("## Using a trained model")
    end = README.index("\n## ", start + 1)
    return [m.group("body") for m in _BLOCK.finditer(README[start:end])]


def test_every_part_of_the_section_has_a_block():
    joined = "\n".join(usage_blocks())
    for command in (
        "shopmtl train",
        "log_with",
        "shopmtl predict",
        "shopmtl serve",
        "/v1/predict/",
        "--format hf",
        "--format onnx",
        "--engine onnxruntime",
    ):
        assert command in joined, f"no executed README block uses {command!r}"


@pytest.mark.integration
def test_the_usage_blocks_run(tmp_path):
    import fastapi  # noqa: F401 -- the [serve] and [onnx] extras, installed by the test command
    import onnxruntime  # noqa: F401

    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SHOPMTL_PLUGINS": "",
    }
    env.pop("SHOPMTL_DEBUG", None)
    outputs = []
    for block in usage_blocks():
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )
        assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert list(
        (tmp_path / "runs" / "smoke" / "smoke").glob("events.out.tfevents.*")
    )  # the tracker wrote
    scored, onnx_scored = (
        pd.read_csv(tmp_path / "scored.csv"),
        pd.read_csv(tmp_path / "scored_onnx.csv"),
    )
    assert list(scored.columns) == [
        "stock_code",
        "description",
        "label",
        "prediction",
        "confidence",
    ]
    assert list(onnx_scored.columns) == list(scored.columns) and len(onnx_scored) == len(scored)
    # the run trains in bf16, which the PyTorch path predicts in; the graphs are float32
    np.testing.assert_allclose(onnx_scored["confidence"], scored["confidence"], atol=2e-2)
    served = outputs[2]
    assert '"status":"ok"' in served and served.count('"prediction":') == 2
    assert (tmp_path / "exported" / "hf" / "README.md").is_file() and outputs[3].splitlines()[
        1
    ].strip() == "32"
