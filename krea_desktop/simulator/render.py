"""Deterministic stand-in images for the simulator.

``render_image`` turns a prompt, a seed and weighted references into an abstract
composition (a gradient with soft colour fields and a few crisp lines), exactly the
requested size, visibly marked ``SIMULATED`` with the seed and a prompt excerpt. The same
inputs always give the same bytes. The composition is painted on a small canvas and
scaled up, so a 1568x672 PNG takes a few tens of milliseconds.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from krea_desktop.api import spec
from krea_desktop.fonts import text_font

RGB = tuple[int, int, int]

# Long side of the canvas the composition is painted on before it is scaled up.
_CANVAS_LONG_SIDE = 192
# How far one unit of reference strength moves the palette toward (or away from) the
# reference's mean colour; strength 2 moves it 90 % of the way.
_PULL_PER_STRENGTH = 0.45
_MAX_PULL = 0.9


def mean_colour(image: Image.Image) -> RGB:
    """The average colour of ``image`` (alpha ignored)."""
    im = image
    if im.mode not in ("RGB", "RGBA", "L"):
        im = im.convert("RGBA")
    if max(im.size) > 256:
        im = im.copy()
        im.thumbnail((256, 256), Image.Resampling.BOX)
    px = im.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(px, tuple)
    return (int(px[0]), int(px[1]), int(px[2]))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def base_palette(rng: random.Random) -> list[RGB]:
    """Five colours in a harmonious scheme: analogous, complementary or triadic."""
    hue = rng.random()
    scheme = rng.choice(((0.0, 0.06, -0.06, 0.12, -0.1), (0.0, 0.5, 0.04, 0.46, 0.08), (0.0, 1 / 3, 2 / 3, 0.05, 0.38)))
    colours = []
    for i, offset in enumerate(scheme):
        s = rng.uniform(0.35, 0.8)
        v = rng.uniform(0.3, 0.55) if i == 0 else rng.uniform(0.6, 0.95)
        colours.append(_hsv(hue + offset, s, v))
    return colours


def apply_references(palette: list[RGB], references: Sequence[tuple[Image.Image, float]]) -> list[RGB]:
    """Pull every palette colour toward each reference's mean colour by its positive
    strength, or toward the complement of that colour by its negative strength."""
    out = list(palette)
    for image, strength in references:
        if not strength or not math.isfinite(strength):
            continue
        m = mean_colour(image)
        target = m if strength > 0 else (255 - m[0], 255 - m[1], 255 - m[2])
        t = min(_MAX_PULL, abs(strength) * _PULL_PER_STRENGTH)
        out = [_mix(c, target, t) for c in out]
    return out


def _gradient(size: tuple[int, int], a: RGB, b: RGB, angle: float) -> Image.Image:
    mask = Image.linear_gradient("L").rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    # Crop the rotated square's middle so no empty corners show.
    w, h = mask.size
    inset = (w - 256 / math.sqrt(2)) / 2 if w > 256 else 0
    mask = mask.crop((inset, inset, w - inset, h - inset)).resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, b), Image.new("RGB", size, a), mask)


def _compose(rng: random.Random, palette: list[RGB], size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(size, palette[0], palette[1], rng.uniform(0, 360)).convert("RGBA")
    # Soft colour fields.
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(5, 9)):
        colour = rng.choice(palette[1:])
        r = rng.uniform(0.12, 0.45) * max(w, h)
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, rng.randint(110, 210)))
    img.alpha_composite(layer.filter(ImageFilter.GaussianBlur(max(w, h) / 14)))
    # A few sharper shapes on top.
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(2, 4)):
        colour = rng.choice(palette[2:])
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        r = rng.uniform(0.08, 0.25) * min(w, h) * 2
        sides = rng.randint(3, 7)
        turn = rng.uniform(0, math.tau)
        points = [
            (cx + r * math.cos(turn + k * math.tau / sides), cy + r * math.sin(turn + k * math.tau / sides))
            for k in range(sides)
        ]
        draw.polygon(points, fill=(*colour, rng.randint(90, 170)))
    img.alpha_composite(layer.filter(ImageFilter.GaussianBlur(max(w, h) / 90)))
    return img.convert("RGB")


def _lines(img: Image.Image, rng: random.Random, palette: list[RGB]) -> None:
    """Crisp rings and strokes at full resolution."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    unit = max(1, round(min(w, h) / 300))
    for _ in range(rng.randint(2, 4)):
        colour = _mix(rng.choice(palette), (255, 255, 255), 0.5)
        r = rng.uniform(0.08, 0.35) * min(w, h)
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=unit)
    for _ in range(rng.randint(1, 3)):
        colour = _mix(rng.choice(palette), (255, 255, 255), 0.35)
        y0, y1 = rng.uniform(0, h), rng.uniform(0, h)
        draw.line((0, y0, w, y1), fill=colour, width=unit)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return text_font(size)  # the app's own, as on contact sheets


def _shade(img: Image.Image, box: tuple[float, float, float, float], amount: float = 0.55) -> None:
    box = (round(box[0]), round(box[1]), round(box[2]), round(box[3]))
    region = img.crop(box)
    img.paste(Image.blend(region, Image.new("RGB", region.size, (0, 0, 0)), amount), box)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid].rstrip() + "…", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def _label(img: Image.Image, prompt: str, seed: int) -> None:
    w, h = img.size
    draw = ImageDraw.Draw(img)
    pad = max(6, min(w, h) // 60)
    big = _font(max(14, min(w, h) // 18))
    small = _font(max(11, min(w, h) // 42))

    mark = "SIMULATED"
    left, top, right, bottom = draw.textbbox((0, 0), mark, font=big)
    box = (pad, pad, pad + (right - left) + 2 * pad, pad + (bottom - top) + 2 * pad)
    _shade(img, box)
    draw.text((box[0] + pad - left, box[1] + pad - top), mark, font=big, fill=(255, 255, 255))

    excerpt = " ".join(prompt.split())
    line1 = _fit(draw, excerpt, small, w - 4 * pad)
    line2 = f"seed {seed} · {w}x{h}"
    l1 = draw.textbbox((0, 0), line1 or " ", font=small)
    l2 = draw.textbbox((0, 0), line2, font=small)
    line_h = max(l1[3] - l1[1], l2[3] - l2[1])
    band_top = h - (2 * line_h + 3 * pad)
    _shade(img, (0, band_top, w, h), 0.5)
    draw.text((2 * pad, band_top + pad - l1[1]), line1, font=small, fill=(255, 255, 255))
    draw.text((2 * pad, band_top + 2 * pad + line_h - l2[1]), line2, font=small, fill=(220, 220, 220))


def encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    """Encode ``img`` as ``fmt`` ("PNG", "JPG" or "WEBP") without any varying metadata."""
    buf = io.BytesIO()
    pil_format = spec.PIL_FORMATS[fmt]
    if pil_format == "PNG":
        img.save(buf, "PNG", compress_level=1)
    elif pil_format == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "WEBP", quality=quality, method=0)
    return buf.getvalue()


def render_image(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    references: Sequence[tuple[Image.Image, float]] = (),
    fmt: str = "PNG",
    quality: int = spec.DEFAULT_QUALITY,
    grain: float = 0.0,
) -> bytes:
    """An encoded ``width`` x ``height`` image for ``prompt`` and ``seed``.

    ``grain`` (0 to 1) adds deterministic noise, which makes the files as large as real
    model outputs (a 1568×672 PNG of about 3 MB instead of 130 KB) for benchmarks.

    Each reference ``(image, strength)`` pulls the palette toward the image's mean colour
    (positive strength) or toward its complement (negative strength).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, not {width}x{height}")
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    rng = random.Random(digest)
    palette = apply_references(base_palette(rng), references)
    scale = _CANVAS_LONG_SIDE / max(width, height)
    canvas = (max(8, round(width * scale)), max(8, round(height * scale)))
    img = _compose(rng, palette, canvas).resize((width, height), Image.Resampling.BICUBIC)
    _lines(img, rng, palette)
    if grain > 0:
        img = _add_grain(img, rng, grain)
    _label(img, prompt, seed)
    return encode(img, fmt, quality)


def _add_grain(img: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    size = img.size
    noise = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    return Image.blend(img, noise, min(1.0, amount) * 0.35)
