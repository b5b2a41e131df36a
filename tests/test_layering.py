"""Later stages do not depend on training: what they share lives outside ``synthmed.training``
(checkpoint I/O in ``synthmed.checkpoints``, devices in ``synthmed.devices``, model building in
``synthmed.models.build``, the in-memory training arrays in ``synthmed.data.arrays``)."""

from __future__ import annotations

import ast
from pathlib import Path

import synthmed

PACKAGE = Path(synthmed.__file__).parent
LATER_STAGES = ("sampling", "evaluation", "packaging", "reproduce", "export", "report", "serve")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_later_stages_never_import_training() -> None:
    offenders = []
    for stage in LATER_STAGES:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            bad = [m for m in _imports(path) if m.startswith("synthmed.training")]
            offenders += [f"{path.relative_to(PACKAGE)}: {m}" for m in bad]
    assert not offenders, "\n".join(offenders)
    assert _imports(PACKAGE / "sampling" / "export.py"), "the scan must see imports"
