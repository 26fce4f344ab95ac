from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.api.errors import ValidationError
from krea_desktop.api.record import parse_record
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.ui.compose.prompt_panel import PromptPanel


@pytest.fixture
def panel(qtbot: QtBot) -> PromptPanel:
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_public_object_names(panel: PromptPanel) -> None:
    for name in ("promptEdit", "generateButton", "countSpin", "seedEdit", "creativityCombo", "formatCombo"):
        assert panel.findChild(object, name) is not None, name


def test_every_control_has_a_tooltip(panel: PromptPanel) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit

    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit)
    controls = [w for kind in kinds for w in panel.findChildren(kind)]
    missing = [
        w.objectName() or type(w).__name__
        for w in controls
        if not w.toolTip()
        # parts of other controls: a spin box's or combo's editor, a line edit's clear button
        and not (isinstance(w, QLineEdit) and isinstance(w.parent(), (QAbstractSpinBox, QComboBox)))
        and not isinstance(w.parent(), QLineEdit)
    ]
    assert missing == []


def test_generate_needs_a_prompt_of_the_right_length(panel: PromptPanel, qtbot: QtBot) -> None:
    assert not panel.generateButton.isEnabled()
    assert "at least 2" in panel.hintLabel.text()
    qtbot.keyClicks(panel.promptEdit, " a ")
    assert not panel.generateButton.isEnabled()
    with qtbot.waitSignal(panel.validityChanged) as signal:
        qtbot.keyClicks(panel.promptEdit, "b")
    assert signal.args == [True]
    assert panel.generateButton.isEnabled() and panel.canGenerate()
    panel.setPrompt("x" * (spec.PROMPT_MAX + 1))
    assert not panel.generateButton.isEnabled()
    assert "3,001" in panel.hintLabel.text()
    panel.setPrompt("x" * spec.PROMPT_MAX)
    assert panel.generateButton.isEnabled()
    with qtbot.waitSignal(panel.generateRequested):
        qtbot.mouseClick(panel.generateButton, Qt.MouseButton.LeftButton)


def test_bad_pass_through_url_disables_generate(panel: PromptPanel) -> None:
    panel.setPrompt("a lighthouse")
    panel.webhookEdit.setText("ftp://example.com/hook")
    assert not panel.generateButton.isEnabled() and "webhook" in panel.hintLabel.text()
    panel.webhookEdit.setText("https://example.com/hook")
    assert panel.generateButton.isEnabled()


def test_history_walks_with_alt_arrows(panel: PromptPanel, qtbot: QtBot) -> None:
    seen: list[None] = []
    panel.historyChanged.connect(lambda: seen.append(None))
    for text in ("first", "second", "third", "second"):
        panel.addToHistory(text)
    assert panel.history() == ["first", "third", "second"] and len(seen) == 4
    panel.setPrompt("my draft")
    alt = Qt.KeyboardModifier.AltModifier
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    assert panel.prompt() == "second"
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    assert panel.prompt() == "first"
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Down, alt)
    assert panel.prompt() == "third"
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Down, alt)
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Down, alt)
    assert panel.prompt() == "my draft"
    panel.setHistory(["a", "", "b", "a"])
    assert panel.history() == ["b", "a"]


def test_a_prompt_sent_from_the_history_leaves_the_draft_within_reach(panel: PromptPanel, qtbot: QtBot) -> None:
    panel.addToHistory("first prompt for history")
    panel.setPrompt("")
    qtbot.keyClicks(panel.promptEdit, "my long unsent draft")
    alt = Qt.KeyboardModifier.AltModifier
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    assert panel.prompt() == "first prompt for history"
    panel.addToHistory(panel.prompt())  # sent as it was, as Generate does
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Down, alt)
    assert panel.prompt() == "my long unsent draft"
    # And each step through the history is one edit that Ctrl+Z takes back.
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, alt)
    assert panel.prompt() == "first prompt for history"
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert panel.prompt() == "my long unsent draft"


def test_a_recalled_record_replaces_the_prompt_as_one_edit_ctrl_z_takes_back(panel: PromptPanel, qtbot: QtBot) -> None:
    qtbot.keyClicks(panel.promptEdit, "my careful new draft")
    record = parse_record({"prompt": "a lighthouse at dusk", "seed": 7})
    panel.apply_record(record)
    assert panel.prompt() == "a lighthouse at dusk" and panel.seed() == 7
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert panel.prompt() == "my careful new draft"
    # The state kept between sessions starts the prompt's undo history afresh.
    panel.apply_parameters({"prompt": "from the last session"})
    assert not panel.promptEdit.document().isUndoAvailable()


def test_creativity_help_follows_the_choice(panel: PromptPanel) -> None:
    assert panel.creativityCombo.currentData() == spec.DEFAULT_CREATIVITY
    for i, level in enumerate(spec.CREATIVITY_LEVELS):
        assert panel.creativityCombo.itemData(i, Qt.ItemDataRole.ToolTipRole) == spec.CREATIVITY_HELP[level]
        panel.creativityCombo.setCurrentIndex(i)
        assert panel.creativityHelp.text() == spec.CREATIVITY_HELP[level]


def test_seed_validator_and_buttons(panel: PromptPanel, qtbot: QtBot) -> None:
    validator = panel.seedEdit.validator()
    assert validator is not None
    acceptable = QValidator.State.Acceptable

    def state(text: str) -> QValidator.State:
        result = validator.validate(text, 0)
        return result[0] if isinstance(result, tuple) else result

    assert state("") == acceptable
    assert state("0") == acceptable
    assert state(str(spec.SEED_MAX)) == acceptable
    assert state(str(spec.SEED_MAX + 1)) == QValidator.State.Invalid
    assert state("-1") == QValidator.State.Invalid
    assert state("12a") == QValidator.State.Invalid
    # Over 4,300 digits Python refuses to read as a number: refused, not a crash.
    assert state("1" * 4301) == QValidator.State.Invalid
    assert state("0" * 5000 + "42") == acceptable
    panel.seedEdit.setText("77")
    panel.seedEdit.insert("9" * 5000)  # a paste
    assert panel.seedEdit.text() == "77" and panel.seed() == 77
    for pasted in ("1234\n", " 1234", "1234 ", "\t1234\r\n"):  # copied from a file, a terminal, a chat
        panel.seedEdit.clear()
        panel.seedEdit.insert(pasted)
        assert panel.seedEdit.text() == "1234" and panel.seed() == 1234, repr(pasted)
    panel.seedEdit.setText("1234")
    panel.seedEdit.setCursorPosition(0)
    qtbot.keyClick(panel.seedEdit, Qt.Key.Key_Space)  # a space typed before the digits: nothing moves
    assert panel.seedEdit.text() == "1234" and panel.seedEdit.cursorPosition() == 0
    panel.seedEdit.clear()
    qtbot.keyClicks(panel.seedEdit, "12x3")
    assert panel.seedEdit.text() == "123" and panel.seed() == 123
    panel.seedEdit.clear()
    assert panel.seed() is None
    assert not panel.reuseSeedButton.isEnabled()
    panel.setLastSeed(987654321)
    qtbot.mouseClick(panel.reuseSeedButton, Qt.MouseButton.LeftButton)
    assert panel.seed() == 987654321
    seeds = set()
    for _ in range(5):
        qtbot.mouseClick(panel.randomSeedButton, Qt.MouseButton.LeftButton)
        seed = panel.seed()
        assert seed is not None and 0 <= seed <= spec.RANDOM_SEED_MAX
        seeds.add(seed)
    assert len(seeds) > 1


def test_quality_only_for_lossy_formats(panel: PromptPanel) -> None:
    assert panel.formatCombo.currentData() == "PNG" and not panel.qualitySpin.isEnabled()
    for fmt, enabled in (("JPG", True), ("WEBP", True), ("PNG", False)):
        panel.formatCombo.setCurrentIndex(panel.formatCombo.findData(fmt))
        assert panel.qualitySpin.isEnabled() is enabled
    assert (panel.qualitySpin.minimum(), panel.qualitySpin.maximum()) == (20, 99)
    assert (panel.countSpin.minimum(), panel.countSpin.maximum()) == (1, 20)


def test_advanced_section_folds(panel: PromptPanel, qtbot: QtBot) -> None:
    assert not panel.advancedSection.isVisible()
    qtbot.mouseClick(panel.advancedToggle, Qt.MouseButton.LeftButton)
    assert panel.advancedSection.isVisible()
    assert panel.includeCostCheck.isChecked() and not panel.safetyCheck.isChecked()


def test_build_request_carries_every_setting(panel: PromptPanel) -> None:
    panel.setPrompt("  a red fox in snow \n")
    panel.countSpin.setValue(4)
    panel.setSeed(42)
    panel.creativityCombo.setCurrentIndex(panel.creativityCombo.findData("high"))
    panel.formatCombo.setCurrentIndex(panel.formatCombo.findData("WEBP"))
    panel.qualitySpin.setValue(80)
    panel.safetyCheck.setChecked(True)
    panel.includeCostCheck.setChecked(False)
    panel.deliveryCombo.setCurrentIndex(panel.deliveryCombo.findData("async"))
    panel.webhookEdit.setText("https://example.com/hook")
    refs = (ReferenceImage(Path("/tmp/a.png"), 0.7), ReferenceImage(Path("/tmp/b.png"), -1.25))
    request = panel.build_request("16:9", refs)
    expected = GenerationRequest(
        prompt="a red fox in snow",
        ratio="16:9",
        number_results=4,
        seed=42,
        creativity="high",
        references=refs,
        output_type="URL",  # each image downloaded once (see bench_delivery)
        output_format="WEBP",
        output_quality=80,
        delivery_method="async",
        check_content=True,
        include_cost=False,
        webhook_url="https://example.com/hook",
        task_uuid=request.task_uuid,
    )
    assert request == expected
    task = request.to_task([r.to_wire() for r in (ReferenceImage("uuid-a", 0.7), ReferenceImage("uuid-b", -1.25))])
    assert task["width"] == 1376 and task["settings"] == {"creativity": "high"}


def test_build_request_validates(panel: PromptPanel) -> None:
    panel.setPrompt("ok prompt")
    with pytest.raises(ValidationError):
        panel.build_request("5:4", ())


def test_apply_parameters_round_trip(panel: PromptPanel, qtbot: QtBot) -> None:
    other = PromptPanel()
    qtbot.addWidget(other)
    other.setPrompt("a cabin at dusk")
    other.countSpin.setValue(3)
    other.setSeed(2**40)
    other.formatCombo.setCurrentIndex(other.formatCombo.findData("JPG"))
    other.qualitySpin.setValue(70)
    other.creativityCombo.setCurrentIndex(0)
    record = other.build_request("4:5", ()).describe().replace(extras={"unknown_key": {"ignored": True}})
    panel.apply_record(record)
    assert panel.parameters() == other.parameters()
    assert panel.seed() == 2**40 and panel.formatCombo.currentData() == "JPG"


def test_apply_record_from_a_wire_task_ignores_bad_values(panel: PromptPanel) -> None:
    panel.setSeed(7)
    panel.apply_record(
        parse_record(
            {
                "positivePrompt": "from the wire",
                "numberResults": 99,
                "settings": {"creativity": "raw"},
                "outputFormat": "webp",
                "outputQuality": 5,
                "deliveryMethod": "carrier pigeon",
                "includeCost": False,
                "safety": {"checkContent": True},
            }
        )
    )
    assert panel.prompt() == "from the wire"
    assert panel.countSpin.value() == 1
    assert panel.creativityCombo.currentData() == "raw"
    assert panel.formatCombo.currentData() == "WEBP"
    assert panel.qualitySpin.value() == spec.DEFAULT_QUALITY
    assert panel.deliveryCombo.currentData() == "async"  # the default, left as it was
    assert not panel.includeCostCheck.isChecked() and panel.safetyCheck.isChecked()
    assert panel.seed() == 7  # not in the record: left alone
    panel.apply_record(parse_record({"creativity": "extreme", "seed_x": 1, "positivePrompt": "  "}))
    assert panel.seed() == 7 and panel.creativityCombo.currentData() == "raw"
    assert panel.prompt() == "from the wire"  # a record without a prompt never replaces it


def test_apply_parameters_restores_the_saved_state(panel: PromptPanel) -> None:
    panel.setSeed(7)
    panel.apply_parameters({"seed": None, "creativity": "extreme", "number_results": 4})
    assert panel.seed() is None and panel.countSpin.value() == 4
    assert panel.creativityCombo.currentData() == spec.DEFAULT_CREATIVITY
