"""Retraining from the app: runs ``python -m training train`` as a subprocess with live progress.

The subprocess (not a thread) keeps torch's training off the UI process entirely, and a cancel
is a kill: the model is only written and registered by the trainer's very last step, so a
cancelled run leaves no model behind; its run folder is removed.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QPointF, QProcess, QProcessEnvironment, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from viewer import i18n
from viewer.worklist import status_label

ROOT = Path(__file__).resolve().parents[1]


def held_out_summary(metrics: dict) -> str:
    """' Held-out Dice 0.840, better than the base model's 0.790 on the same cases.' from a done event's
    metrics (or 'not better ...: roll back' advice); '' without a held-out Dice."""
    own, base = metrics.get("val_dice"), metrics.get("parent_val_dice")
    if not isinstance(own, (int, float)):
        if isinstance(metrics.get("val_fpr"), (int, float)):  # only tumour-free cases were held out
            return " " + QCoreApplication.translate(
                "TrainDialog", "No tumour case was held out, so the two versions' tumour outlines were not compared.")
        return ""
    own_s = i18n.number(own, 3)
    if not isinstance(base, (int, float)):
        return " " + QCoreApplication.translate("TrainDialog", "Held-out Dice {own}.").format(own=own_s)
    if own > base:
        text = QCoreApplication.translate(
            "TrainDialog", "Held-out Dice {own}, better than the base model's {base} on the same cases.")
    else:
        text = QCoreApplication.translate(
            "TrainDialog", "Held-out Dice {own}, not better than the base model's {base} on the same cases: compare "
            "them, and roll back in Model ▸ Model versions if needed.")
    return " " + text.format(own=own_s, base=i18n.number(base, 3)) + gain_interval(metrics)


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + i18n.number(value, 3)


def gain_interval(metrics: dict) -> str:
    """' Difference +0.050 (95 % interval -0.020 to +0.110) over 6 held-out tumour cases: too few to
    tell the two apart.' when the trainer measured the paired interval (training.validation.held_out_gain)."""
    gain, ci, n = metrics.get("val_dice_gain"), metrics.get("val_dice_gain_ci95"), metrics.get("val_dice_gain_n")
    if not isinstance(gain, (int, float)) or not isinstance(ci, list) or len(ci) != 2 or not n:
        return ""
    lo, hi = float(ci[0]), float(ci[1])
    if lo == hi == 0.0:
        text = QCoreApplication.translate(
            "TrainDialog", "The two versions outline the {n} held-out tumour cases with the same Dice.")
    elif lo <= 0.0 <= hi:
        text = QCoreApplication.translate(
            "TrainDialog", "Difference {gain} (95 % interval {lo} to {hi}) over {n} held-out tumour cases: too few "
            "to tell the two apart.")
    else:
        text = QCoreApplication.translate(
            "TrainDialog", "Difference {gain} (95 % interval {lo} to {hi}) over {n} held-out tumour cases.")
    return " " + text.format(gain=_signed(float(gain)), lo=_signed(lo), hi=_signed(hi), n=i18n.integer(int(n)))


def training_command(args: list[str]) -> tuple[str, list[str]]:
    """Program + arguments that run ``python -m training ARGS`` from source or from the frozen app.

    From source ``sys.executable`` is Python; frozen it is the app itself, whose main.py
    understands the same ``-m training`` form.
    """
    return sys.executable, ["-m", "training", *args]


def trainer_environment() -> QProcessEnvironment:
    """The trainer's environment: unbuffered JSON lines, and the background CPU policy.

    Passive OpenMP waiting, one thread less than the cores and ``ADF_LOW_PRIORITY=1`` (the
    trainer lowers its own priority before it starts any thread; model/cpu_policy.py), so the
    window, the clinician's predictions and the brush stay responsive while it trains."""
    from model.cpu_policy import background_environment

    env = QProcessEnvironment.systemEnvironment()
    for key, value in background_environment({}).items():
        env.insert(key, value)
    env.insert("PYTHONUNBUFFERED", "1")
    return env


class LossPlot(QWidget):
    """A minimal live plot: training loss and validation Dice per epoch (no plotting library).

    Two scales, each labelled in its series' colour: Dice on the left (0 to 1), the loss on the
    right (0 to its largest value so far), so a flat loss at the top is not read as Dice 1.0."""

    LOSS_COLOUR = QColor(255, 170, 60)
    DICE_COLOUR = QColor(90, 200, 255)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss: list[float] = []
        self.dice: list[float] = []
        self.setMinimumHeight(160)

    def add(self, loss: float | None, dice: float | None) -> None:
        if loss is not None:
            self.loss.append(float(loss))
        if dice is not None:
            self.dice.append(float(dice))
        self.update()

    def loss_top(self) -> float:
        """The loss at the top of the plot: the largest so far (1.0 before the first epoch)."""
        return max(self.loss) if self.loss and max(self.loss) > 0 else 1.0

    def axis_labels(self) -> dict[str, str]:
        """The tick labels as painted: Dice's on the left, the loss's on the right."""
        return {"dice_top": i18n.number(1.0, 1), "dice_bottom": i18n.integer(0),
                "loss_top": i18n.number(self.loss_top(), 3) if self.loss else "",
                "loss_bottom": i18n.integer(0) if self.loss else ""}

    def paintEvent(self, _event: Any) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(22, 24, 27))
        fm = p.fontMetrics()
        labels = self.axis_labels()
        right = max(fm.horizontalAdvance(labels["loss_top"]), 10) + 8
        r = self.rect().adjusted(36, 10, -right, -22)
        p.setPen(QPen(QColor(90, 95, 105), 1))
        p.drawRect(r)
        p.setPen(self.DICE_COLOUR)
        p.drawText(4, r.top() + 10, labels["dice_top"])
        p.drawText(4, r.bottom(), labels["dice_bottom"])
        p.setPen(self.LOSS_COLOUR)
        p.drawText(r.right() + 4, r.top() + 10, labels["loss_top"])
        p.drawText(r.right() + 4, r.bottom(), labels["loss_bottom"])
        p.setPen(QColor(200, 200, 200))
        p.drawText(r.left(), self.height() - 6, self.tr("epoch →"))
        for series, colour, label, scale in ((self.loss, self.LOSS_COLOUR, self.tr("loss"), self.loss_top()),
                                             (self.dice, self.DICE_COLOUR, self.tr("val Dice"), 1.0)):
            if not series:
                continue
            n = max(2, len(series))
            pts = [QPointF(r.left() + i * r.width() / (n - 1), r.bottom() - (v / scale) * r.height())
                   for i, v in enumerate(series)]
            p.setPen(QPen(colour, 2))
            p.drawPolyline(QPolygonF(pts))
            p.drawText(r.right() - 70, r.top() + (14 if series is self.loss else 30), label)
        p.end()


class TrainDialog(QDialog):
    """Model ▸ Train a new version: base model, epochs, statuses → a new model version.

    The trainer activates the new version only when it beats its base model on the held-out
    cases; otherwise the dialog says so and offers "Activate anyway"."""

    finishedWith = Signal(object)   # dict of the trainer's "done" line, or None when cancelled/failed
    activateRequested = Signal(str)  # model id the clinician chose to activate although it scored lower

    def __init__(self, workspace_root: Path, models: list[dict], parent: QWidget | None = None,
                 extra_args: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Train a new model version"))
        self.workspace_root = Path(workspace_root)
        self.extra_args = list(extra_args or [])
        self.process: QProcess | None = None
        self.out_dir: Path | None = None
        self.result: dict[str, Any] | None = None
        self._buffer = ""
        lay = QVBoxLayout(self)
        intro = QLabel(self.tr("Fine-tunes a model on this workspace's reviewed cases (a held-out part is used "
                               "for validation). Runs on this computer; nothing is uploaded."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.base = QComboBox()
        if not models:
            self.base.addItem(self.tr("(no model in this workspace: train from scratch)"), None)
        for m in models:
            label = m["id"] + (self.tr("  (active)") if m.get("active") else "")
            self.base.addItem(label, str(m["path"]))
            if m.get("active"):
                self.base.setCurrentIndex(self.base.count() - 1)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(20)
        self.statuses: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        for st in ("corrected", "approved"):
            cb = QCheckBox(status_label(st))
            cb.setChecked(True)
            self.statuses[st] = cb
            row.addWidget(cb)
        form.addRow(self.tr("Base model"), self.base)
        form.addRow(self.tr("Epochs"), self.epochs)
        form.addRow(self.tr("Train on cases"), row)
        lay.addLayout(form)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        lay.addWidget(self.progress)
        self.plot = LossPlot()
        lay.addWidget(self.plot)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        lay.addWidget(self.log, 1)
        buttons = QHBoxLayout()
        self.start_btn = QPushButton(self.tr("Start training"))
        self.cancel_btn = QPushButton(self.tr("Cancel run"))
        self.cancel_btn.setEnabled(False)
        self.close_btn = QPushButton(self.tr("Close"))
        self.activate_btn = QPushButton(self.tr("Activate anyway"))
        self.activate_btn.setToolTip(self.tr("Use the new version although it did not beat its base model on the "
                                             "held-out cases"))
        self.activate_btn.setVisible(False)
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        buttons.addWidget(self.activate_btn)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        lay.addLayout(buttons)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.close_btn.clicked.connect(self.reject)
        self.activate_btn.clicked.connect(self._activate_anyway)
        self.resize(640, 560)

    def arguments(self) -> list[str]:
        statuses = ",".join(s for s, cb in self.statuses.items() if cb.isChecked()) or "corrected,approved"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out_dir = self.workspace_root / "runs" / f"train-{stamp}"
        args = ["train", "--data", str(self.workspace_root), "--statuses", statuses, "--epochs",
                str(self.epochs.value()), "--out", str(self.out_dir), "--model-id", f"adf-ft-{stamp}",
                "--register", "--no-tqdm"]
        if self.base.currentData():
            args += ["--init", str(self.base.currentData())]
        return args + self.extra_args

    def start(self) -> None:
        """Launch the trainer; progress comes from its JSON lines on stdout."""
        program, args = training_command(self.arguments())
        self.process = QProcess(self)
        self.process.setProcessEnvironment(trainer_environment())
        # From source, `python -m training` needs the repository as its working folder; the frozen app
        # carries its modules, so it runs in the workspace and never touches its own folder.
        self.process.setWorkingDirectory(str(self.workspace_root if getattr(sys, "frozen", False) else ROOT))
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.log.appendPlainText(self.tr("Starting training…"))
        self.process.start(program, args)

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._handle_line(line.strip())

    def _read_stderr(self) -> None:
        assert self.process is not None
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace").strip()
        if text:
            self.log.appendPlainText(text[-2000:])

    def _handle_line(self, line: str) -> None:
        if not line.startswith("{"):
            if line:
                self.log.appendPlainText(line)
            return
        try:
            ev = json.loads(line)
        except ValueError:
            self.log.appendPlainText(line)
            return
        kind = ev.get("event")
        if kind == "start":
            self.log.appendPlainText(self.tr("Training on {n} cases, validating on {val} ({device}).").format(
                n=ev.get("n_train"), val=ev.get("n_val"), device=i18n.device_text(str(ev.get("device")))))
        elif kind == "epoch":
            self.progress.setValue(int(round(100 * float(ev.get("progress", 0.0)))))
            loss = ev.get("loss_total", ev.get("loss"))
            self.plot.add(loss, ev.get("val_dice"))
            dice = ev.get("val_dice")
            loss_s = "—" if loss is None else i18n.number(loss, 4)
            self.log.appendPlainText(self.tr("epoch {epoch}/{epochs}: loss {loss}").format(
                epoch=ev.get("epoch"), epochs=ev.get("epochs"), loss=loss_s)
                + (self.tr(", val Dice {dice}").format(dice=i18n.number(dice, 3)) if isinstance(dice, (int, float))
                   else ""))
        elif kind == "parent_val":
            dice = ev.get("val_dice")
            if isinstance(dice, (int, float)):
                self.log.appendPlainText(self.tr("Base model on the {n} held-out cases: Dice {dice}.").format(
                    n=ev.get("val_n"), dice=i18n.number(dice, 3)))
        elif kind == "done":
            self.result = ev
            self.progress.setValue(100)
            blend = self._blend_summary(ev.get("parent_blend"), (ev.get("metrics") or {}).get("parent_blend_choice"))
            if ev.get("activated"):
                head = self.tr("New model {model} registered and activated.").format(model=ev.get("model_id"))
            else:
                head = self.tr("New model {model} registered but NOT activated: it did not beat the base model on "
                               "the held-out cases, so the base model stays in use. Use \"Activate anyway\" to "
                               "switch to it.").format(model=ev.get("model_id"))
                self.activate_btn.setVisible(bool(ev.get("registered")))
                self.activate_btn.setEnabled(bool(ev.get("registered")))
            self.log.appendPlainText(head + held_out_summary(ev.get("metrics") or {}) + blend)
        elif kind == "error":
            self.log.appendPlainText(self.tr("Error: {message}").format(message=ev.get("message")))

    def _blend_summary(self, share: Any, choice: list[dict] | None) -> str:
        """One sentence on where the released weights lie between the base model and the fine-tune
        (and, with --parent-blend auto, whether the held-out cases chose it or scored every share
        alike, when the default was kept); empty without a parent."""
        if not isinstance(share, (int, float)):
            return ""
        chosen_on_held_out = bool(choice)
        scores = {round(float(c["score"]), 9) for c in choice or [] if isinstance(c.get("score"), (int, float))}
        if chosen_on_held_out and len(scores) <= 1:
            return " " + self.tr("The held-out cases scored every share alike, so its weights lie {share} of the way "
                                 "from the base model's to the fine-tuned ones, the default, which forgets less of what "
                                 "the base model knew.").format(share=i18n.percent(share))
        if chosen_on_held_out and share >= 1:
            return " " + self.tr("The fine-tuned weights scored best on the held-out cases and are used as they are.")
        if chosen_on_held_out:
            return " " + self.tr("Its weights lie {share} of the way from the base model's to the fine-tuned ones: "
                                 "that share scored best on the held-out cases, and forgets less of what the base "
                                 "model knew.").format(share=i18n.percent(share))
        if share < 1:
            return " " + self.tr("Its weights lie {share} of the way from the base model's to the fine-tuned "
                                 "ones, which forgets less of what the base model knew.").format(share=i18n.percent(share))
        return ""

    def _on_finished(self, code: int, _status: Any) -> None:
        self._read_stdout()
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if self.result is None and self.out_dir is not None:
            shutil.rmtree(self.out_dir, ignore_errors=True)
            self.log.appendPlainText(self.tr("Training ended without a model (exit code {code}).").format(code=code))
        self.finishedWith.emit(self.result)

    def _activate_anyway(self) -> None:
        """The clinician overrides the held-out verdict: activate the new version."""
        if self.result and self.result.get("registered"):
            self.activateRequested.emit(str(self.result["registered"]))
            self.activate_btn.setEnabled(False)
            self.log.appendPlainText(self.tr("Model {model} activated at your request.").format(
                model=self.result["registered"]))

    def cancel(self) -> None:
        """Stop the run now; no model is written and the run folder is removed."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.log.appendPlainText(self.tr("Cancelling…"))
            self.result = None
            self.process.kill()

    def is_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def reject(self) -> None:
        if self.is_running():
            self.cancel()
            assert self.process is not None
            self.process.waitForFinished(10000)
        super().reject()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape and self.is_running():
            return  # Escape must not silently kill a long run; use Cancel
        super().keyPressEvent(event)
