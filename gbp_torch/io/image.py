"""Image reading and writing (Pillow, torchvision for 16-bit colour PNGs; a small PNG encoder of our own for 16-bit
and alpha).

Pillow (installed with torchvision) decodes PNG, JPEG, GIF, WEBP, BMP, TIFF and PNM (PGM / PPM) and writes 8-bit
PNGs: importing torchvision takes about 2 s (it imports ``torch._dynamo``), a third of a CLI run on a
584 x 388 pair, so the readers and writers import it only for the 16-bit colour PNGs that Pillow cuts to 8 bits,
and :func:`read_png_raw`. Readers return float32 in [0, 1] scaled by the range
of the file's sample type: 8-bit files by 255, 16-bit PNGs, TIFFs and PGMs by 65535.
``return_bits=True`` also gives the bit depth (8 or 16) so that a writer can keep it
(``write_image(..., bits=16)``). The readers drop alpha; :func:`read_alpha` reads it and
``write_image(..., alpha=...)`` stores it again.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import torch
from torch import Tensor

from .png_check import SIGNATURE, check_png, png_depth_and_colour, png_has_alpha


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes; a clear error if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"image file is empty: {path}")
    return data


FORMATS = "PNG, JPEG, GIF, WEBP, BMP, TIFF, PGM/PPM"


def _is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURE) or data[1:4] == b"PNG"


def _is_colour_png16(data: bytes) -> bool:
    """A (checked) 16-bit PNG with colour or alpha (colour type 2, 4 or 6): Pillow would cut it to 8 bits."""
    depth, colour = png_depth_and_colour(data)
    return depth == 16 and colour in (2, 4, 6)


def _decode(path: str | os.PathLike, mode_name: str, data: bytes | None = None) -> Tensor:
    """(C, H, W) uint8 or uint16 samples of an image file (``mode_name`` ``"GRAY"``: C = 1; ``"RGB"``: C = 3); a
    one-line ValueError for a file that is not a readable image. ``data``: the file's bytes when already read.

    Pillow decodes (importing torchvision costs a CLI run about 2 s); 16-bit colour PNGs, which Pillow reads as
    8-bit, go to torchvision (:func:`_decode_torchvision`). PNGs are checked first (:func:`~.png_check.check_png`)."""
    data = _read_bytes(path) if data is None else data
    if _is_png(data):
        _check_png(path, data)
        if _is_colour_png16(data):
            return _decode_torchvision(path, mode_name, data)
    return _decode_pillow(path, mode_name, data)


def _check_png(path: str | os.PathLike, data: bytes) -> None:
    try:
        check_png(data)
    except ValueError as e:
        raise ValueError(f"not a readable image: {path} ({e})") from None


def _decode_torchvision(path: str | os.PathLike, mode_name: str, data: bytes) -> Tensor:
    """torchvision's decoder (``ImageReadMode`` ``mode_name``), orientation tags applied."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                            mode=getattr(ImageReadMode, mode_name), apply_exif_orientation=True)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"not a readable image ({FORMATS}) or truncated: {path} ({first_line(e)})") from None


def _decode_pillow(path: str | os.PathLike, mode_name: str, data: bytes) -> Tensor:
    """Pillow's reading of ``data`` as (C, H, W) uint8, or uint16 for 16-bit gray files (C = 1 for ``GRAY``, 3 for
    ``RGB``: gray repeated), its orientation tag applied (a phone photo taken upright reads upright, and the written
    result, which carries no tag, shows as the input did); palettes expanded, alpha dropped."""
    import io

    import numpy as np
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # corrupt files: warnings, then an error
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                im = ImageOps.exif_transpose(im)
                mode = im.mode
                if mode.startswith("I"):  # 16-bit (I;16, I;16B) or 32-bit integer gray
                    arr = np.asarray(im).astype(np.int64)
                elif mode != "F":
                    arr = np.asarray(im.convert("L" if mode_name == "GRAY" else "RGB"))
        if mode == "F":
            raise ValueError("32-bit float samples are not supported; save as 8- or 16-bit")
        if mode.startswith("I"):
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ValueError(f"integer samples outside [0, 65535] (mode {mode})")
            gray = torch.from_numpy(arr.astype(np.int32)).to(torch.uint16)[None]
            return gray.expand(3, -1, -1).clone() if mode_name == "RGB" else gray
    except Exception as e:  # noqa: BLE001 - whatever the decoder raises on a damaged file (bombs included)
        raise ValueError(f"not a readable image ({FORMATS}) or truncated: {path} ({first_line(e)})") from None
    out = torch.from_numpy(arr.copy())
    return out[None] if out.dim() == 2 else out.permute(2, 0, 1).contiguous()


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (a KeyError's key unquoted; the type's name when empty)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(e).__name__


#: Bit depth of the integer sample types images come in (uint8 files, 16-bit PNG / TIFF / PGM).
SAMPLE_BITS = {torch.uint8: 8, torch.uint16: 16}


def to_unit_float(img: Tensor) -> tuple[Tensor, int]:
    """uint8 / uint16 samples -> float32 in [0, 1] (divided by 255 / 65535) and the bit depth (8 / 16)."""
    bits = SAMPLE_BITS.get(img.dtype)
    if bits is None:
        raise ValueError(f"unsupported image sample type {img.dtype}")
    return img.to(torch.int32).float() / float((1 << bits) - 1), bits


def read_gray(path: str | os.PathLike, *, return_bits: bool = False) -> Tensor | tuple[Tensor, int]:
    """An image file as a (H, W) float tensor in [0, 1] (colour is converted to gray; 16-bit PNGs
    are scaled by 65535). With ``return_bits`` also the bit depth, 8 or 16."""
    gray, bits = to_unit_float(_decode(path, "GRAY")[0])
    return (gray, bits) if return_bits else gray


def read_image(path: str | os.PathLike, *, return_bits: bool = False) -> Tensor | tuple[Tensor, int]:
    """An image file as a (C, H, W) float tensor in [0, 1]: C = 3 for a colour image, C = 1 for a
    gray one (including colour files whose three channels are equal). Alpha is dropped (:func:`read_alpha` reads
    it) and palettes are expanded; 16-bit PNGs are scaled by 65535. With ``return_bits`` also the bit
    depth, 8 or 16."""
    img, bits = to_unit_float(read_samples(path))
    return (img, bits) if return_bits else img


def read_samples(path: str | os.PathLike) -> Tensor:
    """The integer samples that :func:`read_image` scales: (C, H, W) uint8 or uint16 (16-bit PNGs), C as there;
    a quarter (uint8) of the float image's memory."""
    rgb = _decode(path, "RGB")
    return rgb[:1] if torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2]) else rgb


def read_alpha(path: str | os.PathLike) -> Tensor | None:
    """The alpha channel of an image file, (1, H, W) float32 in [0, 1], or None when the file has none or it is
    opaque everywhere (the image readers drop it; :func:`write_image` can store it again)."""
    data = _read_bytes(path)
    png = _is_png(data)
    if png:
        _check_png(path, data)
        if not png_has_alpha(data):
            return None
    if png and png_depth_and_colour(data)[0] == 16:  # Pillow cuts 16-bit alpha to 8 bits (or fails)
        alpha = _decode_torchvision(path, "RGB_ALPHA", data)[3:]
    else:
        alpha = _pillow_alpha(path, data)
    if alpha is None or bool((alpha == torch.iinfo(alpha.dtype).max).all()):
        return None
    return to_unit_float(alpha)[0]


def _pillow_alpha(path: str | os.PathLike, data: bytes) -> Tensor | None:
    """The alpha (1, H, W) uint8 that Pillow reads from ``data`` (an alpha band or a transparency key), oriented as
    :func:`_decode_pillow` orients the image; None without one."""
    import io

    import numpy as np
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                im = ImageOps.exif_transpose(im)
                if "A" not in im.getbands() and "transparency" not in im.info:
                    return None
                return torch.from_numpy(np.asarray(im.convert("RGBA").getchannel("A")).copy())[None]
    except Exception as e:  # noqa: BLE001 - as in _decode_pillow
        raise ValueError(f"not a readable image ({FORMATS}) or truncated: {path} ({first_line(e)})") from None


def read_png_raw(path: str | os.PathLike) -> Tensor:
    """A PNG's samples unchanged, (C, H, W) uint8 or uint16 (C = 1, 2, 3 or 4 as stored; torchvision decodes)."""
    data = _read_bytes(path)
    if _is_png(data):
        _check_png(path, data)
    return _decode_torchvision(path, "UNCHANGED", data)


def write_png8(path: str | os.PathLike, samples: Tensor) -> None:
    """Write uint8 samples (C, H, W), C = 1 (gray) or 3 (RGB), as an 8-bit PNG (Pillow's encoder)."""
    import numpy as np
    from PIL import Image

    if samples.dim() != 3 or samples.shape[0] not in (1, 3) or samples.dtype != torch.uint8:
        raise ValueError(f"8-bit PNG samples must be uint8 (C, H, W) with C = 1 or 3, got {samples.dtype} "
                         f"{tuple(samples.shape)}")
    arr = np.ascontiguousarray(samples.detach().cpu().permute(1, 2, 0).numpy())
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path, format="PNG")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


#: PNG colour type of each channel count: gray, gray + alpha, RGB, RGBA
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def encode_png(samples: Tensor, bits: int = 16) -> bytes:
    """A PNG of integer samples (C, H, W) in [0, 2^bits - 1], 8- or 16-bit: C = 1 gray, 2 gray + alpha, 3 RGB,
    4 RGBA (torchvision encodes 8-bit gray and RGB only). Filter type 0 on every row, zlib level 6."""
    if samples.dim() != 3 or samples.shape[0] not in _PNG_COLOUR_TYPES:
        raise ValueError(f"PNG samples must be (C, H, W) with C = 1, 2, 3 or 4, got {tuple(samples.shape)}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    c, h, w = samples.shape
    if h == 0 or w == 0:
        raise ValueError(f"cannot write an empty image, shape {tuple(samples.shape)}")
    s = samples.detach().cpu().to(torch.int64)
    top = (1 << bits) - 1
    if s.min() < 0 or s.max() > top:
        raise ValueError(f"{bits}-bit PNG samples must be in [0, {top}]")
    import numpy as np

    arr = s.permute(1, 2, 0).numpy().astype(">u2" if bits == 16 else np.uint8).reshape(h, w * c)  # interleaved
    width = bits // 8 * w * c
    rows = np.zeros((h, 1 + width), dtype=np.uint8)  # a filter byte (0) then the row (16-bit: big-endian)
    rows[:, 1:] = arr.view(np.uint8).reshape(h, width)
    ihdr = struct.pack(">IIBBBBB", w, h, bits, _PNG_COLOUR_TYPES[c], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def write_png16(path: str | os.PathLike, samples: Tensor) -> None:
    """Write integer samples (C, H, W) or (H, W) in [0, 65535] as a 16-bit PNG."""
    if samples.dim() == 2:
        samples = samples.unsqueeze(0)
    Path(path).write_bytes(encode_png(samples, 16))


def write_image(path: str | os.PathLike, image: Tensor, bits: int = 8, alpha: Tensor | None = None) -> None:
    """Write an image in [0, 1] (clipped; NaN becomes 0), (H, W) gray or (C, H, W) with C = 1 or 3,
    as an 8-bit PNG (``bits=8``) or a 16-bit one (``bits=16``); creates parent folders. ``alpha``: an
    alpha channel (H, W) or (1, H, W) in [0, 1] to store with it (e.g. the input's, :func:`read_alpha`)."""
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (H, W) or (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    if alpha is not None:
        alpha = alpha.reshape(-1, *alpha.shape[-2:])
        if alpha.shape != (1, *image.shape[-2:]):
            raise ValueError(f"alpha must be (H, W) or (1, H, W) with the image's size {tuple(image.shape[-2:])}, "
                             f"got {tuple(alpha.shape)}")
        image = torch.cat((image.to(alpha.device), alpha.to(image.dtype)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = image.detach().float().nan_to_num(0.0).clamp(0, 1).cpu()
    top = (1 << bits) - 1
    if bits == 16 or alpha is not None:
        path.write_bytes(encode_png((x * top).round().to(torch.int32), bits))
        return
    write_png8(path, (x * 255.0).round().to(torch.uint8))
