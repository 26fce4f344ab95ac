"""The window an artist works in: ratio, prompt and references on the left, the gallery
and the job queue on the right."""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore
from PySide6.QtCore import QByteArray, QDeadlineTimer, QSettings, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeyEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop import APP_NAME, config
from krea_desktop.api import errors as E
from krea_desktop.api import spec
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.ui.window.banner import Banner, MessageToast
from krea_desktop.ui.window.columns import (
    ControlsContent,
    ControlsScroll,
    narrowed_width,
    opening_width,
    room_beside_gallery,
)
from krea_desktop.ui.window.menus import fill_menus
from krea_desktop.ui.window.opening import OpeningPlaceholder, first_size, saved_split_sizes
from krea_desktop.wording import counted, for_count, within

# The panels are imported in build(), not here: the window's frame is shown and painted
# before them (see MainWindow), and every import made before that first paint delays it.
# For the same reason the Qt namespace is reached as QtCore.Qt when used: the binding
# makes its hundreds of enums on first access (about 20 ms), which the frame does not need.
if TYPE_CHECKING:
    from PySide6.QtGui import QDragLeaveEvent

    from krea_desktop.api.client import RunwareClient  # made on the client thread
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.library.store import Library, LibraryEntry, ReconcileReport
    from krea_desktop.models.jobs import JobQueue
    from krea_desktop.models.references import Reference
    from krea_desktop.ui.sweep.controller import Sweeps
    from krea_desktop.ui.sweep.dialog import SweepDialog
    from krea_desktop.ui.sweep.sheet_view import ContactSheet
    from krea_desktop.ui.window.jobs_routing import JobRouting

log = logging.getLogger(__name__)

ClientFactory = Callable[[], "RunwareClient"]

GETTING_READY = "Getting ready: your images will be requested in a moment."


class _LibraryNews(QtCore.QObject):
    said = QtCore.Signal(str)  # a sentence about what the library keeps: it stays until read


class MainWindow(QMainWindow):
    """Built in two steps so that the window appears at once: the constructor makes the
    frame (title, saved geometry, the panels' background) with nothing but Qt imported;
    ``build()`` then imports and makes the panels, opens the gallery on the library and
    wires the client thread. ``create_main_window()`` does both at once; ``run_app``
    shows and paints the frame between them."""

    # The menus' actions that others reach (made by menus.fill_menus in build_rest()).
    settings_action: QAction
    paste_action: QAction
    generate_action: QAction
    cancel_action: QAction
    sweep_action: QAction
    recent_sweeps_menu: QMenu

    def __init__(self, *, data_dir: Path, settings: QSettings) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.data_dir = data_dir
        self.settings = settings
        self.options: config.SettingsStore = QtSettingsStore(settings)  # the typed view of settings
        self.panels_built = False  # build_panels() done: the prompt and the gallery are there
        self._rebuilding = False  # the library's index is being rebuilt from its folder
        self.rest_built = False  # build_rest() done too: the tray, the gallery's actions, the menus
        self._drag_wanted: bool | None = None  # whether the drag now over the window may be dropped
        self.built = False  # finish() done too: the client thread is made
        self._generate_waiting = False  # Generate was pressed before the client thread was made
        self._make_client_factory: Callable[[], tuple[ClientFactory, bool]] | None = None
        # Why the key store gave no key as the client was last made (a keyring that could
        # not be read, a key file that holds no key): set by that making, said after it.
        self.key_problems: list[str] = []
        self._test_key: Callable[[str, str], Any] | None = None
        self._early_keys: list[str] = []  # typed while the window was opening: for the prompt
        self._sweeps: Sweeps | None = None  # made on first use (it imports Pillow)
        geometry = self.options.get(config.WINDOW_GEOMETRY)
        if not geometry or not self.restoreGeometry(QByteArray(geometry)):
            self.resize(first_size(self.screen().availableGeometry().size()))
        self.setCentralWidget(OpeningPlaceholder(self._left_width(), self))

    def build(
        self,
        *,
        library: Library,
        client_factory: ClientFactory,
        demo: bool,
        make_client_factory: Callable[[], tuple[ClientFactory, bool]] | None = None,
        test_key: Callable[[str, str], Any] | None = None,
        endpoint: str = spec.DEFAULT_API_URL,
    ) -> None:
        """Make the panels on ``library`` and wire the client thread (not yet started):
        :meth:`build_panels` then :meth:`finish` at once."""
        self.build_panels(library=library, demo=demo, endpoint=endpoint)
        self.finish(
            client_factory=client_factory, demo=demo, make_client_factory=make_client_factory, test_key=test_key
        )

    def build_panels(
        self, *, library: Library, demo: bool, endpoint: str = spec.DEFAULT_API_URL, rest_later: bool = False
    ) -> None:
        """What the first interaction needs: every panel on ``library``, the gallery on its
        rows, the menus, and the prompt with the focus (and whatever was typed while the
        window opened). ``demo`` is the best guess until :meth:`finish` knows. Jobs
        can be composed but are sent once :meth:`finish` has made the client thread: a
        Generate before that waits for it (see :meth:`generate`).

        With ``rest_later``, only what is seen first is made (the ratios, the prompt, the
        gallery with its filter bar, the menu titles): :meth:`build_rest` makes the tray,
        the gallery's actions and the menus' items into the places kept for them, so
        nothing moves when they come."""
        if self.panels_built:
            raise RuntimeError("the main window is already built")
        self.library = library
        # A sentence from the library, said on whichever thread noticed (an index written
        # again): queued to this window's thread. A relay of its own, not a signal of the
        # window's: a signal on a class this size costs PySide 20 ms to set up at start.
        self._library_news = _LibraryNews(self)
        self._library_news.said.connect(lambda text: self.show_message(text, error=True))
        library.on_news = self._library_news.said.emit
        self.demo = demo
        self.endpoint = endpoint
        self._build()
        if rest_later:
            # Rows beside the first screen are read ahead once the window is ready: read
            # now, on a worker, they would take turns with the GUI thread's first paint.
            self.model.rows.hold()
        self._restore_state()
        self.update_demo_banner()
        if library.notice:
            self.show_message(library.notice, error=True)  # stays until read
        self._rebuilding = library.needs_rebuild  # by the check of the folder, on a worker
        self.panels_built = True
        self._focus_prompt()
        if not rest_later:
            self.build_rest()

    def build_rest(self) -> None:
        """The reference tray, the gallery's actions and toolbar, drops, and the menus'
        items: what :meth:`build_panels` left for later (``rest_later``)."""
        if not self.panels_built:
            raise RuntimeError("the main window's panels are not built yet")
        if self.rest_built:
            return
        try:
            self._build_rest()
            fill_menus(self)
            self.tray.restore_state()
            self.rest_built = True
        finally:
            self.model.rows.release()  # the gallery reads on, whatever else failed
        self._set_tab_order()

    def finish(
        self,
        *,
        client_factory: ClientFactory,
        demo: bool,
        make_client_factory: Callable[[], tuple[ClientFactory, bool]] | None = None,
        test_key: Callable[[str, str], Any] | None = None,
    ) -> None:
        """Wire the client thread (not yet started: :meth:`start`) and what waits on it,
        now that ``demo`` is known; a Generate pressed before this is sent now."""
        from krea_desktop.models.jobs import JobQueue
        from krea_desktop.ui.jobs.client_thread import ClientThread
        from krea_desktop.ui.jobs.job_list import JobList
        from krea_desktop.ui.window.jobs_routing import JobRouting

        if not self.panels_built:
            raise RuntimeError("the main window's panels are not built yet")
        if self.built:
            raise RuntimeError("the main window is already built")
        self.build_rest()
        self._make_client_factory = make_client_factory
        self._test_key = test_key
        # Every view of a job subscribes to the queue; the client thread reports into it.
        self.jobs: JobQueue = JobQueue()
        self.job_list = JobList(self.jobs, self)
        self.job_list.setMinimumHeight(96)  # a whole job row, status line included
        self.right_split.replaceWidget(1, self.job_list)  # in the place kept for it, at its size
        self._job_list_place.deleteLater()
        self.client_thread = ClientThread(client_factory, self.library)
        self.job_routing: JobRouting = JobRouting(
            jobs=self.jobs,
            client_thread=self.client_thread,
            cancel_button=self.cancel_button,
            sweep_runs=lambda: self._sweeps.runs if self._sweeps is not None else [],
            model=self.model,
            prompt_panel=self.prompt_panel,
            show_message=self.show_message,
            show_service_message=self.show_service_message,
            status=self.statusBar().showMessage,
            open_settings=self.open_settings,
            show_all=self.filter_bar.clear,
            withdraw_message=self.message_banner.withdraw,
            drop_action=self.message_banner.drop_action,
            acted_with_focus=lambda: self.message_banner.acted_with_focus,
            focus_newest_job=self.job_list.focus_newest,
            reference_label=lambda path: self.tray.model.label_of(path.stem),
        )
        # The counts in the status bar and over the gallery, and the estimate, follow the jobs too.
        self.jobs.image.connect(lambda _job, _entry, _thumbnail: self._update_counts())
        self.jobs.cost_changed.connect(lambda _total: self._update_counts())
        self.jobs.cost_changed.connect(lambda _total: self.update_cost_estimate())
        self.client_thread.jobStarted.connect(self._job_started)
        self.client_thread.jobStatus.connect(self.jobs.set_status)
        self.client_thread.imageReady.connect(self.jobs.image_saved)
        self.client_thread.imagesHeld.connect(self.jobs.images_held)
        self.client_thread.collecting.connect(self.jobs.collecting)
        self.client_thread.jobFinished.connect(lambda job_id, _received: self.jobs.finished(job_id))
        self.client_thread.jobFailed.connect(self.jobs.failed)
        self.client_thread.jobKept.connect(self.jobs.kept_for_later)
        self.client_thread.jobCancelled.connect(lambda job_id, _received: self.jobs.cancelled(job_id))
        self._held_said: str | None = None  # what was last said of images waiting to be saved
        self.client_thread.saveProblem.connect(self._save_problem)
        self.client_thread.collectProblem.connect(lambda text: self.show_message(text, error=True))
        self.client_thread.sheetRedrawn.connect(self._sheet_saved)  # a sweep cut off, its late cells collected
        self.client_thread.thumbnail_side = lambda: self.model.loader.display_side
        self.job_list.cancelRequested.connect(self.job_routing.cancel_row)
        self.job_list.retryRequested.connect(self.job_routing.try_again)
        self.built = True
        self._set_demo(demo)
        self._set_tab_order()
        if self._generate_waiting:
            self._generate_waiting = False
            if self.message_banner.label.text() == GETTING_READY:
                self.message_banner.hide()
            self.generate()
        # What exists now lives as long as the window: the cyclic collector need not walk it
        # again on every full collection (a pause of tens of ms in the middle of scrolling).
        gc.freeze()

    # --- construction ------------------------------------------------------------------

    def _build(self) -> None:
        from PySide6.QtWidgets import QStyle, QToolBar

        from krea_desktop.ui.compose.prompt_panel import PromptPanel
        from krea_desktop.ui.compose.ratio_bar import RatioBar
        from krea_desktop.ui.gallery.filter_bar import GalleryFilterBar
        from krea_desktop.ui.gallery.model import GalleryModel
        from krea_desktop.ui.gallery.view import GalleryView
        from krea_desktop.ui.theme import set_role

        # The loop in one column without scrolling at 1366x768: ratios in one row, the
        # prompt, what changes the picture, Generate, and the whole tray with its sliders.
        self.ratio_bar = RatioBar(self, columns=len(spec.ASPECT_RATIOS), compact=True)
        self.prompt_panel = PromptPanel(self)
        self.prompt_panel.generateRequested.connect(self.generate)
        # What is being composed is kept a second after it last changed, not only when the
        # window closes: a crash or a killed app loses neither the prompt nor the ratio.
        self._said_unsaved = False  # that the settings file could not be written
        self._service_words: set[str] = set()  # messages about the key, its store or the service
        self._composer_timer = QTimer(self)
        self._composer_timer.setSingleShot(True)
        self._composer_timer.setInterval(1000)
        self._composer_timer.timeout.connect(self._save_composer)
        self.prompt_panel.promptEdit.textChanged.connect(self._composer_timer.start)
        self.prompt_panel.historyChanged.connect(self._composer_timer.start)
        self.prompt_panel.parametersChanged.connect(self._composer_timer.start)
        self.ratio_bar.ratioChanged.connect(self._composer_timer.start)
        self.prompt_panel.promptEdit.setMinimumHeight(self.prompt_panel.promptEdit.fontMetrics().lineSpacing() * 3 + 12)
        self.prompt_panel.promptEdit.setMaximumHeight(140)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Cancel the newest running job (Esc); images already received are kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_newest)

        self.prompt_panel.actionRow.insertWidget(1, self.cancel_button)
        # What the batch as composed will cost, from what the service last reported.
        self.cost_estimate = QLabel(self)
        self.cost_estimate.setObjectName("costEstimate")
        set_role(self.cost_estimate, "hint")
        self.prompt_panel.estimateRow.addWidget(self.cost_estimate)
        # Its line is kept while it is hidden: when the first cost comes, after the first
        # batch, nothing below it moves, nor does the column gain a scroll bar then.
        self.cost_estimate.ensurePolished()  # its role's font
        self.cost_estimate.setMinimumHeight(self.cost_estimate.fontMetrics().lineSpacing())
        policy = self.cost_estimate.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.cost_estimate.setSizePolicy(policy)
        self.cost_estimate.hide()  # until there is an estimate (update_cost_estimate)
        self.prompt_panel.countSpin.valueChanged.connect(lambda _n: self.update_cost_estimate())
        self.ratio_bar.ratioChanged.connect(lambda _r: self.update_cost_estimate())

        controls = ControlsContent(self)
        controls.setObjectName("controls")
        left = QVBoxLayout(controls)
        left.setContentsMargins(10, 8, 10, 8)
        left.setSpacing(6)
        self.ratio_heading = _heading("Aspect ratio")
        left.addWidget(self.ratio_heading)
        left.addWidget(self.ratio_bar)
        left.addWidget(self.prompt_panel)
        # The tray's heading row holds its count and Add button (from build_rest()), so the
        # cards have the column's whole width; it is a button's height from the start.
        references_heading = QWidget(controls)
        self._references_row = QHBoxLayout(references_heading)
        self._references_row.setContentsMargins(0, 0, 0, 0)
        self._references_row.addWidget(_heading("References"))
        self._references_row.addStretch(1)
        probe = QToolButton()
        probe.setText("Add…")
        references_heading.setMinimumHeight(probe.sizeHint().height())
        left.addWidget(references_heading)
        # The tray comes with build_rest(), below everything else: nothing above it moves.
        self._controls_layout = left
        self._tray_place = QWidget(controls)
        left.addWidget(self._tray_place)
        left.addStretch(1)  # spare height goes below, not into stretched cards
        self.ratio_bar.ratioChanged.connect(self._show_ratio_size)
        scroll = ControlsScroll(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(controls)

        self.model = GalleryModel(self.library, parent=self)
        self.model.unanswered.connect(self._unanswered)
        self.gallery = GalleryView(self)
        self.gallery.setModel(self.model)
        self.filter_bar = GalleryFilterBar(self)
        self._connect_filter_bar()
        # The gallery's toolbar, filled by build_rest(); until then a blank button of a real
        # one's height holds its place, so the gallery does not move when the actions come.
        bar = QToolBar("Gallery", self)
        bar.setObjectName("galleryToolbar")
        bar.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        side = bar.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize, None, bar)
        bar.setIconSize(QtCore.QSize(side, side))
        blank = QPixmap(side, side)
        blank.fill(QtCore.Qt.GlobalColor.transparent)
        self._toolbar_place = QAction(QIcon(blank), " ", bar)
        self._toolbar_place.setEnabled(False)
        bar.addAction(self._toolbar_place)
        self.gallery_toolbar = bar
        gallery_panel = QWidget(self)
        gallery_panel.setObjectName("galleryPanel")
        gallery_lay = QVBoxLayout(gallery_panel)
        gallery_lay.setContentsMargins(0, 0, 0, 0)
        gallery_lay.setSpacing(0)
        gallery_lay.addWidget(self.filter_bar)
        gallery_lay.addWidget(self.gallery_toolbar)
        gallery_lay.addWidget(self.gallery, 1)
        # The job list is made with the client thread (finish()); its place is kept.
        self._job_list_place = QWidget(self)
        self._job_list_place.setMinimumHeight(96)

        self.right_split = QSplitter(QtCore.Qt.Orientation.Vertical, self)
        self.right_split.setObjectName("rightSplitter")
        self.right_split.addWidget(gallery_panel)
        self.right_split.addWidget(self._job_list_place)
        self.right_split.setStretchFactor(0, 4)
        self.right_split.setStretchFactor(1, 1)

        self.split = QSplitter(QtCore.Qt.Orientation.Horizontal, self)
        self.split.setObjectName("mainSplitter")
        self.split.addWidget(scroll)
        self.split.addWidget(self.right_split)
        # A wider window widens the controls a little too (a quarter of what it gains), so
        # that at 1920 px the tray holds four references to a row; the gallery takes the rest.
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 3)
        # Sizes that fill the window as it is: the left column then opens exactly where the
        # opening placeholder drew it, whatever the stretch.
        left_width = self._left_width()
        gallery_width = max(1, self.width() - left_width - self.split.handleWidth())
        self.split.setSizes([left_width, gallery_width])
        self._left_seen = left_width  # the column's width before the window's latest resize
        self.split.splitterMoved.connect(lambda pos, _index: setattr(self, "_left_seen", pos))

        self.demo_banner = Banner("demoBanner", self)
        self.demo_banner.close_button.setVisible(False)
        # Messages float over the gallery: they never push the layout around.
        self.message_banner = MessageToast(gallery_panel)

        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.demo_banner)
        outer.addWidget(self.split, 1)
        self.setCentralWidget(central)
        self._show_ratio_size(self.ratio_bar.ratio())

        # The menus' titles now (the bar's height is the window's), their items with build_rest().
        menu = self.menuBar()
        self.menus: dict[str, QMenu] = {  # by name: filled by fill_menus() in build_rest()
            name: menu.addMenu(title)
            for name, title in (
                ("file", "&File"),
                ("edit", "&Edit"),
                ("gallery", "G&allery"),
                ("generate", "&Generate"),
            )
        }

        self.cost_label = QLabel(self)
        self.cost_label.setObjectName("costLabel")
        self.cost_label.setToolTip("Cost reported by the service for this session")
        self.statusBar().addPermanentWidget(self.cost_label)
        self.count_label = QLabel(self)
        self.count_label.setToolTip("Images in your library")
        self.statusBar().addPermanentWidget(self.count_label)
        self._update_counts()
        self.setAcceptDrops(True)  # image files dropped outside the tray: restore their parameters

    def _build_rest(self) -> None:
        from krea_desktop.library.lineage import parent_of
        from krea_desktop.ui.gallery.actions import GalleryActions
        from krea_desktop.ui.gallery.drops import FileDrops
        from krea_desktop.ui.gallery.recall import Recall
        from krea_desktop.ui.references.tray import ReferenceTray

        library = self.library
        self.tray = ReferenceTray(
            self.data_dir / "references",
            resolve_library_ids=self._paths_for_ids,
            find_parent=lambda loaded, path: parent_of(library, loaded, path),
            parent=self,
        )
        self.tray.sweepRequested.connect(lambda index: self.open_sweep(f"ref{index + 1}"))
        self.tray.message.connect(lambda text: self.show_message(text, error=True))
        self._removed: list[tuple[int, Reference]] = []  # references removed while their sentence is up
        self._removed_said: str | None = None
        self.tray.removed.connect(self._reference_removed)
        # Into the place kept for it (replaceWidget would hand its layout item to Python).
        self._controls_layout.insertWidget(self._controls_layout.indexOf(self._tray_place), self.tray)
        self._tray_place.hide()
        self._tray_place.deleteLater()
        self.tray.place_controls(self._references_row)
        column = self.split.widget(0)
        if isinstance(column, QScrollArea):
            self.tray.fit_within(column)

        # Putting an image's parameters back into the controls, from the gallery or from files.
        self.recall = Recall(
            prompt_panel=self.prompt_panel,
            ratio_bar=self.ratio_bar,
            tray=self.tray,
            show_message=self.show_message,
            references_dir=self.data_dir / "references",
        )
        self.file_drops = FileDrops(
            recall=self.recall, tray=self.tray, show_message=self.show_message, parent_widget=self
        )
        self.gallery_actions = GalleryActions(
            view=self.gallery,
            model=self.model,
            library=self.library,
            recall=self.recall,
            filter_bar=self.filter_bar,
            settings=self.settings,
            show_message=self.show_message,
            parent_widget=self,
            withdraw_message=self.message_banner.withdraw,
        )
        self.gallery_actions.countsChanged.connect(self._update_counts)
        self.gallery_actions.sheetRequested.connect(self.open_sheet)
        self.gallery_actions.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.gallery_actions.fill_toolbar(self.gallery_toolbar)
        self.gallery_toolbar.removeAction(self._toolbar_place)

    def _set_tab_order(self) -> None:
        """Tab follows what the eye does: the ratios, the prompt and its settings,
        Generate, the references, then the gallery's filters and the gallery."""
        panel = self.prompt_panel
        chain: list[QWidget] = [
            *self.ratio_bar.buttons(),
            panel.promptEdit,
            panel.creativityCombo,
            panel.countSpin,
            panel.seedEdit,
            panel.reuseSeedButton,
            panel.randomSeedButton,
            panel.advancedToggle,
            panel.formatCombo,
            panel.qualitySpin,
            panel.safetyCheck,
            panel.includeCostCheck,
            panel.deliveryCombo,
            panel.webhookEdit,
            panel.uploadEndpointEdit,
            self.cancel_button,
            panel.generateButton,
            self.tray.addButton,
            self.filter_bar.search,
            self.filter_bar.favourites,
            self.filter_bar.ratio,
            self.filter_bar.size_slider,
            self.gallery,
        ]
        if self.built:
            chain.append(self.job_list)
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)
        self.tray.set_tab_successor(self.filter_bar.search)  # the cards, between Add and the filters

    def _focus_prompt(self) -> None:
        """The prompt has the focus at start, with whatever was typed while the window
        was opening."""
        edit = self.prompt_panel.promptEdit
        edit.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
        if self._early_keys:
            cursor = edit.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            edit.setTextCursor(cursor)
            edit.insertPlainText("".join(self._early_keys))
            self._early_keys.clear()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.panels_built:  # the frame is up but the prompt is not made yet: keep the keys
            text = event.text()
            if event.key() == QtCore.Qt.Key.Key_Backspace:
                if self._early_keys:
                    self._early_keys.pop()
                event.accept()
                return
            if text and text.isprintable():
                self._early_keys.append(text)
                event.accept()
                return
        super().keyPressEvent(event)

    def _connect_filter_bar(self) -> None:
        """The filter bar narrows the gallery's rows; its size slider and the gallery's
        Ctrl+wheel set the thumbnail size together, kept in the settings."""
        view, bar = self.gallery, self.filter_bar
        view.thumbSideChanged.connect(self._thumb_side_changed)
        bar.thumbSideChanged.connect(view.setThumbSide)
        bar.filtersChanged.connect(self._apply_filters)
        side = self.options.get(config.THUMB_SIDE)
        if side is not None:
            view.setThumbSide(side)
        bar.set_thumb_side(view.thumb_side)

    def _unanswered(self, text: str) -> None:
        """The index could not say which rows a filter leaves (it is damaged): said, and
        the filter bar's controls back to the filters the gallery shows."""
        self.show_message(text, error=True)
        self.filter_bar.take_back(self.model.filters)

    def _apply_filters(self, filters: dict[str, Any]) -> None:
        self.model.refresh(**filters)
        self.filter_bar.set_counts(self.model.rowCount(), self.library.count())

    def _thumb_side_changed(self, side: int) -> None:
        self.filter_bar.set_thumb_side(side)
        self.options.set(config.THUMB_SIDE, side)

    # --- state ---------------------------------------------------------------------------

    def _left_width(self) -> int:
        """The controls column's width as the window opens (:func:`opening_width`)."""
        return opening_width(self.width(), saved_split_sizes(self.options))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if not self.panels_built:
            return
        left = self.split.sizes()[0]
        lost = event.oldSize().width() - event.size().width()
        handle = self.split.handleWidth()
        width = self.split.width() - handle
        if event.oldSize().width() > 0 and lost > 0 and left > room_beside_gallery(width):
            target = narrowed_width(self._left_seen or left, lost, width)
            if target < left:
                self.split.setSizes([target, width - target])
        self._left_seen = self.split.sizes()[0]

    def _restore_state(self) -> None:
        options = self.options
        # The main splitter's own restoreState would scale the columns by the width of the
        # window they were saved in: a 460 px column saved in an 800 px window became
        # 1,100 px in a 1920 px one.
        left = self._left_width()
        self.split.setSizes([left, max(1, self.width() - left - self.split.handleWidth())])
        self._left_seen = left
        state = options.get(config.RIGHT_SPLITTER)
        if state:
            self.right_split.restoreState(QByteArray(state))
        self.ratio_bar.setRatio(options.get(config.RATIO))
        self.prompt_panel.setHistory(options.get(config.PROMPT_HISTORY))
        params = options.get(config.PARAMETERS)
        if params:
            self.prompt_panel.apply_parameters(params)
        self._composer_timer.stop()  # what was just read back needs no writing

    def save_state(self) -> None:
        if not self.panels_built:
            return
        options = self.options
        options.set(config.WINDOW_GEOMETRY, bytes(self.saveGeometry().data()))
        options.set(config.MAIN_SPLITTER, bytes(self.split.saveState().data()))
        options.set(config.RIGHT_SPLITTER, bytes(self.right_split.saveState().data()))
        self._save_composer()
        if self.rest_built:
            self.tray.save_state()

    def _save_composer(self) -> None:
        """Keep the ratio, the prompt and its history, and the panel's choices."""
        self._composer_timer.stop()
        options = self.options
        options.set(config.RATIO, self.ratio_bar.ratio())
        options.set(config.PROMPT_HISTORY, self.prompt_panel.history())
        options.set(config.PARAMETERS, self.prompt_panel.kept_parameters())
        if not options.sync() and not self._said_unsaved:
            self._said_unsaved = True  # once: it is tried again a second after each change
            where = self.settings.fileName()
            log.warning("the settings could not be written to %s", where)
            self.show_message(
                f"Your prompt and settings could not be saved in {where}; check that its folder is "
                "writable and the disk not full.",
                error=True,
            )

    # --- generating -----------------------------------------------------------------------

    def generate(self) -> int | None:
        """Queue a job from the controls; returns its id (None if the controls are not ready,
        or if the window is still getting ready: the job is then queued once it is)."""
        problem = self.prompt_panel.problem()
        if problem:
            self.show_message(problem)
            return None
        if not self.built:
            self._generate_waiting = True
            self.show_message(GETTING_READY)
            return None
        request = self._composed_request()
        if request is None:
            return None
        self.prompt_panel.addToHistory(request.prompt)
        job_id = self.client_thread.submit(request)
        self.jobs.add(job_id, request)
        self.statusBar().showMessage(f"Job {job_id} queued: {counted(request.number_results, 'image')}.", 4000)
        return job_id

    def _composed_request(self) -> GenerationRequest | None:
        """The request the controls compose, or None (said in one sentence) while a
        reference is loading or a value is refused."""
        if self.tray.isBusy():
            host = self.tray.downloading_from()
            if host is not None:
                self.show_message(f"A reference is still downloading from {host}; try again once it is in the tray.")
            else:
                self.show_message("A reference is still loading; try again in a moment.")
            return None
        missing = self.tray.missing_copy()
        if missing is not None:
            self.show_message(missing, error=True)
            return None
        try:
            return self.prompt_panel.build_request(self.ratio_bar.ratio(), self.tray.references())
        except E.KreaError as err:
            self.show_message(str(err))
            return None

    # --- sweeps and cost ---------------------------------------------------------------------

    def unit_cost(self, width: int, height: int) -> tuple[float | None, bool]:
        """The cost of one image of this size as the service last reported it, and whether
        it is the simulator's (in demo mode, from its images alone; with a key, never
        from theirs)."""
        try:
            return self.library.last_cost(width, height, simulated=self.demo), self.demo
        except Exception:  # a busy or damaged index: the estimate is only left out
            return None, self.demo

    def update_cost_estimate(self) -> None:
        if not self.built:  # finish() shows it, once the window is ready
            return
        from krea_desktop.models.sweep import estimate_batch
        from krea_desktop.ui.money import format_cost

        count = self.prompt_panel.countSpin.value()
        ratio = spec.RATIOS_BY_NAME[self.ratio_bar.ratio()]
        width, height = ratio.width, ratio.height
        unit, simulated = self.unit_cost(width, height)
        estimate = estimate_batch(count, unit)
        # Hidden while it has nothing to say (its line kept).
        self.cost_estimate.setVisible(estimate is not None)
        if estimate is None:
            self.cost_estimate.setText("")
            self.cost_estimate.setToolTip("The cost is shown once the service has reported one")
            return
        self.cost_estimate.setText(f"≈ {format_cost(estimate, simulated)}")
        self.cost_estimate.setToolTip(
            f"Estimated cost of {counted(count, 'image')}, from the cost the service last reported"
        )

    def open_sweep(self, first_axis: str | None = None) -> SweepDialog | None:
        """Plan a sweep of the request as composed; nothing is sent until it is confirmed."""
        problem = self.prompt_panel.problem()
        if problem:
            self.show_message(problem)
            return None
        if not self.built:
            self.show_message("Getting ready: try again in a moment.")
            return None
        base = self._composed_request()
        return None if base is None else self.sweeps.plan(base, first_axis)

    @property
    def sweeps(self) -> Sweeps:
        """The window's sweeps: the plan being made, the contact sheets, the runs."""
        if self._sweeps is None:
            from krea_desktop.ui.sweep.controller import Sweeps

            self._sweeps = Sweeps(self)
            self._sweeps.sheetSaved.connect(self._sheet_saved)
        return self._sweeps

    def open_sheet(self, sweep_id: str) -> ContactSheet | None:
        """Open a saved sweep's contact sheet from the library."""
        return self.sweeps.open_sheet(sweep_id)

    def _sheet_saved(self, entry: LibraryEntry) -> None:
        self.model.add_entry(entry)
        self._update_counts()

    # --- jobs (JobRouting, made by finish()) ---------------------------------------------------

    def cancel_newest(self) -> None:
        """Cancel and Esc: the newest job sent from the controls, else the newest sweep."""
        if self.built:
            self.job_routing.cancel_newest()

    def cancel_job(self, job_id: int) -> None:
        """Cancel ``job_id``, keeping the images it already holds."""
        self.job_routing.cancel_job(job_id)

    def cancel_all_jobs(self) -> None:
        """Generate > Cancel all jobs: every job sent from the controls, and every sweep as a whole."""
        self.job_routing.cancel_all_jobs()

    def update_cancel_button(self) -> None:
        """Cancel works while a job runs, or a sweep sends."""
        self.job_routing.update_cancel_button()

    # --- messages, settings ------------------------------------------------------------------

    def show_message(
        self, text: str, action: str | None = None, slot: Callable[[], None] | None = None, *, error: bool = False
    ) -> None:
        """Say something in one sentence, over the gallery: information fades by itself;
        an error, or a message with an action, stays until dealt with. Not in the status
        bar as well: one sentence is read once, where it floats."""
        self.message_banner.show_message(text, action, slot, error=error)

    def _reference_removed(self, index: int, reference: Reference) -> None:
        """A reference taken out with its card's ✕: said, with Undo to bring it back with
        its strength, at its place. Those removed one after another while the sentence is
        up are said together, and one Undo brings them all back (each new sentence took
        the Undo of the one before)."""
        from krea_desktop.wording import counted, short_reference_name

        banner = self.message_banner
        if not (banner.isVisible() and banner.label.text() == self._removed_said):
            self._removed = []
        self._removed.append((index, reference))
        removed = list(self._removed)
        name = short_reference_name(reference.source or reference.path.name)
        more = f" and {counted(len(removed) - 1, 'other')}" if len(removed) > 1 else ""
        self._removed_said = f"Removed “{name}”{more} from the references."
        self.show_message(self._removed_said, "Undo", lambda: self._put_references_back(removed))

    def _put_references_back(self, removed: list[tuple[int, Reference]]) -> None:
        """Undo of removals: the last removed first, each at its place, so that all stand
        where they stood; those the tray has no room for now are said in one sentence."""
        from krea_desktop.ui.references.tray import not_put_back

        self._removed, self._removed_said = [], None
        refused = [ref for index, ref in reversed(removed) if not self.tray.put_back(index, ref, say=False)]
        if refused:
            self.show_message(not_put_back(refused[::-1]))

    def _show_ratio_size(self, name: str) -> None:
        ratio = spec.RATIOS_BY_NAME[name]
        self.ratio_heading.setText(f"Aspect ratio  ·  {ratio.width} × {ratio.height}")

    def update_demo_banner(self) -> None:
        if self.demo:
            self.demo_banner.show_message(
                "Demo mode: images come from the built-in simulator and are marked SIMULATED; "
                "add your Runware API key to generate with Krea 2 Medium.",
                "Add API key…",
                self.open_settings,
            )
        else:
            self.demo_banner.hide()
        self.setWindowTitle(window_title(self.demo))

    def open_settings(self) -> None:
        from krea_desktop.ui.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(data_dir=self.data_dir, test_key=self._test_key, endpoint=self.endpoint, parent=self)
        dialog.keyChanged.connect(lambda stored: self._credentials_changed(key_stored=stored, key_changed=True))
        dialog.endpointChanged.connect(self._endpoint_changed)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.settings_dialog = dialog

    def _endpoint_changed(self, url: str) -> None:
        from krea_desktop.ui.app import api_endpoint

        self.options.set(config.API_ENDPOINT, url)
        before, self.endpoint = self.endpoint, api_endpoint(self.settings)  # RUNWARE_API_URL, when set, still wins
        self._credentials_changed(endpoint_changed=self.endpoint != before)

    def _set_demo(self, demo: bool) -> None:
        """Demo mode or not, now known: the banner and title, every cost's "(simulated)",
        the estimate (from the simulator's costs or the service's), and the hint for the
        next start."""
        self.demo = demo
        self.update_demo_banner()
        self._update_counts()
        self.update_cost_estimate()
        remember_demo(self.settings, demo)

    def key_answered(self, answer: tuple[str | None, str | None]) -> None:
        """The key store's answer (the key, or none and why), come after the window went on
        without it: a keyring slow to answer (:mod:`credentials`)."""
        from krea_desktop.ui.window.credentials import KEYRING_SLOW

        key, problem = answer
        self.message_banner.withdraw(KEYRING_SLOW)
        self._set_demo(not key)
        if problem:
            self.show_service_message(problem, error=True)

    def reread_key(self) -> None:
        """Look the key up again (a keyring that answered after the window stopped waiting)."""
        if self.built and self.isVisible():
            self._credentials_changed()

    def _credentials_changed(
        self, *, key_stored: bool = False, key_changed: bool = False, endpoint_changed: bool = False
    ) -> None:
        """A key or a service address may have changed: the key looked up again and the
        client made anew. ``key_stored``: a key was just stored; ``key_changed``: Settings
        stored or removed one (it is the one in use unless the environment sets another);
        ``endpoint_changed``: the address in use is another."""
        if self._make_client_factory is None or not self.built:  # finish() reads the key afresh
            return
        factory, demo = self._make_client_factory()
        self.client_thread.replace_client(factory)
        from krea_desktop.user_words import IN_THE_ENVIRONMENT, where_the_key_is

        if endpoint_changed or (key_changed and where_the_key_is() != IN_THE_ENVIRONMENT):
            # A job sent before fails of the key or address it was sent with, if it fails.
            self.job_routing.credentials_changed_at = time.monotonic()
        self._withdraw_service_messages()
        self._set_demo(demo)
        for problem in self.key_problems:  # still so: said again, not left to the demo banner
            self.show_service_message(problem, error=True)
        from krea_desktop import keystore

        if key_stored and keystore.key_file(self.data_dir).exists():  # a stat: the keyring is not asked again
            # In plain text (readable by this user alone): said each time a key goes there,
            # the keyring having refused it or there being none.
            self.show_service_message(keystore.backend_description(self.data_dir), error=True)

    def show_service_message(
        self, text: str, action: str | None = None, slot: Callable[[], None] | None = None, *, error: bool = False
    ) -> None:
        """A message about the API key, the key store or the service as they reach it,
        withdrawn once the key or the service's address changes."""
        self._service_words.add(text)
        self.show_message(text, action, slot, error=error)

    def _withdraw_service_messages(self) -> None:
        """A new key or service address: what was said of the old one no longer holds (a
        key refused, credits run out, a service out of reach), and goes, shown or waiting.
        Every other message stays (a file that could not be read, an Undo)."""
        said, self._service_words = self._service_words, set()
        for text in said:
            self.message_banner.withdraw(text)

    # --- library helpers ---------------------------------------------------------------------

    def _paths_for_ids(self, ids: list[int]) -> list[Path]:
        found = self.library.get_many(ids)
        return [found[i].path for i in ids if i in found and found[i].path.exists()]

    def _update_counts(self) -> None:
        images = self.library.count()
        self.count_label.setText(counted(images, "image"))
        if self.panels_built:  # "N of M" over the gallery, while a filter is on
            self.filter_bar.set_counts(self.model.rowCount(), images)
        from krea_desktop.ui.money import format_cost

        # In demo mode the simulator makes the costs up: every amount shown says so.
        self.gallery.costs_simulated = self.demo
        paid = made_up = 0.0  # no job before the job list is made
        if self.built:
            self.job_list.costs_simulated = self.demo
            paid, made_up = self.jobs.session_cost, self.jobs.session_cost_simulated
        # The total of the mode the window is in; the other one, if any, in the tooltip.
        total, other = (made_up, paid) if self.demo else (paid, made_up)
        self.cost_label.setVisible(total > 0)
        self.cost_label.setText(f"Session cost {format_cost(total, self.demo)}")
        if self.demo:
            tip = "Cost made up by the built-in simulator for this session"
            besides = f"{format_cost(other)} charged by the service"
        else:
            tip = "Cost reported by the service for this session"
            besides = f"{format_cost(other, True)} in demo mode"
        if other > 0:
            tip += f"; besides it, {besides}"
        self.cost_label.setToolTip(tip)

    # --- drops on the window ---------------------------------------------------------------------

    def _wants_drop(self, event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> bool:
        if not self.rest_built:
            return False
        from krea_desktop.ui.mime import LIBRARY_IDS_MIME
        from krea_desktop.ui.references.card import REFERENCE_MIME

        mime = event.mimeData()
        # A gallery image, or a reference card let go beside the tray: nothing to offer.
        if mime.hasFormat(LIBRARY_IDS_MIME) or mime.hasFormat(REFERENCE_MIME):
            return False
        if mime.hasUrls() or mime.hasImage():
            return True
        # What the prompt leaves to the window: an image file's path or address as text,
        # image bytes, a web page's <img>, when it names an image that can be taken.
        from krea_desktop.ui.references.sources import images_without_text, sources_from_mime

        return images_without_text(mime) and bool(sources_from_mime(mime))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        # Decided once a drag comes in, not at each move: text may name files to look at.
        self._drag_wanted = self._wants_drop(event)
        if self._drag_wanted:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        wanted = self._drag_wanted if self._drag_wanted is not None else self._wants_drop(event)
        if wanted:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._drag_wanted = None
        super().dragLeaveEvent(event)

    def open_images(self, paths: list[Path]) -> None:
        """Image files given to the app (on its command line): as if dropped on the window."""
        said = "None of the given files is an image the app can read."
        if not self.file_drops.offer_files(paths, show=True, otherwise=lambda: self.show_message(said)):
            self.show_message(said)

    def dropEvent(self, event: QDropEvent) -> None:
        self._drag_wanted = None
        if self._wants_drop(event) and self.file_drops.handle_drop(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    # --- lifecycle -------------------------------------------------------------------------------

    def _job_started(self, job_id: int, request: GenerationRequest) -> None:
        if self.jobs.get(job_id) is None:  # a job the client thread began itself (collecting)
            self.jobs.add(job_id, request, collected=True)
        self.jobs.started(job_id)

    def _save_problem(self, text: str) -> None:
        """Images the library cannot take yet (a full disk): said while they wait, the
        sentence kept up to date; once they are saved, it goes, and that is said."""
        said, self._held_said = self._held_said, text or None
        if text and text != said:
            if said is None:
                self.show_message(text, error=True)
            else:
                self.message_banner.supersede(said, text, error=True)
        elif not text and said is not None:
            self.message_banner.supersede(said, "The images kept in memory are saved in the library now.")

    def show_problem(self, text: str) -> None:
        """The library could not be opened: the frame says why, in one sentence."""
        placeholder = self.centralWidget()
        if isinstance(placeholder, OpeningPlaceholder):
            placeholder.set_problem(text)

    def reconcile_library(self) -> None:
        """Bring the index in line with the library folder (files added, removed or back
        while the app was closed), and the gallery with it when anything changed. The
        folder is read on a worker: at 100,000 images that takes a second or two, and the
        window is in use meanwhile."""
        runner = self.gallery_actions.runner

        def check_index() -> None:
            # Then every page of the index: damage in the middle of it shows nowhere else
            # until a save or a search meets it. Once the folder is read, not beside it.
            runner.submit(
                self.library.check_index,
                self._index_checked,
                lambda error: log.warning("the library index could not be checked: %s", error),
            )

        def reconciled(report: ReconcileReport) -> None:
            self._reconciled(report)
            check_index()

        def failed(error: BaseException) -> None:
            log.warning("the library folder could not be checked against its index: %s", error)
            self._not_reconciled(error)
            check_index()

        runner.submit(self.library.reconcile, reconciled, failed)

    def _not_reconciled(self, error: BaseException) -> None:
        """The folder could not be read (its permissions, a drive gone): said, in the place
        of the notice that the gallery was being rebuilt from it, which would stay up."""
        from krea_desktop.library.store import LibraryError

        if isinstance(error, LibraryError):
            text = str(error)
        else:
            why = within(str(error) or type(error).__name__)
            text = f"The library folder could not be checked against the gallery ({why})."
        if self._rebuilding:
            self._rebuilding = False
            self.message_banner.supersede(self.library.notice or "", text, error=True)
        else:
            self.show_message(text, error=True)

    def _index_checked(self, damaged: str | None) -> None:
        if damaged is not None:
            self.show_message(damaged, error=True)

    def _reconciled(self, report: ReconcileReport) -> None:
        if self._rebuilding:
            self._rebuilding = False
            n = self.library.count()
            # In the place of the notice that it was being rebuilt, which would come back.
            self.message_banner.supersede(
                self.library.notice or "", f"The gallery was rebuilt from the images folder: {counted(n, 'image')}."
            )
        if report.skipped:
            n = len(report.skipped)
            log.warning("left out of the index (names it cannot store): %s", ", ".join(report.skipped))
            which = f"“{report.skipped[0]}”" if n == 1 else f"{n:,} files, “{report.skipped[0]}” among them,"
            self.show_message(
                f"{which} in the images folder {for_count(n, 'is', 'are')} not in the gallery because "
                f"{for_count(n, 'its name', 'their names')} cannot be stored; rename {for_count(n, 'it', 'them')} "
                "and press F5.",
                error=True,  # something to do: it stays until read
            )
        if not report.changed:
            return
        log.info(
            "library reconciled: %d missing, %d back, %d indexed, %d broken",
            len(report.newly_missing),
            len(report.found_again),
            len(report.indexed),
            len(report.broken),
        )
        # Their thumbnails and placeholders are made again, as they are now.
        self.model.forget(report.redrawn)
        self.model.refresh()
        self._update_counts()

    def start(self) -> None:
        """Start the client thread (create_main_window does this), and collect what paid
        work a process that ended left unfinished."""
        self.client_thread.start()
        self.client_thread.collect_abandoned()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.panels_built:
            super().closeEvent(event)
            return
        if self.rest_built:
            self.tray.finish_loads()  # a reference dropped a moment ago is saved with the tray
            self.tray.commit_edits()  # and a strength typed without Enter
        self.save_state()
        if self._sweeps is not None and self._sweeps.runs:
            # The sheets of sweeps cut short are drawn below, a second or more on this
            # thread: the window is gone meanwhile, not a frozen one on the screen.
            self.hide()
        if self.rest_built:
            self.gallery_actions.shutdown()
            self.file_drops.shutdown()
        if self.built and not self.client_thread.stop():
            # Still saving (a slow disk, a busy index): run_app waits for it before the end.
            log.warning("the client thread is still finishing; the process waits for it")
        if self._sweeps is not None:
            self._sweeps.shutdown()  # after the client: no image arrives while a sheet is drawn
        self.model.loader.wait(3000)
        self.model.rows.wait(3000)
        self.library.checkpoint()  # library.sqlite alone holds everything (run_app closes it)
        super().closeEvent(event)

    def wait_for_work(self, msecs: int) -> bool:
        """Wait up to ``msecs`` for the client thread to end (it saves the last images
        after :meth:`closeEvent` asked it to stop) and for the background workers (which
        read the library); False if either is still running."""
        from krea_desktop.ui.background import shared_pool

        deadline = QDeadlineTimer(msecs)  # -1: no limit
        if self.built and not self.client_thread.wait(deadline):
            return False
        return shared_pool().waitForDone(-1 if deadline.isForever() else max(0, deadline.remainingTime()))

    def wait_idle(self) -> None:
        """For tests: wait until pending thumbnail work and rows read ahead are done."""
        self.model.loader.wait(5000)
        self.model.rows.wait(5000)


DEMO_HINT_KEY = "startup/demoMode"


def remember_demo(settings: QSettings, demo: bool) -> None:
    """Keep whether the window runs in demo mode, for :func:`demo_hint` at the next start."""
    if demo_hint(settings, default=not demo) != demo:
        settings.setValue(DEMO_HINT_KEY, "true" if demo else "false")


def demo_hint(settings: QSettings, default: bool = True) -> bool:
    """Whether the window ran in demo mode last time: what it shows until it has looked the
    key up (the keyring can take tens of ms), so that the banner rarely comes or goes."""
    value = settings.value(DEMO_HINT_KEY)
    if value is None:
        return default
    return str(value).lower() == "true"


def window_title(demo: bool) -> str:
    # Qt adds " — Krea Desktop" (the application's display name) to any other title on
    # most desktops, so the title names only what differs.
    return "Demo mode" if demo else APP_NAME


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionHeading")
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
