"""Reproduce the seed papers' claims: ``python -m sklearn_recursive reproduce``.

    python -m sklearn_recursive reproduce [--quick] [--out DIR] [--device auto]
        [--sections expansion real multiverse feedback speed timeseries reasoning]

Runs the experiments with progress on stderr and writes ``DIR/report.md``
with its PNG plots beside it. Every table states its data sizes, seeds and
spread; the report's header gives the device, the versions and the date.
``--quick`` is a small setting for 2 CPU cores; the full setting uses CUDA
when present (``--device auto``).

Each experiment module (`expansion`, `real`, `multiverse`, `feedback`, `speed`,
`timeseries`, `reasoning`) has a config dataclass with
a ``quick()`` setting, a ``run(config, log)`` that returns results, and
``tables`` and ``figures`` that render them.
"""

import dataclasses
import sys

from .._training import resolve_device
from . import expansion, feedback, multiverse, real, reasoning, speed, timeseries
from ._report import Progress, Report

__all__ = ["SECTIONS", "add_arguments", "main", "reproduce", "run_from_args"]

# name: (module, title, config class)
SECTIONS = {
    "expansion": (expansion, "Recurrent Expansion on the noisy sinusoid",
                  expansion.ExpansionConfig),
    "real": (real, "Recurrent Expansion on real data, beside its round 0 and the usual peers",
             real.RealConfig),
    "multiverse": (multiverse, "Multiverse Recurrent Expansion: MVRE, HMVRE, Sc-HMVRE",
                   multiverse.MultiverseConfig),
    "feedback": (feedback, "FeedbackSegmenter: feedback vs feed-forward on noisy shapes",
                 feedback.FeedbackConfig),
    "speed": (speed, "Speed: ratios measured side by side", speed.SpeedConfig),
    "timeseries": (timeseries, "Time-series members against random-convolution classifiers",
                   timeseries.TimeSeriesConfig),
    "reasoning": (reasoning, "RecursiveReasoner: thinking longer on prefix sums and mazes; Sudoku",
                  reasoning.ReasoningConfig),
}


def _configs(name, quick, device):
    """The configs a section runs: the full feedback section runs both noise modes."""
    cls = SECTIONS[name][2]
    make = cls.quick if quick else cls
    if name == "feedback" and not quick:
        return [make(device=device, noise="fixed"), make(device=device, noise="fresh")]
    return [make(device=device)]


def reproduce(out="reproduce_report", *, quick=False, sections=None, device="auto",
              configs=None, stream=None, command=None):
    """Run the experiments and write ``out/report.md``; return its path.

    Parameters
    ----------
    out : str or path, default="reproduce_report"
        Folder of the report and its plots (created if needed).
    quick : bool, default=False
        The small setting of every section.
    sections : list of str or None, default=None
        Names from `SECTIONS`; ``None`` runs them all.
    device : str, default="auto"
        Torch device of every model; ``"auto"`` is CUDA when available.
    configs : dict or None, default=None
        ``{section: [config, ...]}`` to run instead of the quick or full
        settings (used by the tests to run a tiny setting).
    stream : file-like or None
        Where progress goes (default: stderr).
    command : str or None
        The command line named in the report.
    """
    sections = list(SECTIONS) if sections is None else list(sections)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown sections {unknown}; choose from {sorted(SECTIONS)}.")
    device = resolve_device(device)
    log = Progress(stream)
    report = Report(
        out, title="sklearn-recursive: what the package reproduces of the seed papers",
        command=command or "sklearn_recursive.reproduce.reproduce(...)", device=device,
        quick=quick,
    )
    try:
        import matplotlib  # noqa: F401  (figures are drawn without pyplot: no backend change)

        plots = True
    except ImportError:
        plots = False
        report.add("*matplotlib is not installed: the report has no plots.*", "")
    for i, name in enumerate(sections, 1):
        module, title = SECTIONS[name][:2]
        report.add(f"## {i}. {title}", "", module.__doc__.split("\n\n", 1)[1].strip(), "")
        for config in (configs or {}).get(name) or _configs(name, quick, device):
            config = dataclasses.replace(config, device=device)
            start = log.elapsed()
            log(f"section {name}: {config.describe()}")
            results = module.run(config, log)
            report.add(f"Setting: {config.describe()}. Time: {log.elapsed() - start:.0f} s.", "")
            for table_title, lines in module.tables(config, results):
                report.add(f"**{table_title}**", "", *lines, "")
            if plots:
                for file_name, fig, caption in module.figures(config, results):
                    report.figure(fig, file_name, caption)
    path = report.write(log.elapsed())
    log(f"report written to {path}")
    return path


def add_arguments(parser):
    """The options of ``sklearn-recursive reproduce`` (the one command-line parser's)."""
    parser.add_argument("--quick", action="store_true",
                        help="the small setting (minutes on 2 CPU cores)")
    parser.add_argument("--out", default="reproduce_report",
                        help="folder of report.md and its plots (default: reproduce_report)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=None,
                        help="run only these sections (default: all)")
    return parser


def run_from_args(args, command):
    reproduce(args.out, quick=args.quick, sections=args.sections, device=args.device,
              command=command)
    return 0


def main(argv=None):
    """``sklearn-recursive reproduce ARGS``: the package's command line, this subcommand."""
    from ..__main__ import main as cli

    return cli(["reproduce", *(sys.argv[1:] if argv is None else argv)],
               prog="python -m sklearn_recursive")
