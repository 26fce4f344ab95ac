"""The library API as README shows it, against the simulator on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.sim import running_simulator

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using it from Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_script_generates_with_the_library_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = readme_script()
    assert len([ln for ln in script.splitlines() if ln.strip()]) <= 12
    with running_simulator() as sim:
        monkeypatch.setenv("RUNWARE_API_KEY", "sk-library-api")
        monkeypatch.chdir(tmp_path)
        # The script as written, pointed at the simulator instead of the service.
        code = script.replace(
            'RunwareClient(os.environ["RUNWARE_API_KEY"])',
            f'RunwareClient(os.environ["RUNWARE_API_KEY"], base_url={sim.url!r})',
        )
        assert code != script
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_the_names_come_from_the_package() -> None:
    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient

    assert RunwareClient.__module__ == "krea_desktop.api.client"
    assert GenerationRequest.__module__ == "krea_desktop.api.request"
    assert ReferenceImage.__module__ == "krea_desktop.api.request"


def test_a_reference_named_by_a_string_path_is_read_as_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient
    from krea_desktop.api.errors import ValidationError

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 48), "teal").save("fox.png")
    assert ReferenceImage("fox.png", 0.5).image == Path("fox.png")  # as README's path_or_url_or_bytes
    Image.new("RGB", (64, 48), "teal").save("~draft.png")
    assert ReferenceImage("~draft.png", 0.5).image == Path("~draft.png")  # no user "draft": a file's name

    async def generate(*refs: object) -> list[str | None]:
        async with RunwareClient("sk-library-api", base_url=sim.url) as client:
            request = GenerationRequest("a lighthouse", ratio="1:1", references=refs)  # type: ignore[arg-type]
            return [ref.source async for image in client.generate(request) for ref in image.record.references]

    with running_simulator() as sim:
        assert asyncio.run(generate(ReferenceImage("fox.png", 0.5))) == ["fox.png"]
        with pytest.raises(ValidationError, match=re.escape("“no-fox.png”: no file of that name exists")):
            asyncio.run(generate(ReferenceImage("no-fox.png", 0.5)))
        with pytest.raises(ValidationError, match=re.escape("inputs.referenceImages[0] must be a ReferenceImage")):
            asyncio.run(generate(("fox.png", 0.5)))
        with pytest.raises(ValidationError, match="A reference's base64 data cannot be decoded"):
            asyncio.run(generate(ReferenceImage("aGVsbG8", 0.5)))  # not a whole number of quads
        assert len(sim.service._uploads) == 1  # the fox, once: nothing was sent for the others
