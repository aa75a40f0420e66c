"""A bare Starlette app that returns tile bytes from a folder: the speed reference of load.py.

python bench/bare_server.py DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(sys.argv[1])
BODIES = {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in ROOT.rglob("*.png")}


async def tile(request):
    p = request.path_params
    body = BODIES.get(f"{p['world']}/{p['z']}/{p['x']}/{p['y']}")
    if body is None:
        return Response(status_code=404)
    return Response(body, media_type="image/png")


app = Starlette(routes=[Route("/tiles/{world}/{z}/{x}/{y}", tile)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
