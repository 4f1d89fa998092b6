"""Avatars through real HTTP: uploaded, decoded and re-encoded server-side (metadata gone, size bounded),
served with an ETag to anyone, replaced and removed; bad pictures and decompression bombs refused."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from urllib.parse import urlsplit

import httpx
from PIL import Image

from parlour.common.http.limits import AVATAR_MAX_BYTES
from tests.clients import assert_problem, new_account

AVATAR = "/auth/users/me/avatar"


def picture(kind: str, width: int = 40, height: int = 30, **options: object) -> bytes:
    """A small picture of `kind` (PNG, JPEG, WebP, GIF)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, format=kind, **options)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 6  # Orientation: rotated, so the served picture is upright (taller than wide)
    return picture("JPEG", 1000, 600, exif=exif.tobytes())


def png_bomb(width: int, height: int) -> bytes:
    """A PNG of `width` x `height` one-bit pixels, all zero: a few tens of KB that decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


async def put_avatar(http: httpx.AsyncClient, headers: dict[str, str], data: bytes, kind: str) -> httpx.Response:
    return await http.put(AVATAR, content=data, headers={**headers, "Content-Type": kind})


async def declared_too_big(base_url: str, headers: dict[str, str]) -> int:
    """The status of an upload that declares one byte over the limit: answered before any of it is sent."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [f"PUT {AVATAR} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: image/png"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {AVATAR_MAX_BYTES + 1}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(10):
            status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_a_picture_is_reencoded_without_its_metadata_served_to_anyone_with_an_etag_and_replaced(
    http: httpx.AsyncClient,
) -> None:
    ada, bob = await new_account(http, "ada"), await new_account(http, "bob")
    assert (await http.get("/auth/users/me", headers=ada.headers)).json()["avatar_url"] is None

    uploaded = await put_avatar(http, ada.headers, jpeg_with_exif(), "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["avatar_url"]
    assert url.startswith(f"/auth/users/{ada.user_id}/avatar?v=")
    assert (await http.get(f"/auth/users/{ada.user_id}", headers=bob.headers)).json()["avatar_url"] == url

    served = await http.get(url)  # no token: an <img> sends none
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert served.headers["cache-control"] == "public, max-age=86400"
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "WEBP"
    assert image.size == (154, 256), "upright, and at most 256 pixels a side"
    assert "exif" not in image.info
    assert b"SpyCam" not in served.content
    etag = served.headers["etag"]
    unchanged = await http.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    again = await put_avatar(http, ada.headers, jpeg_with_exif(), "image/jpeg")
    assert again.json()["avatar_url"] == url, "the same picture keeps its URL"
    other = await put_avatar(http, ada.headers, picture("PNG"), "image/png")
    assert other.json()["avatar_url"] != url
    assert (await http.get(other.json()["avatar_url"])).headers["etag"] != etag
    webp = await put_avatar(http, ada.headers, picture("WEBP"), "image/webp")
    assert webp.status_code == 200

    removed = await http.delete(AVATAR, headers=ada.headers)
    assert removed.json()["avatar_url"] is None
    assert_problem(await http.get(f"/auth/users/{ada.user_id}/avatar"), 404, "not_found")


async def test_pictures_that_are_not_images_too_big_or_bombs_are_refused_and_change_nothing(
    http: httpx.AsyncClient,
) -> None:
    ada = await new_account(http, "ada")
    assert (await put_avatar(http, ada.headers, picture("PNG"), "image/png")).status_code == 200
    kept = (await http.get("/auth/users/me", headers=ada.headers)).json()["avatar_url"]

    for data, kind in (
        (b"not a picture at all", "image/png"),
        (picture("GIF"), "image/gif"),
        (picture("PNG")[:60], "image/png"),  # cut short: the header decodes, the pixels do not
        (b"", "image/png"),
    ):
        assert_problem(await put_avatar(http, ada.headers, data, kind), 422, "avatar_invalid")
    bomb = png_bomb(20_000, 20_000)
    assert len(bomb) < 200_000
    assert_problem(await put_avatar(http, ada.headers, bomb, "image/png"), 422, "avatar_too_large")
    assert await declared_too_big(str(http.base_url), ada.headers) == 413
    assert_problem(await put_avatar(http, {}, picture("PNG"), "image/png"), 401, "invalid_token")

    assert (await http.get("/auth/users/me", headers=ada.headers)).json()["avatar_url"] == kept
    assert_problem(await http.get("/auth/users/no-such-user/avatar"), 404, "not_found")
