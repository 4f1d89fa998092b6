"""Avatars decoded and re-encoded with Pillow, in a worker thread (decoding is CPU work)."""

from __future__ import annotations

import asyncio
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from parlour.auth.application.ports import AvatarEncoder
from parlour.auth.domain.errors import AvatarTooLarge, InvalidAvatar
from parlour.auth.domain.model import AVATAR_FORMATS, AVATAR_MAX_PIXELS, AVATAR_SIDE

_WEBP_QUALITY = 85


class PillowAvatarEncoder(AvatarEncoder):
    """Only the pixels survive: EXIF, ICC profiles, comments and any trailing bytes stay behind."""

    async def encode(self, data: bytes) -> bytes:
        return await asyncio.to_thread(reencode, data)


def reencode(data: bytes) -> bytes:
    """`data` as a WebP of at most `AVATAR_SIDE` a side, upright; raises `InvalidAvatar` or `AvatarTooLarge`.

    The format and the size come from the header (`Image.open` is lazy), so a decompression bomb is refused
    before a pixel of it is decoded; Pillow's own bomb guard (its warning made an error here) agrees."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in AVATAR_FORMATS:
                    raise InvalidAvatar()
                width, height = image.size
                if width * height > AVATAR_MAX_PIXELS:
                    raise AvatarTooLarge()
                image.load()
                return _small_webp(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise AvatarTooLarge() from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise InvalidAvatar() from error


def _small_webp(image: Image.Image) -> bytes:
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
    pixels = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
    out = io.BytesIO()
    pixels.save(out, format="WEBP", quality=_WEBP_QUALITY)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info)
