"""The simulator's stand-in images: deterministic, exact, and steered by references."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.simulator.render import mean_colour, render_image


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_same_inputs_give_same_bytes() -> None:
    a = render_image("a lighthouse at dusk", 42, 1024, 1024, [], "PNG", 95)
    b = render_image("a lighthouse at dusk", 42, 1024, 1024, [], "PNG", 95)
    assert a == b


def test_seed_and_prompt_change_the_image() -> None:
    base = render_image("a lighthouse at dusk", 42, 1024, 1024, [], "JPG", 80)
    assert render_image("a lighthouse at dusk", 43, 1024, 1024, [], "JPG", 80) != base
    assert render_image("a lighthouse at dawn", 42, 1024, 1024, [], "JPG", 80) != base


@pytest.mark.parametrize("ratio", spec.ASPECT_RATIOS, ids=lambda r: r.name)
def test_every_size_is_exact(ratio: spec.AspectRatio) -> None:
    img = _open(render_image("sizes", 1, ratio.width, ratio.height, [], "JPG", 60))
    assert img.size == (ratio.width, ratio.height)


@pytest.mark.parametrize(("fmt", "pil"), [("PNG", "PNG"), ("JPG", "JPEG"), ("WEBP", "WEBP")])
def test_formats(fmt: str, pil: str) -> None:
    img = _open(render_image("formats", 7, 1568, 672, [], fmt, 90))
    assert img.format == pil
    assert img.size == (1568, 672)


def test_quality_changes_lossy_size() -> None:
    low = render_image("quality", 3, 1024, 1024, [], "JPG", 20)
    high = render_image("quality", 3, 1024, 1024, [], "JPG", 99)
    assert len(low) < len(high)


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def test_positive_reference_pulls_mean_colour_toward_it() -> None:
    red = Image.new("RGB", (64, 64), (230, 20, 20))
    for seed in range(3):
        plain = mean_colour(_open(render_image("pull", seed, 1024, 1024, [], "PNG", 95)))
        pulled = mean_colour(_open(render_image("pull", seed, 1024, 1024, [(red, 1.5)], "PNG", 95)))
        assert _distance(pulled, (230, 20, 20)) < _distance(plain, (230, 20, 20)) - 20
        assert pulled[0] > pulled[1] and pulled[0] > pulled[2]


def test_negative_reference_pushes_mean_colour_away() -> None:
    red = Image.new("RGB", (64, 64), (230, 20, 20))
    for seed in range(3):
        plain = mean_colour(_open(render_image("push", seed, 1024, 1024, [], "PNG", 95)))
        pushed = mean_colour(_open(render_image("push", seed, 1024, 1024, [(red, -1.5)], "PNG", 95)))
        assert _distance(pushed, (230, 20, 20)) > _distance(plain, (230, 20, 20))
        # toward the complement (cyan): green and blue dominate red
        assert pushed[1] > pushed[0] and pushed[2] > pushed[0]


def test_stronger_reference_pulls_harder_and_zero_does_nothing() -> None:
    blue = Image.new("RGB", (8, 8), (10, 30, 240))
    plain = render_image("strength", 9, 1024, 1024, [], "PNG", 95)
    assert render_image("strength", 9, 1024, 1024, [(blue, 0.0)], "PNG", 95) == plain
    weak = mean_colour(_open(render_image("strength", 9, 1024, 1024, [(blue, 0.5)], "PNG", 95)))
    strong = mean_colour(_open(render_image("strength", 9, 1024, 1024, [(blue, 2.0)], "PNG", 95)))
    assert _distance(strong, (10, 30, 240)) < _distance(weak, (10, 30, 240))


def test_marked_as_simulated_with_text() -> None:
    img = _open(render_image("x" * 4000, 2**63 - 1, 768, 1376, [], "PNG", 95)).convert("L")
    # "SIMULATED" in white on a shaded box at the top left, the prompt and seed in a band at the bottom.
    assert img.crop((0, 0, img.width // 2, img.height // 12)).getextrema()[1] == 255
    assert img.crop((0, img.height - 60, img.width, img.height)).getextrema()[1] >= 220


def test_rejects_empty_size() -> None:
    with pytest.raises(ValueError):
        render_image("bad", 1, 0, 10, [], "PNG", 95)
