"""Progress display for the CLI, in one place: rich bars on a terminal, plain lines every
PLAIN_EVERY_S seconds where no terminal shows them (a log file, a pipe), and the ETA of generate.
Each `*_bar(label, total)` is a context manager yielding the update callback its pipeline takes
(`progress=` of blocks.commands.*): the pipelines never draw, the CLI picks how to show them."""
from __future__ import annotations

from contextlib import contextmanager

from common.errors import shown

PLAIN_EVERY_S = 10.0  # seconds between progress lines when the bar's stream is not a terminal


def progress_console(stderr: bool = False):
    """Where a bar goes: stdout when the command leaves it free (stderr=False) and it is a
    terminal, else stderr (so `blocks generate > log` still shows the bar on the terminal)."""
    from rich.console import Console

    if not stderr:
        out = Console()
        if out.is_terminal:
            return out
    return Console(stderr=True)


class PlainLines:
    """A rich Progress seen through a stream that is not a terminal (a log file, a pipe): rich
    would print the bar once, at the end; this prints it as a plain line at the first update and
    then every PLAIN_EVERY_S seconds."""

    def __init__(self, progress, clock=None):
        import time

        self.progress, self.clock, self.last = progress, clock or time.monotonic, None

    def update(self, task, **kwargs) -> None:
        self.progress.update(task, **kwargs)
        now, (t,) = self.clock(), [t for t in self.progress.tasks if t.id == task]
        if t.finished:  # rich prints the finished bar itself
            return
        if self.last is None or now - self.last >= PLAIN_EVERY_S:
            self.last = now
            self.progress.console.print(self.progress.make_tasks_table([t]))


@contextmanager
def bar(label: str, total, *columns, stderr: bool = False, **fields):
    """A rich progress bar (stderr when stdout carries JSON, or is not a terminal); yields
    (progress, task). Where no terminal shows it: plain lines every PLAIN_EVERY_S seconds."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = progress_console(stderr)
    shown_label = escape(shown(label)).replace("{", "{{").replace("}", "}}")  # a class name is no format or markup
    with Progress(TextColumn(shown_label), BarColumn(), *columns, TimeElapsedColumn(), transient=False,
                  console=console) as progress:
        task = progress.add_task(label, total=total, **fields)
        yield (progress if console.is_terminal else PlainLines(progress)), task


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def generate_eta(done: int, steps: int, seconds: float, max_seconds: float | None) -> tuple[float, str]:
    """(share of the run done, 'ETA m:ss') after `done` steps in `seconds`: the run ends at its
    last step or at max_seconds, whichever comes first (then the ETA says 'clock')."""
    by_steps = (steps - done) * seconds / max(done, 1)
    share = done / steps
    if max_seconds and max_seconds - seconds < by_steps:
        return max(share, min(seconds / max_seconds, 1.0)), f"ETA {clock_text(max_seconds - seconds)} (clock)"
    return share, f"ETA {clock_text(by_steps)}"


@contextmanager
def generate_bar(label: str, total: int, max_seconds: float | None = None):
    """Steps, loss, p(target) and an ETA; the bar fills with whichever limit ends the run first."""
    from rich.progress import TextColumn

    with bar(label, total, TextColumn("step {task.fields[step]}/" + str(total)), TextColumn("loss {task.fields[loss]}"),
             TextColumn("p(target) {task.fields[prob]}"), TextColumn("{task.fields[eta]}"),
             step=0, loss="-", prob="-", eta="ETA -") as (p, task):
        def update(r):
            share, eta = generate_eta(r.step + 1, total, r.seconds, max_seconds)
            p.update(task, completed=share * total, step=r.step + 1, loss=f"{r.loss:.3f}",
                     prob=f"{r.objective_prob:.3f}", eta=eta)

        yield update


@contextmanager
def views_bar(label: str, total: int):
    """The held-out check: views judged of all it renders."""
    from rich.progress import MofNCompleteColumn, TextColumn

    with bar(label, total, MofNCompleteColumn(), TextColumn("views")) as (p, task):
        yield lambda n: p.update(task, advance=n)


@contextmanager
def evaluate_bar(label: str, total: int):
    """Views judged, on stderr (stdout may carry the JSON)."""
    from rich.progress import MofNCompleteColumn, TextColumn, TimeRemainingColumn

    with bar(label, total, MofNCompleteColumn(), TextColumn("views"), TimeRemainingColumn(), stderr=True) as (p, task):
        yield lambda n: p.update(task, advance=n)


@contextmanager
def capture_bar(label: str, total):
    """Frames read; the whole frame's hits first (the headline), then any view's (blocks, windows)."""
    from rich.progress import TextColumn, TimeRemainingColumn

    hits = [0, 0]
    known = (TextColumn("ETA"), TimeRemainingColumn()) if total else ()  # a video's frames are counted; a camera's are not
    with bar(label, total, TextColumn("frame {task.completed}"), TextColumn("p(target) {task.fields[prob]:.3f}"),
             TextColumn("whole-frame hits {task.fields[frame]}"), TextColumn("any-view hits {task.fields[hits]}"),
             *known, stderr=True, prob=0.0, hits=0, frame=0) as (p, task):
        def update(r):
            hits[0] += r.frame_hit
            hits[1] += r.hit
            p.update(task, advance=1, prob=r.frame_target_prob, frame=hits[0], hits=hits[1])

        yield update


@contextmanager
def simulate_bar(label: str, total: int):
    """Shown once the PDF has been read: a bad PDF gets only its error line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True))
    task = progress.add_task(label, total=total)

    def update(i: int) -> None:
        if i == 0:
            progress.start()
        progress.update(task, completed=i + 1)

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


@contextmanager
def onepixel_bar(label: str, total: int):
    from rich.progress import MofNCompleteColumn, TextColumn

    # DE counts generations, the searches the queries of the image that has spent the most
    with bar(label, total, MofNCompleteColumn(), TextColumn("{task.fields[running]} images still searching"),
             stderr=True, running="") as (p, task):
        yield lambda done_running: p.update(task, completed=done_running[0], running=done_running[1])

