"""Request building: every parameter settable, every bad value refused by name before sending."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krea_desktop.api import spec
from krea_desktop.api.errors import ValidationError
from krea_desktop.api.request import GenerationRequest, ReferenceImage


def test_every_parameter_reaches_the_task() -> None:
    req = GenerationRequest(
        prompt="a lighthouse at dusk",
        ratio="2.35:1",
        number_results=7,
        seed=2**63 - 1,
        creativity="raw",
        references=(ReferenceImage("3ad204c3-a9de-4963-8a1a-c3911e3afafe", -1.25),),
        output_type="URL",
        output_format="WEBP",
        output_quality=20,
        delivery_method="async",
        check_content=True,
        safety_mode="fast",
        include_cost=True,
        ttl=60,
        webhook_url="https://example.test/hook",
        upload_endpoint="https://example.test/put",
    )
    task = req.to_task()
    assert task == {
        "taskType": "imageInference",
        "taskUUID": req.task_uuid,
        "model": "krea:krea@2-medium",
        "positivePrompt": "a lighthouse at dusk",
        "width": 1568,
        "height": 672,
        "numberResults": 7,
        "seed": 2**63 - 1,
        "outputType": "URL",
        "outputFormat": "WEBP",
        "outputQuality": 20,
        "deliveryMethod": "async",
        "includeCost": True,
        "settings": {"creativity": "raw"},
        "inputs": {"referenceImages": [{"image": "3ad204c3-a9de-4963-8a1a-c3911e3afafe", "strength": -1.25}]},
        "safety": {"checkContent": True, "mode": "fast"},
        "ttl": 60,
        "webhookURL": "https://example.test/hook",
        "uploadEndpoint": "https://example.test/put",
    }


@pytest.mark.parametrize("ratio", list(spec.RATIOS_BY_NAME))
def test_each_ratio_maps_to_its_documented_size(ratio: str) -> None:
    task = GenerationRequest("two words", ratio=ratio).to_task()
    assert (task["width"], task["height"]) == (spec.RATIOS_BY_NAME[ratio].width, spec.RATIOS_BY_NAME[ratio].height)


def test_eight_sizes_match_the_model_page() -> None:
    sizes = {(r.width, r.height) for r in spec.ASPECT_RATIOS}
    assert sizes == {
        (1024, 1024),
        (1184, 896),
        (1248, 832),
        (1376, 768),
        (1568, 672),
        (928, 1152),
        (832, 1248),
        (768, 1376),
    }


def test_each_task_has_a_fresh_uuid4() -> None:
    ids = {GenerationRequest("two words").task_uuid for _ in range(50)}
    assert len(ids) == 50
    for value in ids:
        assert uuid.UUID(value).version == 4
    req = GenerationRequest("two words")
    assert req.with_new_task_uuid().task_uuid != req.task_uuid


def test_defaults_ask_for_base64_and_leave_the_seed_to_the_service() -> None:
    task = GenerationRequest("two words").to_task()
    assert task["outputType"] == "base64Data"
    assert "seed" not in task
    assert "inputs" not in task


BAD = [
    ({"prompt": "a"}, "positivePrompt", "from 2 to 3000"),
    ({"prompt": "x" * 3001}, "positivePrompt", "from 2 to 3000"),
    ({"prompt": "   "}, "positivePrompt", "from 2 to 3000"),
    ({"ratio": "5:4"}, "ratio", "1:1 4:3 3:2 16:9 2.35:1 4:5 2:3 9:16"),
    ({"ratio": ["1:1"]}, "ratio", "1:1 4:3 3:2 16:9 2.35:1 4:5 2:3 9:16"),  # a script's slip: not a TypeError
    ({"number_results": 0}, "numberResults", "from 1 to 20"),
    ({"number_results": 21}, "numberResults", "from 1 to 20"),
    ({"seed": -1}, "seed", "from 0 to 9223372036854775807"),
    ({"seed": 2**64}, "seed", "from 0 to 9223372036854775807"),
    ({"creativity": "wild"}, "settings.creativity", "raw, low, medium, high"),
    ({"output_type": "file"}, "outputType", "base64Data, dataURI, URL"),
    ({"output_format": "GIF"}, "outputFormat", "PNG, JPG, WEBP"),
    ({"output_quality": 19}, "outputQuality", "from 20 to 99"),
    ({"output_quality": 100}, "outputQuality", "from 20 to 99"),
    ({"delivery_method": "email"}, "deliveryMethod", "sync, async"),
    ({"safety_mode": "slow"}, "safety.mode", "none, fast"),
    ({"ttl": 120}, "ttl", "outputType is URL"),
    ({"ttl": 59, "output_type": "URL"}, "ttl", "at least 60"),
    ({"webhook_url": "ftp://x"}, "webhookURL", "http(s) URL"),
    ({"upload_endpoint": "nope"}, "uploadEndpoint", "http(s) URL"),
    ({"references": tuple(ReferenceImage("x") for _ in range(11))}, "inputs.referenceImages", "at most 10"),
    ({"references": (ReferenceImage("x", 2.5),)}, "inputs.referenceImages[0].strength", "from -2 to 2"),
    ({"references": (ReferenceImage("x", float("nan")),)}, "inputs.referenceImages[0].strength", "from -2 to 2"),
    ({"references": (ReferenceImage(""),)}, "inputs.referenceImages[0].image", "empty"),
    ({"task_uuid": "not-a-uuid"}, "taskUUID", "UUID"),
    ({"check_content": "yes"}, "safety.checkContent", "True or False"),  # sent as it was, before
    ({"include_cost": 1}, "includeCost", "True or False"),
]


@pytest.mark.parametrize(("kwargs", "parameter", "allowed"), BAD)
def test_invalid_values_are_refused_naming_parameter_and_range(kwargs: dict, parameter: str, allowed: str) -> None:
    base = {"prompt": "a quiet harbour"}
    base.update(kwargs)
    with pytest.raises(ValidationError) as info:
        GenerationRequest(**base).to_task()
    assert info.value.parameter == parameter
    assert parameter in str(info.value)
    assert allowed in str(info.value)
    assert str(info.value).endswith(".")


@pytest.mark.parametrize(
    ("prompt", "said"),
    [
        ("a", "positivePrompt has 1 character, but"),
        (" a", "positivePrompt has 1 character besides spaces, but"),
        ("a   ", "positivePrompt has 1 character besides spaces, but"),
        ("   ", "positivePrompt has 0 characters besides spaces, but"),
        ("x" * 3001, "positivePrompt has 3,001 characters, but"),
    ],
)
def test_a_prompt_too_short_is_counted_as_it_is_checked(prompt: str, said: str) -> None:
    with pytest.raises(ValidationError, match=f"^{said} it must have from 2 to 3000\\.$"):
        GenerationRequest(prompt).validate()


@given(st.floats(min_value=-2, max_value=2, allow_nan=False))
def test_any_strength_in_range_is_sent_signed(strength: float) -> None:
    task = GenerationRequest("two words", references=(ReferenceImage("https://e.test/a.png", strength),)).to_task()
    sent = task["inputs"]["referenceImages"][0]["strength"]
    assert abs(sent - strength) < 1e-4
    assert (sent >= 0) == (round(strength, 4) >= 0)


@given(st.integers())
def test_seed_range_is_exactly_the_documented_one(seed: int) -> None:
    req = GenerationRequest("two words", seed=seed)
    if 0 <= seed <= 2**63 - 1:
        assert req.to_task()["seed"] == seed
    else:
        with pytest.raises(ValidationError):
            req.validate()


def test_local_references_must_be_resolved_before_sending(tmp_path: Path) -> None:
    req = GenerationRequest("two words", references=(ReferenceImage(tmp_path / "a.png"),))
    req.validate()  # files are read when uploaded
    with pytest.raises(TypeError):
        req.to_task()
    task = req.to_task([{"image": "3ad204c3-a9de-4963-8a1a-c3911e3afafe", "strength": 0.7}])
    assert task["inputs"]["referenceImages"][0]["image"] == "3ad204c3-a9de-4963-8a1a-c3911e3afafe"


def test_describe_records_every_parameter(tmp_path: Path) -> None:
    req = GenerationRequest("two words", ratio="9:16", seed=5, references=(ReferenceImage(tmp_path / "r.png", -0.5),))
    d = req.describe()
    assert (d.width, d.height, d.ratio, d.seed) == (768, 1376, "9:16", 5)
    assert [(r.image, r.source, r.strength) for r in d.references] == [(None, str(tmp_path / "r.png"), -0.5)]
    assert d.model == spec.MODEL_ID and d.task_uuid == req.task_uuid


def test_a_record_never_keeps_credentials_written_into_a_reference_address() -> None:
    req = GenerationRequest(
        "two words",
        references=(
            ReferenceImage("https://ann:hunter2@images.example.com/cat.png?v=2", 0.5),
            ReferenceImage("https://images.example.com/dog.png", 0.5),
        ),
    )
    kept = [(r.image, r.source) for r in req.describe().references]
    assert kept == [
        ("https://images.example.com/cat.png?v=2", "https://images.example.com/cat.png?v=2"),
        ("https://images.example.com/dog.png", "https://images.example.com/dog.png"),
    ]
    assert req.to_task()["inputs"]["referenceImages"][0]["image"].startswith("https://ann:hunter2@")  # still sent


def test_a_name_starting_with_a_tilde_is_a_name_where_the_system_guesses_homes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows names a folder beside the user's own home for any ~name, so ~draft.png
    became C:\\Users\\draft.png: a ~name is a home only where that home is."""
    import os

    from krea_desktop.api.request import path_as_typed

    users = tmp_path / "Users"
    (users / "me").mkdir(parents=True)
    (users / "ann").mkdir()

    def windows_expanduser(text: str) -> str:  # ntpath's: the user's own home's folder, then the name
        if not text.startswith("~"):
            return text
        name, sep, rest = text[1:].partition("/")
        return str((users / (name or "me")) / rest) if sep else str(users / (name or "me"))

    monkeypatch.setattr(os.path, "expanduser", windows_expanduser)
    assert path_as_typed("~draft.png") == Path("~draft.png")
    assert path_as_typed("~$report.png") == Path("~$report.png")
    assert path_as_typed("~") == users / "me"
    assert path_as_typed("~/refs/a.png") == users / "me" / "refs" / "a.png"
    assert path_as_typed("~ann/a.png") == users / "ann" / "a.png"
    assert path_as_typed("refs/~draft.png") == Path("refs/~draft.png")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~draft.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert ReferenceImage("~draft.png", 0.5).image == Path("~draft.png")
