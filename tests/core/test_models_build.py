"""Every model of the package: its pydantic validator (the desired-state schema) or its decoder (the frozen
value objects of reconciler.model.base) builds."""

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
from reconciler.model import base

def subclasses(root):
    for sub in root.__subclasses__():
        yield sub
        yield from subclasses(sub)

for module in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
schemas = decoders = 0
for model in set(subclasses(BaseModel)):
    if model.__module__.startswith("reconciler."):
        model.model_rebuild(force=True)  # raises on an annotation or validator that cannot be built
        assert model.__pydantic_complete__, model
        schemas += 1
for model in set(subclasses(base.Frozen)):
    assert model._fields, model  # annotations read from the class: a model without any is a mistake
    base._class_decoder(model)  # raises on an annotation it has no decoder for
    decoders += 1
print(schemas, decoders)
"""


def test_every_model_builds() -> None:
    """Validators and decoders are built on first use, not at import: a broken one must still fail the tests,
    not the first command that happens to need it."""
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    schemas, decoders = map(int, proc.stdout.split())
    assert schemas > 10
    assert decoders > 50
