"""orbis generator: noise field, planner, models, samplers and worlds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["World"]

if TYPE_CHECKING:
    from .world import World


def __getattr__(name: str) -> Any:
    # Lazy so `import generator.noise` does not pull torch in.
    if name == "World":
        from .world import World

        return World
    raise AttributeError(name)
