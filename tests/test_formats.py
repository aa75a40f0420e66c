"""Output formats: suffix, media type and encoder (``tileserver.formats``)."""

from __future__ import annotations

import numpy as np
import pytest

from generator.errors import InvalidTile
from tests.serving_helpers import decode
from tileserver.formats import ImageFormat

PIL_FORMAT = {ImageFormat.png: "PNG", ImageFormat.jpg: "JPEG", ImageFormat.webp: "WEBP"}
#: explicit ids: pytest would call ``str.encode`` on a str enum, which ImageFormat overrides
IDS = [f.value for f in ImageFormat]
MEDIA = {
    ImageFormat.png: "image/png",
    ImageFormat.jpg: "image/jpeg",
    ImageFormat.webp: "image/webp",
}


def _image(h: int = 256, w: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], axis=-1)
    return np.clip(smooth + rng.integers(-8, 9, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", list(ImageFormat), ids=IDS)
@pytest.mark.parametrize("size", [(256, 256), (512, 512), (64, 96)])
def test_encode_decodes_to_the_same_size(fmt, size):
    arr = _image(*size)
    im = decode(fmt.encode_image(arr))
    assert im.format == PIL_FORMAT[fmt]
    assert im.mode == "RGB"
    assert im.size == (size[1], size[0])
    got = np.asarray(im).astype(int)
    if fmt is ImageFormat.png:
        np.testing.assert_array_equal(got, arr)
    else:  # lossy, but close at quality 90
        assert np.abs(got - arr).mean() < 8


@pytest.mark.parametrize("fmt", list(ImageFormat), ids=IDS)
def test_media_type(fmt):
    assert fmt.media_type == MEDIA[fmt]


@pytest.mark.parametrize("fmt", list(ImageFormat), ids=IDS)
def test_encode_is_deterministic(fmt):
    arr = _image()
    assert fmt.encode_image(arr) == fmt.encode_image(arr.copy())


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        ("png", ImageFormat.png),
        ("PNG", ImageFormat.png),
        ("jpg", ImageFormat.jpg),
        ("jpeg", ImageFormat.jpg),
        ("JPEG", ImageFormat.jpg),
        ("webp", ImageFormat.webp),
    ],
    ids=lambda v: v.value if isinstance(v, ImageFormat) else None,
)
def test_parse(suffix, fmt):
    assert ImageFormat.parse(suffix) is fmt


@pytest.mark.parametrize("suffix", ["gif", "tif", "", "pn", "png ", "svg"])
def test_parse_unknown_raises_and_lists_known(suffix):
    with pytest.raises(InvalidTile) as info:
        ImageFormat.parse(suffix)
    message = str(info.value)
    assert repr(suffix) in message
    for known in ("png", "jpg", "webp"):
        assert known in message
