"""Request parsing of tile paths (``tileserver.params.parse_tile``)."""

from __future__ import annotations

import pytest

from generator.errors import InvalidTile
from tileserver.formats import ImageFormat
from tileserver.params import TileAddress, parse_tile


@pytest.mark.parametrize(
    ("z", "x", "y", "expected"),
    [
        ("3", "4", "2.png", TileAddress("earth", 3, 4, 2, 1, ImageFormat.png)),
        ("0", "0", "0.jpg", TileAddress("earth", 0, 0, 0, 1, ImageFormat.jpg)),
        ("5", "31", "7@2x.webp", TileAddress("earth", 5, 31, 7, 2, ImageFormat.webp)),
        ("5", "31", "7@1x.png", TileAddress("earth", 5, 31, 7, 1, ImageFormat.png)),
        ("4", "8", "5.jpeg", TileAddress("earth", 4, 8, 5, 1, ImageFormat.jpg)),
        ("4", "8", "5.PNG", TileAddress("earth", 4, 8, 5, 1, ImageFormat.png)),
        # x is not wrapped and zoom/y not range-checked here: the world does that
        ("3", "-1", "2.png", TileAddress("earth", 3, -1, 2, 1, ImageFormat.png)),
        ("-1", "0", "0.png", TileAddress("earth", -1, 0, 0, 1, ImageFormat.png)),
        (
            "22",
            "9999999999",
            "-3.png",
            TileAddress("earth", 22, 9999999999, -3, 1, ImageFormat.png),
        ),
    ],
)
def test_parse_good(z, x, y, expected):
    assert parse_tile("earth", z, x, y) == expected


def test_parse_keeps_world_name_verbatim():
    assert parse_tile("no such world", "1", "0", "0.png").world == "no such world"


@pytest.mark.parametrize(
    ("z", "x", "y", "fragments"),
    [
        ("a", "0", "0.png", ["zoom", "'a'"]),
        ("1.5", "0", "0.png", ["zoom", "'1.5'"]),
        ("", "0", "0.png", ["zoom", "''"]),
        ("3", "x4", "2.png", ["x must be an integer", "'x4'"]),
        ("3", "4 ", "2.png", ["x must be an integer", "'4 '"]),
        ("3", "0x10", "2.png", ["x", "'0x10'"]),
        ("3", "4", "two.png", ["Y.FORMAT", "'two.png'"]),
        ("3", "4", "2", ["Y.FORMAT", "'2'"]),  # missing suffix
        ("3", "4", "2.", ["Y.FORMAT", "'2.'"]),
        ("3", "4", "2.png.png", ["Y.FORMAT", "'2.png.png'"]),
        ("3", "4", "2.gif", ["unknown tile format", "'gif'", "png", "jpg", "webp"]),
        ("3", "4", "2.tiff", ["unknown tile format", "'tiff'"]),
        ("3", "4", "2@3x.png", ["scale", "'@3x'"]),
        ("3", "4", "2@0x.png", ["scale", "'@0x'"]),
        ("3", "4", "2@2X.png", ["Y.FORMAT", "'2@2X.png'"]),
        ("3", "4", "2@x.png", ["Y.FORMAT"]),
        ("12345678901", "0", "0.png", ["zoom", "'12345678901'"]),
        ("٣", "0", "0.png", ["zoom"]),  # a non-ASCII digit is not a zoom
    ],
)
def test_parse_bad(z, x, y, fragments):
    with pytest.raises(InvalidTile) as info:
        parse_tile("earth", z, x, y)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_long_values_are_truncated_in_messages():
    long = "9" * 5000 + "a"
    for args in ((long, "0", "0.png"), ("1", long, "0.png"), ("1", "0", long + ".png")):
        with pytest.raises(InvalidTile) as info:
            parse_tile("earth", *args)
        assert len(str(info.value)) < 200
