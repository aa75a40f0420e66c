"""orbis tile server: a Starlette app over generator worlds (``create_app``).

The app is imported lazily, so light modules of this package (``tileserver.client``,
``tileserver.formats``) can be used by a simulation tool without Starlette, torch or the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Settings", "create_app"]

if TYPE_CHECKING:
    from .app import create_app
    from .settings import Settings


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(name)
