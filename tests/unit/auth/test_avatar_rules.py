"""The avatar rules, and the web client's copy of the upload limit."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from parlour.auth.domain.errors import AvatarTooLarge, InvalidAvatar
from parlour.auth.infrastructure.images import reencode
from parlour.common.http.limits import AVATAR_MAX_BYTES, AVATAR_UPLOAD_PATH, BodyLimits
from parlour.common.settings import Settings

PROFILE = Path(__file__).resolve().parents[3] / "parlour" / "web" / "static" / "js" / "views" / "profile.js"


def test_the_web_client_refuses_what_the_server_would_before_uploading_it() -> None:
    declared = re.search(r"^const PICTURE_MAX_BYTES = (\d+) \* (\d+) \* (\d+);", PROFILE.read_text(), re.MULTILINE)
    assert declared is not None, "profile.js declares PICTURE_MAX_BYTES as a product on one line"
    a, b, c = (int(group) for group in declared.groups())
    assert a * b * c == AVATAR_MAX_BYTES
    assert BodyLimits.of(Settings()).for_path(AVATAR_UPLOAD_PATH) == AVATAR_MAX_BYTES


@pytest.mark.parametrize(("mode", "size"), [("RGBA", (600, 300)), ("RGB", (100, 80)), ("L", (300, 900))])
def test_a_picture_becomes_a_webp_of_at_most_256_a_side_keeping_its_shape(mode: str, size: tuple[int, int]) -> None:
    source = io.BytesIO()
    Image.new(mode, size).save(source, format="PNG")
    out = Image.open(io.BytesIO(reencode(source.getvalue())))
    assert out.format == "WEBP"
    assert max(out.size) == min(256, max(size))
    assert abs(out.size[0] / out.size[1] - size[0] / size[1]) < 0.02


def test_the_pixel_count_is_checked_from_the_header_before_anything_is_decoded() -> None:
    source = io.BytesIO()
    Image.new("1", (5001, 5000)).save(source, format="PNG")  # one pixel over 25 megapixels, 1 bit each
    with pytest.raises(AvatarTooLarge):
        reencode(source.getvalue())
    with pytest.raises(InvalidAvatar):
        reencode(b"GIF89a not really")
