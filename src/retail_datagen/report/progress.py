"""The progress line of ``retail-datagen report``: a rich bar on a terminal, else plain lines."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class ReportProgress:
    """A :data:`~retail_datagen.report.ProgressCallback` drawing on ``console`` (stderr).

    Live, it is one rich bar naming the section being measured; otherwise each step prints one
    line, ``report: 3/10 Payment mix``, so logs of a batch run show where the time went.
    """

    def __init__(self, console: Console, *, live: bool) -> None:
        self._console, self._live = console, live
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ReportProgress:
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("report"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.description}", markup=False),
                                      console=self._console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, done: int, total: int, label: str) -> None:
        """Show that ``done`` of ``total`` steps are finished and ``label`` runs next."""
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total, description=label)
        else:
            self._console.print(f"report: {done}/{total} {label}", markup=False,
                                highlight=False)


__all__ = ["ReportProgress"]
