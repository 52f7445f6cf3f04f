"""Every public coroutine of ``core.services`` takes the acting scope or says why it need not.

A service that reads or changes a workspace's objects takes an ``Actor`` and filters by its
workspace in the query; one that is not one workspace's (the webhook inbox, job entry
points by id, crons over every account, instance settings) carries
``@instance_level("why")``. This test holds every module of the package to that.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol

import pytest

import core.services
from core.domain.scope import Actor, instance_level


def _service_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{core.services.__name__}.{info.name}")
        for info in pkgutil.iter_modules(core.services.__path__)
    ]


def _public_coroutines(module: ModuleType) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The module's own public coroutine functions and its public classes' coroutine methods.

    Protocols are skipped: they describe ports a service is given, not services.
    """
    for name, found in vars(module).items():
        if name.startswith("_") or getattr(found, "__module__", None) != module.__name__:
            continue
        if inspect.iscoroutinefunction(found):
            yield f"{module.__name__}.{name}", found
        elif inspect.isclass(found) and Protocol not in found.__bases__:
            for attr, member in vars(found).items():
                function = (
                    member.__func__ if isinstance(member, staticmethod | classmethod) else member
                )
                if not attr.startswith("_") and inspect.iscoroutinefunction(function):
                    yield f"{module.__name__}.{name}.{attr}", function


def _resolves_to_actor(annotation: object, namespace: dict[str, Any]) -> bool:
    """True when ``annotation`` (a class, or its text under postponed annotations) is Actor."""
    if not isinstance(annotation, str):
        return annotation is Actor
    first, *rest = annotation.strip().split(".")
    found = namespace.get(first, getattr(builtins, first, None))
    for part in rest:
        found = getattr(found, part, None)
    return found is Actor or _carries_actor(found)


def _carries_actor(found: object) -> bool:
    """A class whose ``actor`` property gives the Actor (a chat member acting in a workspace)."""
    if not inspect.isclass(found):
        return False
    prop = inspect.getattr_static(found, "actor", None)
    if not isinstance(prop, property) or prop.fget is None:
        return False
    returns = inspect.signature(prop.fget).return_annotation
    return returns is Actor or returns == "Actor"


def takes_scope(function: Callable[..., Any]) -> bool:
    """The rule: a parameter annotated ``Actor`` (or a member carrying one), or an
    instance-level mark with a reason."""
    if str(getattr(function, "__instance_level__", "")).strip():
        return True
    plain = inspect.unwrap(function)
    namespace = getattr(plain, "__globals__", {})
    return any(
        _resolves_to_actor(parameter.annotation, namespace)
        for parameter in inspect.signature(plain).parameters.values()
    )


def offenders(modules: list[ModuleType]) -> list[str]:
    return [
        name
        for module in modules
        for name, function in _public_coroutines(module)
        if not takes_scope(function)
    ]


def test_every_service_coroutine_takes_the_scope_or_says_why_not() -> None:
    found = offenders(_service_modules())
    assert not found, (
        "These service coroutines neither take an `actor: Actor` nor are marked "
        "@instance_level('why'):\n  " + "\n  ".join(found)
    )


def test_the_walk_finds_coroutines_of_both_kinds() -> None:
    names = {name for module in _service_modules() for name, _ in _public_coroutines(module)}
    assert "core.services.lead_export.list_leads" in names
    assert "core.services.publisher.Publisher.run" in names
    assert "core.services.inbox.BulkQueue.enqueue_many" not in names  # a port, not a service


async def _reads_by_id(workspace_id: int, lead_id: int) -> None:
    """Unscoped: what the rule exists to catch."""


async def _scoped(actor: Actor, lead_id: int) -> None:
    """Takes the scope."""


@instance_level("a job entry point, by id from the queue")
async def _marked(post_id: int) -> None:
    """Says why it is not one workspace's."""


class _Sample:
    async def scoped(self, actor: Actor) -> None:
        """A scoped method."""

    async def by_id(self, event_id: int) -> None:
        """An unscoped method."""


def test_the_rule_catches_an_unscoped_coroutine() -> None:
    assert not takes_scope(_reads_by_id)
    assert not takes_scope(_Sample.by_id)
    assert takes_scope(_scoped)
    assert takes_scope(_Sample.scoped)
    assert takes_scope(_marked)
    sample = ModuleType(__name__)
    sample.reads_by_id = _reads_by_id  # type: ignore[attr-defined]
    sample.scoped = _scoped  # type: ignore[attr-defined]
    sample.Sample = _Sample  # type: ignore[attr-defined]
    assert offenders([sample]) == [f"{__name__}.reads_by_id", f"{__name__}.Sample.by_id"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_instance_level_mark_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="says why"):
        instance_level(reason)
