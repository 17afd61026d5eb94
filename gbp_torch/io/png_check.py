"""Structural check of a PNG before it is decoded.

torchvision's PNG decoder (0.29; it decodes the 16-bit colour PNGs) crashes the whole process (segmentation
fault) on many damaged files: a wrong chunk length, a damaged IDAT stream with a valid checksum, too little image data.
:func:`check_png` walks the chunks (lengths, CRCs, a sane IHDR), inflates the image data and
checks its size (and each row's filter byte) against the header, so that a broken file becomes a
one-line ValueError instead. It costs one zlib inflation of the image data.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: colour type -> samples per pixel, and the bit depths PNG allows for it
_COLOR_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16)), 6: (4, (8, 16))}


def _rowbytes(width: int, channels: int, depth: int) -> int:
    return (width * channels * depth + 7) // 8


def _expected_size(width: int, height: int, channels: int, depth: int, interlaced: bool) -> int:
    """Bytes of the inflated image data (a filter byte per row, per Adam7 pass when interlaced)."""
    if not interlaced:
        return height * (1 + _rowbytes(width, channels, depth))
    total = 0
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            total += h * (1 + _rowbytes(w, channels, depth))
    return total


def check_png(data: bytes) -> None:
    """Raise ValueError (one line) unless ``data`` is a structurally sound PNG."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    pos, header, idat, ended = len(SIGNATURE), None, [], False
    while pos < len(data) and not ended:
        if pos + 12 > len(data):
            raise ValueError("truncated PNG chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"PNG chunk {kind!r} runs past the end of the file (truncated or damaged length)")
        body = data[pos + 8:pos + 8 + length]
        if struct.unpack(">I", data[end - 4:end])[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError(f"PNG chunk {kind!r} has a bad checksum (damaged file)")
        if header is None and kind != b"IHDR":
            raise ValueError("PNG does not start with an IHDR chunk")
        if kind == b"IHDR":
            if length != 13:
                raise ValueError("PNG IHDR chunk has the wrong length")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        ended = kind == b"IEND"
        pos = end
    if header is None or not idat or not ended:
        raise ValueError("PNG is missing its IHDR, IDAT or IEND chunk (truncated?)")
    _check_image_data(header, b"".join(idat))


def png_depth_and_colour(data: bytes) -> tuple[int, int]:
    """The bit depth and colour type of a (checked) PNG, from its IHDR chunk, which comes first."""
    return data[24], data[25]


def png_has_alpha(data: bytes) -> bool:
    """Whether a (checked) PNG stores transparency: a colour type with alpha (gray + alpha, RGBA) or a tRNS chunk
    (palette or single-colour transparency), which precedes the image data. A file too short to say: False."""
    if len(data) > 25 and png_depth_and_colour(data)[1] in (4, 6):
        return True
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind in (b"tRNS", b"IDAT"):
            return kind == b"tRNS"
        pos += 12 + length
    return False


def _check_image_data(header: tuple, stream: bytes) -> None:
    width, height, depth, color, compression, filtering, interlace = header
    if not (0 < width < 2**31 and 0 < height < 2**31) or compression or filtering or interlace > 1:
        raise ValueError(f"PNG header is invalid ({width}x{height}, compression {compression}, "
                         f"filter {filtering}, interlace {interlace})")
    if color not in _COLOR_TYPES or depth not in _COLOR_TYPES[color][1]:
        raise ValueError(f"PNG header has an invalid colour type / bit depth ({color}, {depth})")
    channels = _COLOR_TYPES[color][0]
    expected = _expected_size(width, height, channels, depth, bool(interlace))
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, expected + 1)
    except zlib.error as e:
        raise ValueError(f"PNG image data is damaged ({e})") from None
    if len(raw) != expected or not inflater.eof:
        raise ValueError(f"PNG image data has the wrong size ({len(raw)} bytes inflated, {expected} expected)")
    if not interlace:
        row = 1 + _rowbytes(width, channels, depth)
        if max(raw[::row]) > 4:
            raise ValueError("PNG image data has an invalid row filter (damaged file)")
