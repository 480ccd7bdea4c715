"""Every model of the package builds its validator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: importing every module (the simulator too) must not change this test process.
PROGRAM = """
import importlib, pkgutil
from pydantic import BaseModel
import reconciler

def models(base):
    for sub in base.__subclasses__():
        yield sub
        yield from models(sub)

for module in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
built = 0
for model in set(models(BaseModel)):
    if model.__module__.startswith("reconciler."):
        model.model_rebuild(force=True)  # raises on an annotation or validator that cannot be built
        assert model.__pydantic_complete__, model
        built += 1
print(built)
"""


def test_every_model_builds() -> None:
    """The models' validators are built on first use (defer_build), not at import: a broken one must still
    fail the tests, not the first command that happens to need it."""
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout) > 50
