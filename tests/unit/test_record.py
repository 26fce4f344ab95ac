"""The typed generation record: made by the request, read from anything, never raising."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord, ReferenceRecord, derive_ratio, parse_record, parse_time
from krea_desktop.api.request import GenerationRequest, ReferenceImage


def test_request_describes_itself(tmp_path: Path) -> None:
    req = GenerationRequest(
        "a lighthouse",
        ratio="2:3",
        seed=9,
        creativity="low",
        output_format="WEBP",
        references=(ReferenceImage(tmp_path / "r.png", 1.5), ReferenceImage("https://x.test/a.png", -2.0)),
        webhook_url="https://hooks.test/secret-token",
    )
    rec = req.describe()
    assert (rec.prompt, rec.ratio, rec.width, rec.height, rec.seed) == ("a lighthouse", "2:3", 832, 1248, 9)
    assert rec.creativity == "low" and rec.output_format == "WEBP" and rec.model == spec.MODEL_ID
    assert rec.references[0] == ReferenceRecord(None, 1.5, str(tmp_path / "r.png"))
    assert rec.references[1] == ReferenceRecord("https://x.test/a.png", -2.0, "https://x.test/a.png")
    assert "secret-token" not in json.dumps(rec.to_json())  # endpoints can carry credentials


def test_json_round_trip_is_exact() -> None:
    rec = GenerationRecord(
        prompt='ünï 猫, "quoted"',
        ratio="16:9",
        width=1376,
        height=768,
        seed=2**63 - 1,
        creativity="high",
        output_format="PNG",
        references=(ReferenceRecord("u-1", -0.25, "moodboard.png"),),
        cost=0.0042,
        created_at="2025-01-02T03:04:05.678Z",
        extras={"newer_field": [1, {"a": None}]},
    )
    assert parse_record(json.loads(json.dumps(rec.to_json()))) == rec


def test_unknown_keys_are_kept_and_written_back() -> None:
    rec = parse_record({"prompt": "p", "a1111": {"Sampler": "Euler a"}, "steps": 28})
    assert rec.extras == {"a1111": {"Sampler": "Euler a"}, "steps": 28}
    assert rec.to_json()["a1111"] == {"Sampler": "Euler a"} and rec.to_json()["steps"] == 28


def test_one_form_for_the_wire_task_and_the_record() -> None:
    wire = {
        "taskType": "imageInference",
        "positivePrompt": "from the wire",
        "numberResults": 3,
        "outputFormat": "jpeg",
        "settings": {"creativity": "raw"},
        "safety": {"checkContent": True, "mode": "fast"},
        "inputs": {"referenceImages": [{"image": "u-2", "strength": 0.5}]},
        "width": 1024,
        "height": 1024,
        "webhookURL": "https://hooks.test/token",
    }
    rec = parse_record(wire)
    assert rec == GenerationRecord(
        prompt="from the wire",
        number_results=3,
        output_format="JPG",
        creativity="raw",
        check_content=True,
        safety_mode="fast",
        references=(ReferenceRecord("u-2", 0.5),),
        width=1024,
        height=1024,
    )
    assert rec.ratio == "1:1" and rec.extras == {}


def test_ratio_is_derived_from_the_size() -> None:
    assert GenerationRecord(width=1568, height=672).ratio == "2.35:1"
    assert GenerationRecord(width=1568, height=672, ratio="1:1").ratio == "2.35:1"  # the size wins
    assert GenerationRecord(width=512, height=768, ratio="2:3").ratio == "2:3"  # a custom size keeps its hint
    assert GenerationRecord(width=512, height=768, ratio="5:7").ratio is None
    assert derive_ratio(None, None, "9:16") == "9:16"
    assert GenerationRecord(ratio="1:1").replace(width=768, height=1376).ratio == "9:16"


def test_hostile_values_are_made_safe() -> None:
    rec = parse_record(
        {
            "prompt": "bad \ud800 text\x00",
            "created_at": "0001-01-01T00:00:00+05:00",
            "seed": 2**70,
            "width": -5,
            "height": "12",
            "cost": float("nan"),
            "creativity": ["high"],
            "nsfw": "yes",
            "references": [{"image": "x" * 10_000, "strength": True}, 7, "plain-uuid"],
            "\udcff": "key with a surrogate",
        }
    )
    assert rec.prompt == "bad \ufffd text"
    assert rec.created_at is None and rec.seed is None and rec.width is None and rec.height == 12
    assert rec.cost is None and rec.creativity is None and rec.nsfw is None
    assert rec.references[0].image is not None and rec.references[0].image.startswith("sha256:")
    assert rec.references[0].strength is None
    assert rec.references[1] == ReferenceRecord("plain-uuid")
    json.dumps(rec.to_json(), ensure_ascii=False).encode("utf-8")  # writable as UTF-8 text


def test_a_strength_outside_the_models_range_is_not_known() -> None:
    refs = [{"image": f"u-{i}", "strength": s} for i, s in enumerate((1e308, -2.5, 2.0, -2, 0.7, 2.0000001))]
    rec = parse_record({"prompt": "a fox", "references": refs})
    assert [r.strength for r in rec.references] == [None, None, 2.0, -2.0, 0.7, None]


def test_times_are_canonical_or_none() -> None:
    assert parse_time("2024-05-01T12:00:00Z") == "2024-05-01T12:00:00.000Z"
    assert parse_time("2024-05-01T14:00:00.5+02:00") == "2024-05-01T12:00:00.500Z"
    # Read alike on every Python (3.10's fromisoformat takes only 3 or 6 digits, and no comma)
    assert parse_time("2024-05-01T12:00:00,25Z") == "2024-05-01T12:00:00.250Z"
    assert parse_time("2024-05-01T12:00:00.1234567Z") == "2024-05-01T12:00:00.123Z"
    assert parse_time("9999-12-31T23:59:59-05:00") is None  # past year 9999 in UTC
    assert parse_time("yesterday") is None and parse_time(12) is None


def test_is_empty_and_has_prompt() -> None:
    assert GenerationRecord().is_empty and parse_record(None).is_empty and parse_record([1, 2]).is_empty
    assert not parse_record({"seed": 1}).is_empty
    assert not GenerationRecord(prompt="   ").has_prompt


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)
KEYS = st.sampled_from(
    [
        "prompt",
        "seed",
        "width",
        "height",
        "ratio",
        "references",
        "created_at",
        "cost",
        "settings",
        "inputs",
        "safety",
        "outputFormat",
        "nsfw",
        "index",
        "model",
        "extra",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS | st.text(max_size=8), JSONISH, max_size=12))
def test_parse_record_never_raises_and_round_trips(value: dict[str, Any]) -> None:
    rec = parse_record(value)
    text = json.dumps(rec.to_json(), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    assert parse_record(json.loads(text)) == rec
