"""What verbose shows: bars on a terminal, plain labelled lines elsewhere."""

import io

from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
from sklearn_recursive._progress import RoundProgress

from .conftest import fast


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _record(r):
    return {"round": r, "train_loss": 1.0, "valid_loss": 0.5, "aulc": 1.0, "epochs": 3,
            "seconds": 0.1, "members": []}


def test_verbose_1_prints_a_line_when_each_round_starts(regression_data, capsys):
    X, y = regression_data
    fast(RecurrentExpansionRegressor, n_rounds=3, verbose=1, early_stopping=True).fit(X, y)
    out = capsys.readouterr().out
    for r in range(3):
        assert f"round {r}/2: training 1 network (at most 20 epochs each)" in out
    assert "best round:" in out and "\x1b[" not in out and "\r" not in out


def test_verbose_2_labels_members_and_has_no_colour_codes_in_files(regression_data, capsys):
    X, y = regression_data
    mv = MultiverseRE(fast(RecurrentExpansionRegressor, verbose=2), members=2)  # stacked
    mv.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    epoch_rows = [line for line in lines if line.startswith("[mlp_")]
    assert {line.split("]")[0] for line in epoch_rows} == {"[mlp_0", "[mlp_1"}
    assert len(epoch_rows) >= 2 * 2 * 20  # two members, two rounds, 20 epochs each
    assert not any("\x1b[" in line for line in lines)


def test_a_terminal_gets_bars_over_rounds_and_epochs():
    stream = Terminal()
    progress = RoundProgress(n_rounds=2, nets_per_round=3, max_epochs=4, stream=stream)
    for r in range(2):
        progress.round_start(r)
        for _ in range(12):
            progress.callback.on_epoch_end(net=None)
        progress.round_end(_record(r))
    progress.close()
    text = stream.getvalue()
    assert "rounds: 100%" in text and "12/12" in text and "epoch" in text
    assert "training 3 networks" not in text  # the bars replace the plain lines


def test_the_epoch_callback_pickles_without_its_bar():
    import pickle

    progress = RoundProgress(1, 1, 2, stream=Terminal())
    copy = pickle.loads(pickle.dumps(progress.callback))
    assert copy.bar is None and progress.callback.bar is not None
    copy.on_epoch_end(net=None)  # a worker's copy does nothing
    progress.close()
