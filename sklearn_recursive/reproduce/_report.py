"""A self-contained Markdown report with PNG figures, and progress on stderr."""

import datetime
import os
import platform
import sys
import time
from pathlib import Path

import joblib
import numpy as np


def mean_std(values, axis=0):
    """Mean and sample standard deviation (ddof=1) over seeds, ignoring NaN.

    The one definition of "mean ± std" in reports and benchmarks: ``values``
    holds one entry per seed along ``axis``; the std is 0 where a single
    (non-NaN) value is left, and both are NaN where none is.
    """
    values = np.asarray(values, dtype=float)
    count = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=axis) / count
        squares = np.nansum((values - np.expand_dims(mean, axis)) ** 2, axis=axis)
        std = np.where(count > 1, squares / np.maximum(count - 1, 1), 0.0) ** 0.5
    std = np.where(count > 0, std, np.nan)
    return mean, std[()]


def pm(values, digits=3):
    """``"mean ± std"`` of `mean_std` over seeds; ``"-"`` without values."""
    mean, std = mean_std(values)
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(header, rows):
    """A Markdown table as a list of lines."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return lines


def mse_per_round_figure(draw, title):
    """A Figure of test MSE (against the clean sine) per round, log scale.

    ``draw(ax)`` plots the curves; the axes, the title and the legend are set
    here, so that the sections' round plots look alike. Drawn without pyplot.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    draw(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="round", ylabel="test MSE vs the clean sine", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class Progress:
    """Timestamped progress lines on ``stream`` (stderr by default)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.start

    def __call__(self, message):
        print(f"[{self.elapsed():6.0f}s] {message}", file=self.stream, flush=True)


def print_section(script, section, cfg, device, plots=None):
    """What a benchmark script prints: ``section.run(cfg)``'s tables, figures to ``plots``.

    ``section`` is a reproduce module (`run`, `tables`, `figures`); the header
    names ``script``, the versions, the cores, torch's threads and ``device``.
    """
    import torch

    from .. import __version__

    log = Progress()
    print(f"# {script}: sklearn_recursive {__version__}, torch {torch.__version__}, "
          f"{joblib.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"device {device}")
    print(f"# {cfg.describe()}")
    results = section.run(cfg, log)
    for i, (title, lines) in enumerate(section.tables(cfg, results), 1):
        print(f"\n## {i}. {title}\n")
        print("\n".join(lines))
    print(f"\n# total {log.elapsed():.0f}s")
    if plots:
        os.makedirs(plots, exist_ok=True)
        for name, fig, _ in section.figures(cfg, results):
            fig.savefig(os.path.join(plots, name), dpi=110)
        log(f"plots written to {plots}")
    return results


class Report:
    """Collects Markdown and figures; `write` saves ``report.md`` into ``out``."""

    def __init__(self, out, *, title, command, device, quick):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.lines = [f"# {title}", ""]
        self.header = environment(command=command, device=device, quick=quick)
        self.figures = []

    def add(self, *lines):
        self.lines.extend(lines)

    def figure(self, fig, name, caption):
        """Save ``fig`` as ``name`` (PNG) next to the report and reference it."""
        path = self.out / name
        fig.savefig(path, dpi=110)
        self.figures.append(path)
        self.lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]

    def write(self, seconds):
        text = "\n".join(
            [self.lines[0], "", *self.header, f"- total time: {seconds:.0f} s", "",
             *self.lines[2:]]
        )
        path = self.out / "report.md"
        path.write_text(text.rstrip() + "\n", encoding="utf-8")
        return path


def environment(*, command, device, quick):
    """The lines that say where, when and with what a report was made."""
    import sklearn
    import skorch
    import torch

    from .. import __version__

    gpu = ""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        gpu = f" ({torch.cuda.get_device_name(torch.device(device))})"
    return [
        f"- command: `{command}` ({'quick' if quick else 'full'} setting)",
        f"- date: {datetime.date.today().isoformat()}",
        f"- sklearn-recursive {__version__}; torch {torch.__version__}, skorch "
        f"{skorch.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- machine: {platform.machine()}, {joblib.cpu_count()} CPU cores "
        f"({os.cpu_count()} logical), {torch.get_num_threads()} torch threads; "
        f"device {device}{gpu}",
    ]
