"""The A1111 ``parameters`` text, as written by AUTOMATIC1111's web UI, Forge, reForge,
SD.Next, Civitai and this application: the prompt, an optional ``Negative prompt:`` part,
then one line of ``Key: value`` pairs (values containing ``,``, ``:`` or a newline quoted
as JSON strings). PNG ``parameters`` text chunk; EXIF UserComment in JPEG and WEBP."""

from __future__ import annotations

import json
import re
from typing import Any

from krea_desktop.api import spec
from krea_desktop.library.readers.base import Embedded, as_number, looks_like_json

# A1111's own pattern, r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', with the key
# length bounded and its quoted value read by _quoted_end, not by the pattern: a regular
# expression keeps a place to go back to for every escape of a quote that never closes
# (300 MB for a 4 KB PNG of "\"" pairs; see _params for the rest of its bounds).
_RE_KEY = re.compile(r"\s*(\w[\w \-/]{0,62}):\s*")
_RE_PLAIN = re.compile(r"([^,]*)(?:,|$)")
_RE_AFTER_QUOTE = re.compile(r",|$")
_RE_SPACES = re.compile(r"\s+")
_RE_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")
_MAX_PARAM_LINE = 16 * 1024
# The most escapes a quoted value read as one may have (an extension's prompt or JSON has
# tens); one with more is read as A1111 reads a value without quotes, up to the next comma.
# Each escape is a step of a loop in Python: two million "\"" pairs took 0.8 s.
_MAX_ESCAPES = 10_000
# The model's name in the parameters line (its id has a ":", which A1111 would quote and
# some readers then split apart).
MODEL_LABEL = "Krea 2 Medium"
# What the parameters line says of settings this model does not have.
NOT_APPLICABLE = "n/a"
_FOREIGN_KEYS = {"Sampler": "sampler", "Schedule type": "scheduler", "Steps": "steps", "CFG scale": "cfg"}
# A settings line has one of these (a prompt such as "(masterpiece:1.2), (best quality:1.1),
# (a cat:1.3)" has three pairs, and none of them).
_MARKS = ("Steps", "Sampler", "Seed", "Size", "CFG scale", "Model", "Version")
_OWN_KEYS = {"Seed", "Size", "Model", "Creativity", "Ratio", "References", "Version"}


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            unquoted = json.loads(value)
        except ValueError:
            return value
        if isinstance(unquoted, str):
            return unquoted
    return value


def _quoted_end(line: str, start: int) -> int:
    """Where the quoted value opening at ``start`` ends (after its closing quote), as
    A1111's ``"(?:\\.|[^\\"])+"`` reads it: a backslash takes the character after it, a
    line break excepted; -1 when it does not close, or not before :data:`_MAX_ESCAPES`
    escapes (the value is then read as one without quotes). Reads each character once."""
    if start + 1 >= len(line) or line[start + 1] == '"':
        return -1  # "+": at least one character inside
    pos = start + 1
    quote = line.find('"', pos)
    escapes = 0
    while quote >= 0:
        escape = line.find("\\", pos, quote)
        if escape < 0:
            return quote + 1
        escapes += 1
        if line[escape + 1] == "\n" or escapes > _MAX_ESCAPES:
            return -1
        pos = escape + 2
        if pos > quote:
            quote = line.find('"', pos)
    return -1


def _pair_at(line: str, pos: int) -> tuple[str, str, int] | None:
    """The key, the value and the end of A1111's pattern matched at ``pos``, or None."""
    key = _RE_KEY.match(line, pos)
    if key is None:
        return None
    start = key.end()
    if line.startswith('"', start):
        end = _quoted_end(line, start)
        after = _RE_AFTER_QUOTE.match(line, end) if end > 0 else None
        if after is not None:
            return key.group(1), line[start:end], after.end()
    plain = _RE_PLAIN.match(line, start)
    assert plain is not None  # it matches anywhere: up to a comma, or to the end
    return key.group(1), plain.group(1), plain.end()


def _params(line: str) -> dict[str, str]:
    """The ``Key: value`` pairs of a parameters line, as A1111's pattern finds them; of a
    line longer than :data:`_MAX_PARAM_LINE` (extensions add kilobytes of hashes and
    prompts after the settings), those that start within that length, each whole."""
    # The pattern's own search, one place at a time, each attempt bounded: a quoted value
    # is read to the next quote at most (a key's opening quote ends any quoted value before
    # it), and a run of spaces, which each attempt inside it would read to its end, is
    # passed at once.
    pairs: dict[str, str] = {}
    pos, stop = 0, min(len(line), _MAX_PARAM_LINE)
    while pos < stop:
        pair = _pair_at(line, pos)
        if pair is not None:
            key, value, pos = pair
            pairs[key.strip()] = _unquote(value)
            continue
        # Where it failed after a run of spaces, it fails the same from any place in the run.
        spaces = _RE_SPACES.match(line, pos)
        pos = spaces.end() if spaces is not None else pos + 1
    return pairs


def tool_of(params: dict[str, str]) -> str:
    """Which of the A1111 family wrote a parameters line, from the keys it adds."""
    version = params.get("Version", "")
    if version.startswith("krea-desktop"):
        return "krea-desktop"
    if any(k.startswith("Civitai") for k in params):
        return "Civitai"
    if params.get("App", "").lower().startswith("sd.next") or ("App" in params and "Operations" in params):
        return "SD.Next"
    if re.match(r"f\d", version):
        return "Forge"
    if "reforge" in version.lower():
        return "reForge"
    if version.lower().startswith("fooocus"):  # Fooocus's "a1111" metadata scheme
        return "Fooocus"
    return "A1111"


def parse_a1111(text: str) -> dict[str, Any]:
    """Parse A1111 ``parameters`` text (ours or any other tool's) into a partial record.

    Gives ``prompt`` always, and whatever else it finds: ``negative_prompt``, ``seed``,
    ``width``/``height``, ``ratio`` (when the size is one of Krea 2 Medium's eight),
    ``creativity``, ``model``, ``reference_count`` (ours), ``source`` (the tool), and under
    ``foreign`` the sampler, scheduler, steps, CFG and every other pair as written.
    """
    lines = text.strip().replace("\r\n", "\n").split("\n")
    last = lines[-1].strip() if lines else ""
    params = _params(last)
    settings_line = any(key in params for key in _MARKS) and (
        len(params) >= 3 or (len(lines) > 1 and re.match(r"\s*Steps\s*:", last) is not None)
    )
    if settings_line:
        lines = lines[:-1]
    else:
        params = {}
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    record: dict[str, Any] = {"prompt": "\n".join(prompt_lines).strip()}
    if in_negative:
        record["negative_prompt"] = "\n".join(negative_lines).strip()
    if not params:
        return record
    seed = params.get("Seed")
    seed_n = int(seed) if seed is not None and re.fullmatch(r"-?\d{1,20}", seed.strip()) else None
    if seed_n is not None and spec.SEED_MIN <= seed_n <= spec.SEED_MAX:
        record["seed"] = seed_n
    size = _RE_SIZE.match(params.get("Size", ""))
    if size:
        width, height = int(size.group(1)), int(size.group(2))
        record["width"], record["height"] = width, height
        ratio = spec.RATIOS_BY_SIZE.get((width, height))
        if ratio is not None:
            record["ratio"] = ratio.name
    creativity = params.get("Creativity", "").strip().lower()
    if creativity in spec.CREATIVITY_LEVELS:
        record["creativity"] = creativity
    model = params.get("Model", "").strip()
    if model:
        record["model"] = spec.MODEL_ID if model == MODEL_LABEL else model
    refs = params.get("References", "").strip()
    if refs.isdigit() and len(refs) < 4:
        record["reference_count"] = int(refs)
    source = tool_of(params)
    record["source"] = source
    foreign: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for key, value in params.items():
        if value == NOT_APPLICABLE:
            continue
        if key in _FOREIGN_KEYS:
            number = as_number(value)
            foreign[_FOREIGN_KEYS[key]] = value if number is None or key == "Sampler" else number
        elif key not in _OWN_KEYS or source != "krea-desktop":
            settings[key] = value
    if source != "krea-desktop":
        if seed_n is not None and seed_n > spec.SEED_MAX:
            foreign["seed"] = str(seed_n)  # beyond the model's seeds: the tool's own, never recalled
        # A negative one (-1) stands for a random seed: there is none to show or recall.
        if settings:
            foreign["settings"] = settings
        if foreign:
            record["foreign"] = foreign
    return record


def read(found: Embedded) -> dict[str, Any] | None:
    """The A1111 family's text in a PNG ``parameters`` chunk or an EXIF UserComment."""
    for text, needs_line in ((found.texts.get("parameters"), False), (found.user_comment, True)):
        if not text or not text.strip() or looks_like_json(text):
            continue
        record = parse_a1111(text)
        if "source" not in record and (needs_line or not record.get("prompt")):
            continue  # a camera's caption is not a prompt
        if "fooocus_scheme" in found.texts and record.get("source") in (None, "A1111"):
            record["source"] = "Fooocus"  # Fooocus names its scheme beside the line
        record.setdefault("source", "A1111")
        return record
    return None
