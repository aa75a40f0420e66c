"""World configs: the shipped worlds load; every bad TOML names its file and key."""

from __future__ import annotations

import pytest

from generator.errors import UnknownWorld, WorldConfigError
from generator.world_config import load_world_config, world_names
from tests.helpers import write_world

GOOD = """
title = "Test"
seed = 1
max_zoom = 18

[base]
kind = "continents"
zoom = 3
"""


@pytest.mark.parametrize("name", ["earth", "planet"])
def test_shipped_world_loads(name):
    cfg = load_world_config(name)
    assert cfg.seed >= 0
    assert cfg.base.zoom >= 1
    assert cfg.max_zoom >= cfg.base.zoom


def test_shipped_worlds_are_listed():
    assert {"earth", "planet"} <= set(world_names())


def test_earth_uses_blue_marble_and_planet_continents():
    assert load_world_config("earth").base.kind == "bluemarble"
    assert load_world_config("planet").base.kind == "continents"


def test_minimal_world_gets_defaults(tmp_path):
    write_world(tmp_path, "mini", 'seed = 3\n[base]\nkind = "continents"\n')
    cfg = load_world_config("mini", tmp_path)
    assert (cfg.max_zoom, cfg.base.zoom, cfg.sampler.margin, cfg.model.path) == (
        22,
        4,
        32,
        "builtin",
    )


def test_config_is_frozen(tmp_path):
    write_world(tmp_path, "w", GOOD)
    cfg = load_world_config("w", tmp_path)
    with pytest.raises(ValueError):
        cfg.seed = 2


BAD = {
    # unknown keys (a typo must be an error, not ignored)
    "unknown-top-level": ('colour = "blue"\n' + GOOD, "colour"),
    "unknown-nested": (GOOD.replace("zoom = 3", "zoom = 3\nlevel = 2"), "base.level"),
    "unknown-table": (GOOD + "[render]\nfast = true\n", "render"),
    # missing required keys
    "missing-seed": (GOOD.replace("seed = 1\n", ""), "seed"),
    "missing-base": (GOOD.replace("[base]\nkind", "[basex]\nkind"), "base"),
    "missing-base-kind": (GOOD.replace('kind = "continents"\n', ""), "base.kind"),
    # wrong types
    "seed-string": (GOOD.replace("seed = 1", 'seed = "one"'), "seed"),
    "seed-float": (GOOD.replace("seed = 1", "seed = 1.5"), "seed"),
    "max-zoom-string": (GOOD.replace("max_zoom = 18", 'max_zoom = "deep"'), "max_zoom"),
    "base-not-a-table": (
        GOOD.replace('[base]\nkind = "continents"\nzoom = 3\n', "base = 3\n"),
        "base",
    ),
    # out of range
    "negative-max-zoom": (GOOD.replace("max_zoom = 18", "max_zoom = -1"), "max_zoom"),
    "huge-max-zoom": (GOOD.replace("max_zoom = 18", "max_zoom = 99"), "max_zoom"),
    "negative-seed": (GOOD.replace("seed = 1", "seed = -5"), "seed"),
    "unknown-base-kind": (GOOD.replace('"continents"', '"moon"'), "base.kind"),
    "base-zoom-zero": (GOOD.replace("zoom = 3", "zoom = 0"), "base.zoom"),
    "margin-not-multiple-of-8": (GOOD + "[sampler]\nmargin = 13\n", "sampler.margin"),
    "zero-steps": (GOOD + "[model]\nsteps = 0\n", "model.steps"),
}


@pytest.mark.parametrize(("text", "key"), list(BAD.values()), ids=list(BAD))
def test_bad_world_raises_naming_file_and_key(tmp_path, text, key):
    path = write_world(tmp_path, "bad", text)
    with pytest.raises(WorldConfigError) as info:
        load_world_config("bad", tmp_path)
    assert info.value.key == key
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    assert f": {key}: " in str(info.value)


def test_unknown_key_says_so(tmp_path):
    write_world(tmp_path, "bad", "colour = 1\n" + GOOD)
    with pytest.raises(WorldConfigError, match="unknown key"):
        load_world_config("bad", tmp_path)


def test_bad_toml_syntax_names_the_file(tmp_path):
    path = write_world(tmp_path, "broken", GOOD + "seed = = 2\n")
    with pytest.raises(WorldConfigError, match="not valid TOML") as info:
        load_world_config("broken", tmp_path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)


def test_duplicate_key_is_a_syntax_error(tmp_path):
    write_world(tmp_path, "dup", "seed = 2\n" + GOOD)
    with pytest.raises(WorldConfigError, match="not valid TOML"):
        load_world_config("dup", tmp_path)


def test_unknown_world_lists_the_known_ones(tmp_path):
    write_world(tmp_path, "alpha", GOOD)
    write_world(tmp_path, "beta", GOOD)
    with pytest.raises(UnknownWorld, match="'mars'") as info:
        load_world_config("mars", tmp_path)
    assert "alpha, beta" in str(info.value)


def test_unknown_world_in_the_shipped_config_lists_earth_and_planet():
    with pytest.raises(UnknownWorld) as info:
        load_world_config("mars")
    assert "earth" in str(info.value) and "planet" in str(info.value)


def test_unknown_world_in_an_empty_config_says_none(tmp_path):
    with pytest.raises(UnknownWorld, match="none"):
        load_world_config("mars", tmp_path)


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "x.toml", "", " earth", "earth\x00", "/etc"])
def test_invalid_world_name_raises_unknown_world(tmp_path, name):
    # a file that a traversal would reach must not be read
    write_world(tmp_path, "x", GOOD)
    (tmp_path / "x.toml").write_text(GOOD)
    with pytest.raises(UnknownWorld, match="not valid"):
        load_world_config(name, tmp_path / "sub")


def test_world_names_with_dashes_and_underscores_load(tmp_path):
    write_world(tmp_path, "my-world_2", GOOD)
    assert load_world_config("my-world_2", tmp_path).seed == 1


def test_orbis_config_environment_variable_sets_the_folder(tmp_path, monkeypatch):
    write_world(tmp_path, "envworld", GOOD)
    monkeypatch.setenv("ORBIS_CONFIG", str(tmp_path))
    assert load_world_config("envworld").title == "Test"
