"""Recurrent Expansion on the noisy sinusoid: error per round and the glitch.

For every seed, RE is fitted without early stopping for ``rounds`` rounds in
two variants:
- in-sample (``cv=None``): each round's training rows are expanded with the
  predictions of networks that saw them;
- leak-free (``cv=k``): each round's predictions for a training row come from
  the fold network that did not see it.

The test error per round comes from ``staged_predict``, measured against the
clean sine. The **representation glitch** is the first round after the
minimum whose mean test error exceeds the minimum by more than ``margin``.

The same variants are then fitted with early stopping (10% of the rows held
out), to see which ``best_round_`` they pick and the test error there.
Baselines: one network given all the rounds' epochs, and
``HistGradientBoostingRegressor``.
"""

import dataclasses

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from .. import RecurrentExpansionRegressor
from ..datasets import make_sinusoid
from ._report import markdown_table, mean_std, mse_per_round_figure, pm


@dataclasses.dataclass
class ExpansionConfig:
    """Settings of the sinusoid experiment (the defaults: the full run)."""

    seeds: int = 3
    n_train: int = 1000
    n_test: int = 1000
    noise: float = 0.3
    rounds: int = 20
    max_epochs: int = 30
    hidden: tuple = (64, 64)
    n_components: int = 8
    cv: int = 5
    margin: float = 0.10
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes):
        """A setting that runs in one to two minutes on 2 CPU cores."""
        settings = dict(seeds=2, rounds=12, max_epochs=20, cv=3)
        return cls(**{**settings, **changes})

    def describe(self):
        return (
            f"make_sinusoid: {self.n_train} training rows (noise sd {self.noise}), test "
            f"{self.n_test} rows scored against the clean sine (MSE); MLP {self.hidden}, "
            f"PCA to {self.n_components} components, {self.max_epochs} epochs per round; "
            f"{self.seeds} seeds (each draws new data and weights); mean ± std (ddof=1) over "
            "seeds"
        )


def _variants(cfg):
    # in sample is cv=None, said explicitly: the estimators' default is cv=5
    return {"in-sample": {"cv": None}, f"leak-free (cv={cfg.cv})": {"cv": cfg.cv}}


def rises(curve, margin):
    """``(argmin, the later rounds above min * (1 + margin))``, rounds as ints."""
    curve = np.asarray(curve, dtype=float)
    best = int(np.argmin(curve))
    return best, np.flatnonzero(curve[best + 1 :] > curve[best] * (1 + margin)) + best + 1


def glitch(curve, margin):
    """``(argmin, first later round above min * (1 + margin) or None)``: the glitch."""
    best, above = rises(curve, margin)
    return best, (int(above[0]) if above.size else None)


def run(cfg, log):
    """Fit every variant on every seed; return the per-round test errors and more."""
    curves = {name: [] for name in _variants(cfg)}
    stopped = {name: [] for name in _variants(cfg)}
    baselines = {"one network, all rounds' epochs": [], "HistGradientBoosting": []}
    for seed in range(cfg.seeds):
        X, y = make_sinusoid(cfg.n_train, noise=cfg.noise, random_state=seed)
        X_test, y_clean = make_sinusoid(cfg.n_test, noise=0.0, random_state=seed + 10_000)
        common = dict(hidden_layer_sizes=cfg.hidden, n_components=cfg.n_components,
                      max_epochs=cfg.max_epochs, device=cfg.device, random_state=seed)

        def mse(pred, y_clean=y_clean):
            return float(np.mean((pred - y_clean) ** 2))

        for name, extra in _variants(cfg).items():
            est = RecurrentExpansionRegressor(n_rounds=cfg.rounds, early_stopping=False,
                                              **common, **extra).fit(X, y)
            curves[name].append([mse(p) for p in est.staged_predict(X_test)])
            es = RecurrentExpansionRegressor(n_rounds=cfg.rounds, **common, **extra).fit(X, y)
            staged = [mse(p) for p in es.staged_predict(X_test)]
            stopped[name].append(dict(best_round=es.best_round_, n_rounds=es.n_rounds_,
                                      mse=staged[es.best_round_], min_mse=min(staged)))
            log(f"expansion seed={seed} {name}: round 0 {curves[name][-1][0]:.4f}, min "
                f"{min(curves[name][-1]):.4f}, last {curves[name][-1][-1]:.4f}; ES picked "
                f"round {es.best_round_}")
        one = RecurrentExpansionRegressor(n_rounds=1, early_stopping=False, cv=None,  # one
                                          **{**common, "max_epochs": cfg.rounds * cfg.max_epochs})
        baselines["one network, all rounds' epochs"].append(mse(one.fit(X, y).predict(X_test)))
        hgb = HistGradientBoostingRegressor(random_state=seed).fit(X, y)
        baselines["HistGradientBoosting"].append(mse(hgb.predict(X_test)))
    return dict(curves={k: np.array(v) for k, v in curves.items()}, stopped=stopped,
                baselines=baselines)


def tables(cfg, results):
    """The result tables: a list of ``(title, markdown lines)``."""
    curves, stopped = results["curves"], results["stopped"]
    shown = sorted({0, 1, 2, 3, 5, cfg.rounds // 2, cfg.rounds - 1} & set(range(cfg.rounds)))
    rows = []
    for name, c in curves.items():
        best, first = glitch(c.mean(axis=0), cfg.margin)
        rows.append([name, *(pm(c[:, r], 4) for r in shown), best,
                     "none" if first is None else first,
                     f"{c.mean(0)[-1] / c.mean(0)[best]:.2f}"])
    per_round = markdown_table(
        ["variant", *(f"round {r}" for r in shown), "min at round",
         f"glitch (first round > min + {cfg.margin:.0%})", "last / min"], rows)

    rows = []
    for name, runs in stopped.items():
        rows.append([name, ", ".join(str(r["best_round"]) for r in runs),
                     pm([r["mse"] for r in runs], 4), pm([r["min_mse"] for r in runs], 4)])
    for name, values in results["baselines"].items():
        rows.append([name, "-", pm(values, 4), "-"])
    chosen = markdown_table(
        ["model", "best_round_ per seed", "test MSE (at best_round_)",
         "test MSE at the best round in hindsight"], rows)
    return [
        ("Test MSE per round without early stopping (in-sample vs leak-free)", per_round),
        ("With early stopping: the round `best_round_` picks", chosen),
    ]


def figures(cfg, results):
    """``(name, figure, caption)``: test MSE per round."""

    def draw(ax):
        rounds = np.arange(cfg.rounds)
        for name, c in results["curves"].items():
            mean, std = mean_std(c, axis=0)
            ax.plot(rounds, mean, marker="o", label=name)
            ax.fill_between(rounds, mean - std, mean + std, alpha=0.2)
            best, first = glitch(mean, cfg.margin)
            if first is not None:
                ax.axvline(first, ls=":", color=ax.lines[-1].get_color())
        for name, values in results["baselines"].items():
            ax.axhline(np.mean(values), ls="--",
                       color="grey" if "HistGradient" in name else "k", label=name)

    fig = mse_per_round_figure(draw, "Recurrent Expansion on the noisy sinusoid")
    return [("re_rounds.png", fig, "Test MSE per round (mean over seeds, band: std (ddof=1) over "
             "seeds); dotted lines mark the glitch, dashed lines the baselines")]
