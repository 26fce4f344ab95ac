"""The command line's options, as its parser reads them (no command is run)."""

from __future__ import annotations

import pytest

from krea_desktop.cli import build_parser


@pytest.mark.parametrize("typed", ["high", "HIGH", "High", " high "])
def test_creativity_is_read_in_any_case_by_generate_and_by_sweep_alike(typed: str) -> None:
    parser = build_parser()
    assert parser.parse_args(["generate", "a fox", "--creativity", typed]).creativity == "high"
    args = parser.parse_args(["sweep", "a fox", "--creativity", typed, "--vary", "seed=1,2"])
    assert args.creativity == "high"


def test_an_unknown_creativity_names_the_levels(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["generate", "a fox", "--creativity", "wild"])
    assert exit_.value.code == 2
    assert "must be one of raw, low, medium, high" in capsys.readouterr().err


def test_creativity_not_given_is_told_apart_from_one_given() -> None:
    # A sweep refuses --creativity beside a creativity axis, and must know it was given.
    parser = build_parser()
    assert parser.parse_args(["sweep", "a fox", "--vary", "creativity=raw,low"]).creativity is None
    assert parser.parse_args(["sweep", "a fox", "--creativity", "medium", "--vary", "seed=1"]).creativity == "medium"
