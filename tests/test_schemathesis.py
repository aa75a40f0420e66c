"""Schemathesis against ``/openapi.json``: every operation, generated from the document itself.

Schemathesis (https://schemathesis.readthedocs.io) reads the served OpenAPI description and
sends requests built from it — valid ones and, with ``negative`` mode, ones that break the
schema — then checks each response against the document: no 5xx, documented status codes,
content types and headers. The hand-written hypothesis fuzz (``test_fuzz.py``) targets the
tile grammar; this one keeps the document honest.

Generation is kept cheap with a world whose maximum zoom is one level below its base, so any
valid tile costs at most a handful of tiny-model windows.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.testclient import TestClient

from tests.helpers import CONFIG_DIR, write_world
from tests.serving_helpers import save_tiny_model
from tileserver import Settings, create_app
from tileserver.openapi import document

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemathesis")
    model = save_tiny_model(root / "model")
    earth = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(root / "config", "small", earth.replace("max_zoom = 22", "max_zoom = 5"))
    app = create_app(Settings(config_dir=root / "config", model=str(model)))
    with TestClient(app):  # runs the lifespan: worlds loaded before the first case
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


#: operations of the document, known at collection time (the world enum is the test's world)
DOC = document({"small": 5})
LABELS = [f"GET {path}" for path in DOC["paths"]]
#: negative cases need something to break: operations that take parameters
WITH_PARAMETERS = [f"GET {p}" for p, item in DOC["paths"].items() if item["get"].get("parameters")]
#: a schema cannot say "y < 2^z", so a schema-valid tile address may still be a 400
ADDRESSED = {
    "GET /tiles/{world}/{z}/{x}/{y}",
    "GET /tiles/{world}/{tms}/{z}/{x}/{y}",
    "GET /tiles/{world}/layers/{layer}/{z}/{x}/{y}",
    "GET /tiles/{world}/layers/features/{z}/{x}/{y}",
    # nor "?encoding= is for elevation only": a valid encoding on a class layer is a 400
    "GET /tiles/{world}/layers/{layer}/tilejson.json",
}


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, GenerationMode.POSITIVE) for label in LABELS]
    + [(label, GenerationMode.NEGATIVE) for label in WITH_PARAMETERS],
    ids=str,
)
def test_operation_conforms_to_the_openapi_document(api_schema, label, mode):
    """Valid requests (positive) and schema-breaking ones (negative), checked by schemathesis.

    schemathesis's pytest plugin does not load under pytest 9 yet, so the hypothesis test is
    built here from the operation's strategy, which is what the plugin does.
    """
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} missing from /openapi.json"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        excluded = [positive_data_acceptance] if label in ADDRESSED else []
        case.call_and_validate(excluded_checks=excluded)

    check()
