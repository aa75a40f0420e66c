"""orbis tile server: a Starlette app over generator worlds (``create_app``)."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
