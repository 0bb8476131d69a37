"""What ``verbose`` shows while a fit runs.

``verbose=1``: on a terminal, a progress bar over rounds and, below it, one
over the current round's epochs (tqdm, as skorch's ``ProgressBar`` uses);
elsewhere (a file, a notebook log, CI) plain lines -- one when a round
starts, one with its losses when it ends.  ``verbose=2`` adds skorch's
per-epoch table of every network, each line labelled with its member, and
without colour codes when the output is not a terminal.
"""

import re
import sys

import numpy as np
from skorch.callbacks import Callback

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def print_log(*args, label=None, **kwargs):
    """skorch's ``PrintLog`` sink: labelled lines, colour codes only on a terminal.

    skorch's default sink is the ``print`` object of the moment skorch was
    imported, and a net pickles it by name: where ``builtins.print`` has been
    replaced since (``ray.shutdown()`` leaves it replaced), no fitted net would
    pickle.  This function looks ``print`` up when called and pickles as itself
    (``functools.partial`` of it with a ``label`` too).
    """
    text = " ".join(str(a) for a in args)
    if not _is_terminal(sys.stdout):
        text = _ANSI.sub("", text)
    if label is not None:
        text = "\n".join(f"[{label}] {line}" for line in text.split("\n"))
    print(text, **kwargs)


class EpochProgress(Callback):
    """skorch callback: advances the epoch bar of the fit's `RoundProgress`.

    The bar lives in the fitting process; a copy sent to another process
    (a joblib worker) or pickled with the fitted net has none and does nothing.
    """

    def __init__(self, bar=None):
        self.bar = bar

    def on_epoch_end(self, net, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def __getstate__(self):
        return {**self.__dict__, "bar": None}


class RoundProgress:
    """Progress of a chain of rounds, for ``verbose >= 1``.

    Parameters
    ----------
    n_rounds : int
    nets_per_round : int
        Networks trained per round (members times folds).
    max_epochs : int
    stream : file-like, default=sys.stdout
    """

    def __init__(self, n_rounds, nets_per_round, max_epochs, stream=None):
        self.stream = sys.stdout if stream is None else stream
        self.n_rounds = n_rounds
        self.nets_per_round = nets_per_round
        self.max_epochs = max_epochs
        self.bars = _is_terminal(self.stream)
        self.rounds = self.epochs = None
        if self.bars:
            from tqdm import tqdm

            self.rounds = tqdm(total=n_rounds, desc="rounds", unit="round", file=self.stream)
            self.epochs = tqdm(total=nets_per_round * max_epochs, desc="round 0", unit="epoch",
                               leave=False, file=self.stream)
        self.callback = EpochProgress(self.epochs)

    def line(self, text):
        if self.bars:
            self.rounds.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def round_start(self, r):
        if self.bars:
            self.epochs.reset(total=self.nets_per_round * self.max_epochs)
            self.epochs.set_description(f"round {r}")
        else:
            nets = self.nets_per_round
            self.line(f"round {r}/{self.n_rounds - 1}: training {nets} network"
                       f"{'s' if nets > 1 else ''} (at most {self.max_epochs} epochs each)")

    def round_end(self, record):
        if record["round"] == 0:
            self.line(f"{'round':>5} {'train loss':>11} {'valid loss':>11} {'AULC':>9} "
                       f"{'epochs':>6} {'seconds':>8}")
        self.line(
            f"{record['round']:>5} {record['train_loss']:>11.5f} "
            f"{record['valid_loss']:>11.5f} {record['aulc']:>9.5f} {record['epochs']:>6d} "
            f"{record['seconds']:>8.2f}"
        )
        members = record.get("members", [])
        if len(members) > 1:  # a multiverse: each member's loss, * if kept
            key = "valid_loss" if np.isfinite(record["valid_loss"]) else "train_loss"
            self.line("      members (" + key.replace("_", " ") + ", * kept): " + ", ".join(
                f"{m['name']} {m[key]:.4f}{'*' if m['selected'] else ''}" for m in members
            ))
        if self.bars:
            self.rounds.update(1)

    def close(self):
        if self.bars:
            self.epochs.close()
            self.rounds.close()
            self.bars = False  # later lines are plain
