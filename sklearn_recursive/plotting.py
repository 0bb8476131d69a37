"""Plots of fitted estimators (needs matplotlib: ``pip install sklearn-recursive[plot]``)."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_rounds"]


def plot_rounds(estimator, *, ax=None, split="auto"):
    """Loss per round of every member and of the aggregate.

    Works for `MultiverseRE` and for the Recurrent Expansion estimators
    (one member). Members kept in a round's aggregate are drawn with filled
    markers, discarded ones (``n_select``) hollow; the dashed line marks
    ``best_round_``.

    Parameters
    ----------
    estimator : fitted MultiverseRE, RecurrentExpansionRegressor or \
            RecurrentExpansionClassifier
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's axes when None.
    split : {"auto", "valid", "train"}, default="auto"
        Which loss to show: the validation rows' (needs
        ``early_stopping=True``) or the training rows' IMTs'. ``"auto"``
        picks validation when there is one.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
    >>> from sklearn_recursive.datasets import make_sinusoid
    >>> from sklearn_recursive.plotting import plot_rounds
    >>> X, y = make_sinusoid(n_samples=200, random_state=0)
    >>> re = RecurrentExpansionRegressor((16,), n_rounds=2, n_components=2,
    ...                                  max_epochs=5, random_state=0)
    >>> ax = plot_rounds(MultiverseRE(re, members=2).fit(X, y))
    >>> ax.get_ylabel()
    'validation loss'
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    check_is_fitted(estimator, "history_")
    history = estimator.history_
    has_valid = np.isfinite(history[0]["valid_loss"])
    if split not in ("auto", "valid", "train"):
        raise ValueError(f"split must be 'auto', 'valid' or 'train'; got {split!r}.")
    if split == "valid" and not has_valid:
        raise ValueError(
            "split='valid' needs validation losses; the estimator was fitted with "
            "early_stopping=False. Use split='train' or 'auto'."
        )
    key = "valid_loss" if split == "valid" or (split == "auto" and has_valid) else "train_loss"
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    rounds = np.arange(len(history))
    names = [m["name"] for m in history[0].get("members", [])]
    colors = plt.get_cmap("tab10")
    for j, name in enumerate(names):
        loss = np.array([rec["members"][j][key] for rec in history])
        kept = np.array([rec["members"][j]["selected"] for rec in history])
        color = colors(j % 10)
        ax.plot(rounds, loss, color=color, lw=1, alpha=0.7, label=name)
        ax.scatter(rounds[kept], loss[kept], color=color, s=18, zorder=3)
        ax.scatter(rounds[~kept], loss[~kept], facecolors="none", edgecolors=color, s=18,
                   zorder=3)
    aggregate = [rec[key] for rec in history]
    ax.plot(rounds, aggregate, color="black", lw=2.5, marker="o", label="aggregate")
    ax.axvline(estimator.best_round_, color="grey", ls="--", lw=1, label="best round")
    ax.set_xlabel("round")
    ax.set_ylabel("validation loss" if key == "valid_loss" else "training loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small", ncol=2)
    return ax
