"""The dependency rule of ARCHITECTURE.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FRAMEWORKS = {"aiogram", "discord", "quart", "quart_auth", "quart_schema", "arq", "uvicorn"}
OUTER = {"bot", "panel", "jobs", "reelay"}
# The sandbox stands in for Meta, so like Meta it shares only the wire format with Reelay.
SANDBOX = "sandbox"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_framework_and_no_outer_package(path: Path) -> None:
    bad = _imports(path) & (FRAMEWORKS | OUTER | {SANDBOX})
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _sources("core/domain"), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_logic_does_no_io(path: Path) -> None:
    bad = _imports(path) & {"aiohttp", "tortoise", "redis", "openai", "asyncpg", "core"} - {"core"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    core_imports = {
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core.")
    }
    assert all(m.startswith(("core.domain", "core.errors")) for m in core_imports), core_imports


@pytest.mark.parametrize("path", _sources(SANDBOX), ids=lambda p: str(p.relative_to(ROOT)))
def test_sandbox_imports_nothing_from_reelay(path: Path) -> None:
    bad = _imports(path) & (FRAMEWORKS | OUTER | {"core"})
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _sources("core/services"), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_import_no_adapter(path: Path) -> None:
    """Services reach the outside through ports; core.wiring gives them the adapters."""
    bad = {m for m in _modules(path) if m == "core.adapters" or m.startswith("core.adapters.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", ["bot", "panel", "jobs"])
def test_outer_packages_do_not_import_each_other_nor_the_entry_point(package: str) -> None:
    """They receive their services; only ``reelay`` (the entry point) chooses the adapters and
    runs the sandbox."""
    others = ({"bot", "panel", "jobs", "reelay"} - {package}) | {SANDBOX}
    for path in _sources(package):
        bad = _imports(path) & others
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_rule_would_catch_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from quart import Quart\nimport arq.worker\n")
    assert _imports(sample) & FRAMEWORKS == {"quart", "arq"}
    sample.write_text("from core.adapters.graph import GraphClient\n")
    assert _modules(sample) == {"core.adapters.graph"}


MAX_LINES = 700  # ARCHITECTURE.md: a module that grows past this has two reasons to change


def test_no_module_outside_migrations_is_over_700_lines() -> None:
    packages = ("core", "panel", "bot", "jobs", "reelay", "sandbox", "bench", "tests")
    long = {
        str(path.relative_to(ROOT)): lines
        for package in packages
        for path in _sources(package)
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these by reason to change: {long}"
