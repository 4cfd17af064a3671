"""Fresh virtual environments for tests that really ``pip install`` a plugin package.

Why a bridge ``.pth`` besides ``--system-site-packages``: a venv created from inside
another venv inherits the *base* interpreter's site-packages, not the outer venv's,
where torch, pandas and the editable shopmtl live. The ``.pth`` file adds the running
interpreter's site directories (with ``site.addsitedir``, so shopmtl's editable-install
finder runs too) after the new venv's own. No network: installs use ``--no-index``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest


def run(cmd: list[str], timeout: int = 240, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        )
    return done


def clean_env() -> dict[str, str]:
    """This environment without shopmtl's switches, with quiet, non-interactive pip."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SHOPMTL_") and k != "PYTHONPATH"
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def fresh_venv(root: Path, needs: str = "setuptools, pip, shopmtl, torch") -> Path:
    """A venv under ``root`` that sees this interpreter's packages; returns its python."""
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    bridge = "".join(
        f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages() if Path(d).is_dir()
    )
    (purelib / "_shopmtl_test_bridge.pth").write_text(bridge)
    probe = subprocess.run(
        [str(python), "-c", f"import {needs}"], capture_output=True, text=True, env=clean_env()
    )
    if probe.returncode != 0:
        pytest.fail(f"the test venv cannot import {needs} from this interpreter:\n{probe.stderr}")
    return python
