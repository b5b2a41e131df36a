"""Every third-party package synthmed imports is declared in pyproject.toml.

A fresh install (``.ci/run``) gets only the declared packages, so an import of something that
happens to be installed here (click came with typer until typer vendored it) works in this
environment and crashes for users. The check reads the source with ``ast``: every ``import``
and ``from ... import`` anywhere in a module, lazy ones inside functions included.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "synthmed"

IMPORT_TO_DISTRIBUTION = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "faiss": "faiss-cpu",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
}
"""Import names that differ from the name the package is installed under."""

FALLBACKS = {
    "click": "typer",  # cli.py: only when typer has no vendored typer._click (old typer needs click)
}
"""Imports allowed only inside an ``except ImportError:`` handler, as the fallback of the
declared package they belong to."""

SUBPACKAGE_EXTRAS = {"serve": "serve"}
"""Subpackages that need an extra as a whole (``synthmed.serve``: the server): their modules
may import the extra's packages unguarded, as long as nothing else imports them at module
level (``test_import_synthmed_needs_no_extra``)."""

CORE_ONLY_MODULES = ("serve/client.py", "serve/bundle.py", "serve/rules.py", "serve/gate.py")
"""The client side of ``synthmed.serve`` (``synthmed publish``, ``models install``): core only."""


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-``, ``_`` and ``.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """``{"": core dependencies, extra: its dependencies}`` as normalised names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project.get("optional-dependencies", {})}
    return {
        group: {normalise(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]) for req in reqs}
        for group, reqs in groups.items()
    }


def _in_import_error_handler(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.ExceptHandler) and _catches_import_error(node):
            return True
    return False


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names
    )


def try_guarded_lines(path: Path) -> set[int]:
    """Lines of imports inside a ``try:`` body that catches ImportError (an optional extra,
    imported where it may fail with a clear message)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for stmt in node.body:
                lines |= {
                    n.lineno for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))
                }
    return lines


def third_party_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level name, line, inside an ImportError handler) of every absolute import that is
    neither the standard library nor synthmed."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "synthmed":
                found.append((top, node.lineno, _in_import_error_handler(node, parents)))
    return found


def test_the_scan_sees_imports_of_every_kind():
    source = (PACKAGE / "cli.py").read_text()
    assert "import typer" in source
    names = {name for name, _, _ in third_party_imports(PACKAGE / "data" / "readers.py")}
    assert {"numpy", "PIL", "tifffile", "nibabel", "pydicom"} <= names  # lazy ones included
    assert ("click", True) in {(n, g) for n, _, g in third_party_imports(PACKAGE / "cli.py")}
    privacy = PACKAGE / "training" / "privacy.py"
    opacus = {line for n, line, _ in third_party_imports(privacy) if n == "opacus"}
    assert opacus and opacus <= try_guarded_lines(privacy)  # the optional extra, in a try


def test_every_imported_package_is_declared():
    groups = declared()
    core = groups[""]
    anywhere = set().union(*groups.values())
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(ROOT)
        extra = SUBPACKAGE_EXTRAS.get(path.relative_to(PACKAGE).parts[0])
        tried = try_guarded_lines(path)
        for name, line, guarded in third_party_imports(path):
            if name in FALLBACKS:
                if not guarded or normalise(FALLBACKS[name]) not in core:
                    problems.append(f"{where}:{line}: {name} only as a guarded fallback")
                continue
            dist = normalise(IMPORT_TO_DISTRIBUTION.get(name, name))
            if dist in core or (extra and dist in groups[extra]):
                continue
            if dist in anywhere and (guarded or line in tried):  # an optional extra, imported
                # where it may fail
                continue
            problems.append(f"{where}:{line}: imports {name} ({dist}), not a declared dependency")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("requirement", "name"),
    [("torch>=2.2,<2.15", "torch"), ("PyYAML >= 6", "pyyaml"), ("faiss_cpu[x]", "faiss-cpu")],
)
def test_requirement_names_are_normalised(requirement, name):
    assert normalise(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]) == name


def test_client_modules_need_only_core_packages():
    core = declared()[""]
    problems = [
        f"{module}:{line}: imports {name}"
        for module in CORE_ONLY_MODULES
        for name, line, _ in third_party_imports(PACKAGE / module)
        if normalise(IMPORT_TO_DISTRIBUTION.get(name, name)) not in core
    ]
    assert not problems, "\n".join(problems)


def test_import_synthmed_needs_no_extra():
    """``import synthmed`` and the CLI load no server package (they are an extra)."""
    import subprocess

    extra = sorted(declared()["serve"] - {"psycopg"})
    code = (
        "import sys, synthmed, synthmed.cli, synthmed.serve.client; "
        f"print([m for m in {[m.replace('-', '_') for m in extra]!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
