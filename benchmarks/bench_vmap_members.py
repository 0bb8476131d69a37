"""Would stacking same-shaped window members with ``torch.func`` pay on this machine?

Issue 13 asks that same-shaped members of any kind train stacked "where that
pays". The package stacks MLP members (a batched matrix product per layer,
``docs/multiverse.md``, "Stacked members"); this script measures the generic
route for the window members: ``torch.func.stack_module_state`` over k members
built by ``BUILTIN_MODULES[name]`` with their defaults, and one
``vmap(functional_call)`` forward and backward, against the k members' forward
and backward one after another. Each member reads its own batch (as stacked
members do), the same batches in both variants; the stacked outputs are
checked equal to the loop's. The two variants alternate in every repeat
(``sklearn_recursive.reproduce.speed.alternate``, after a warm-up of each); the
ratio is of the medians. A ratio below 1 means stacking is faster.

    OMP_NUM_THREADS=1 python benchmarks/bench_vmap_members.py [--members 5] \
        [--batch 32] [--length 150] [--channels 1] [--repeats 5] [--threads 1]
"""

import argparse
import copy
import re
import warnings

import torch
from torch.func import functional_call, stack_module_state, vmap

import sklearn_recursive
from sklearn_recursive._modules import BUILTIN_MODULES
from sklearn_recursive.reproduce.speed import alternate

MODULES = ("cnn", "fcn", "resnet", "inception", "transformer", "gru", "lstm")


def members(name, k, channels, length, n_outputs=3):
    """k members of one built-in kind, each with its own initial weights."""
    built = []
    for seed in range(k):
        torch.manual_seed(seed)
        built.append(BUILTIN_MODULES[name]((channels, length), 0, n_outputs))
    return built


def loop_step(modules, X, y):
    """Forward and backward of each member on its own batch, one after another."""
    outputs = []
    for module, Xi, yi in zip(modules, X, y):
        out = module(Xi)
        torch.nn.functional.cross_entropy(out, yi).backward()
        outputs.append(out.detach())
    return torch.stack(outputs)


def stacked_step(base, params, buffers, X, y):
    """The same step with the members' weights stacked and the forward vmapped."""

    def one(p, b, Xi):
        return functional_call(base, (p, b), (Xi,))

    out = vmap(one)(params, buffers, X)
    loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
    loss.view(y.shape).mean(dim=1).sum().backward()
    return out.detach()


def compare(name, args):
    """``(loop s, stacked s, same outputs, ops vmap ran in a loop)``, or why vmap cannot run."""
    modules = members(name, args.members, args.channels, args.length)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(args.members, args.batch, args.channels, args.length, generator=gen)
    y = torch.randint(0, 3, (args.members, args.batch), generator=gen)
    params, buffers = stack_module_state(modules)
    base = copy.deepcopy(modules[0]).to("meta")  # the skeleton functional_call fills
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stacked = stacked_step(base, params, buffers, X, y)
    except RuntimeError as error:  # e.g. no batching rule for aten::gru
        return str(error).split(". ")[0]
    same = torch.allclose(stacked, loop_step(modules, X, y), atol=1e-4)
    fallbacks = sorted({m.group(1) for w in caught
                        for m in [re.search(r"batching rule for (aten::\S+?)\.", str(w.message))]
                        if m})
    runners = {
        "loop": lambda: loop_step(modules, X, y),
        "stacked": lambda: stacked_step(base, params, buffers, X, y),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = alternate(runners, args.repeats)
    return times["loop"], times["stacked"], same, ", ".join(fallbacks) or "none"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--modules", nargs="+", default=list(MODULES), choices=MODULES)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# bench_vmap_members: sklearn_recursive {sklearn_recursive.__version__}, torch "
          f"{torch.__version__}, {args.threads} thread(s), cpu; k={args.members} members, "
          f"batch {args.batch} of {args.channels}x{args.length} windows each, one forward and "
          f"backward; {args.repeats} alternating repeats after a warm-up, medians\n")
    print("| member | one by one ms | stacked (vmap) ms | stacked / one by one | same outputs "
          "| ops vmap loops over (no batching rule) |")
    print("|---|---|---|---|---|---|")
    for name in args.modules:
        result = compare(name, args)
        if isinstance(result, str):
            print(f"| {name} | – | – | – | – | not batchable: {result} |", flush=True)
            continue
        loop, stacked, same, fallbacks = result
        print(f"| {name} | {1000 * loop:.1f} | {1000 * stacked:.1f} | {stacked / loop:.2f} "
              f"| {same} | {fallbacks} |", flush=True)


if __name__ == "__main__":
    main()
