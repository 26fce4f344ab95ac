"""What Krea 2 Medium accepts, as documented on its Runware model page.

Every limit the rest of the program checks lives here, so that the request builder,
the simulator and the widgets all agree on one set of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_ID = "krea:krea@2-medium"
DEFAULT_API_URL = "https://api.runware.ai/v1"


@dataclass(frozen=True)
class AspectRatio:
    name: str  # "16:9"
    width: int
    height: int

    @property
    def key(self) -> str:
        """A name usable in identifiers: "2.35:1" -> "2_35_1"."""
        return self.name.replace(":", "_").replace(".", "_")

    @property
    def label(self) -> str:
        return f"{self.name} · {self.width}×{self.height}"


ASPECT_RATIOS: tuple[AspectRatio, ...] = (
    AspectRatio("1:1", 1024, 1024),
    AspectRatio("4:3", 1184, 896),
    AspectRatio("3:2", 1248, 832),
    AspectRatio("16:9", 1376, 768),
    AspectRatio("2.35:1", 1568, 672),
    AspectRatio("4:5", 928, 1152),
    AspectRatio("2:3", 832, 1248),
    AspectRatio("9:16", 768, 1376),
)
RATIOS_BY_NAME: dict[str, AspectRatio] = {r.name: r for r in ASPECT_RATIOS}
RATIOS_BY_SIZE: dict[tuple[int, int], AspectRatio] = {(r.width, r.height): r for r in ASPECT_RATIOS}
DEFAULT_RATIO = "1:1"

CREATIVITY_LEVELS = ("raw", "low", "medium", "high")
DEFAULT_CREATIVITY = "medium"
CREATIVITY_HELP = {
    "raw": "Follows the prompt most literally, with the least embellishment.",
    "low": "Stays close to the prompt with light interpretation.",
    "medium": "Balances the prompt with the model's own ideas (the default).",
    "high": "Takes the most liberty with the prompt for surprising results.",
}

OUTPUT_TYPES = ("base64Data", "dataURI", "URL")
OUTPUT_FORMATS = ("PNG", "JPG", "WEBP")
DEFAULT_OUTPUT_FORMAT = "PNG"
QUALITY_MIN, QUALITY_MAX, DEFAULT_QUALITY = 20, 99, 95
DELIVERY_METHODS = ("sync", "async")
SAFETY_MODES = ("none", "fast")

SEED_MIN, SEED_MAX = 0, 2**63 - 1
RANDOM_SEED_MAX = 2**32 - 1  # the service draws unseeded seeds from the unsigned 32-bit range
RESULTS_MIN, RESULTS_MAX = 1, 20
MAX_REFERENCES = 10
STRENGTH_MIN, STRENGTH_MAX, DEFAULT_STRENGTH = -2.0, 2.0, 0.7
TTL_MIN = 60
PROMPT_MIN, PROMPT_MAX = 2, 3000

# The service keeps uploaded images at most this large on the long side.
UPLOAD_MAX_SIDE = 2048
# ...and forgets them this long after their last use.
UPLOAD_LIFETIME_S = 30 * 24 * 3600
# A reference with more pixels than this, or a longer side, is refused before it is decoded
# (a decompression bomb is a small file that expands to gigabytes in memory); it is sent at
# most UPLOAD_MAX_SIDE on the long side, so nothing larger is ever needed.
REFERENCE_MAX_PIXELS = 64_000_000
REFERENCE_MAX_SIDE = 16_384

FORMAT_EXTENSIONS = {"PNG": "png", "JPG": "jpg", "WEBP": "webp"}
PIL_FORMATS = {"PNG": "PNG", "JPG": "JPEG", "WEBP": "WEBP"}
# Every spelling of an output format the app meets (Pillow's names, file suffixes).
_FORMAT_NAMES = {"PNG": "PNG", "JPG": "JPG", "JPEG": "JPG", "WEBP": "WEBP"}


def normalize_output_format(value: object) -> str | None:
    """The service's name for an output format ("PNG", "JPG" or "WEBP") from any common
    spelling ("jpeg", ".jpg", Pillow's "JPEG"), or None when it names none of them."""
    if not isinstance(value, str):
        return None
    return _FORMAT_NAMES.get(value.strip().lstrip(".").upper())
