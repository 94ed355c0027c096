"""Two versions of the app in one Chromium session: does a change make the chat page faster?

Between two runs of bench/browser_latency.py, medians move by about 15 ms on a 2-core machine, more than many
changes do. This benchmark runs the app from two source trees at once (say, main and a worktree with the change,
`git worktree add`), each with its own database, on one stand-in Ollama, and takes them in turn, the order
alternating round by round, with the rounds and timings of bench/browser_latency.py. Prints one line per figure
and chat size (2 and 1,000 messages): the median and 90th percentile of each tree, and the changed tree's
median over the baseline's.
Run: python bench/compare_trees.py BASELINE_TREE CHANGED_TREE [--rounds 15]
"""

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.browser_latency import (
    APP_CHAT_PATH,
    FIGURES,
    LONG,
    TOKEN_DELAY_S,
    app_server,
    chromium_page,
    run_servers,
    seed_app,
    standin_reply,
    time_reply,
)
from tests.ollama_standin import StandinOllama

TREES = ("baseline", "changed")


def start_apps(stack: ExitStack, folder: Path, ollama_url: str, trees: list[Path], rounds: int) -> list[tuple]:
    """Each tree's app on a database of its own, with its chats; (chat URL pattern, chat ids by kind) per tree."""
    servers, chats = {}, {}
    for name, tree in zip(TREES, trees, strict=True):
        database = f"sqlite:///{folder / name}.db"
        chats[name] = seed_app(database, rounds)
        (folder / name).mkdir()
        servers[name] = app_server(folder / name, ollama_url, database, name, tree.resolve())
    run_servers(stack, servers)
    return [(servers[name].url + APP_CHAT_PATH, chats[name]) for name in TREES]


def summary(samples: list[float]) -> tuple[float, float]:
    """The median and the 90th percentile."""
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1]


def compare(page, apps: list[tuple], kind: str, rounds: int) -> None:
    """Time both trees on the chats of `kind`, alternating; print the figures."""
    timings = {name: [] for name in TREES}
    for number in range(rounds):
        order = list(zip(TREES, apps, strict=True))
        for name, (url, chats) in order if number % 2 == 0 else order[::-1]:
            timings[name].append(time_reply(page, url.format(chat_id=chats[kind][number]), f"Round {number + 1}?"))
    label = "2-message chat" if kind == "short" else f"{LONG:,}-message chat"
    for index, figure in enumerate(FIGURES):
        (base, base_p90), (changed, changed_p90) = (summary([t[index] for t in timings[name]]) for name in TREES)
        print(
            f"{label} {figure}: baseline {base:.3f} s (p90 {base_p90:.3f} s), changed {changed:.3f} s "
            f"(p90 {changed_p90:.3f} s), ratio {changed / base:.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the source tree to compare against")
    parser.add_argument("changed", type=Path, help="the source tree with the change")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per tree and chat size (default 15)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatcore-trees-")))
        standin = stack.enter_context(StandinOllama(token_delay=TOKEN_DELAY_S, reply=standin_reply))
        apps = start_apps(stack, folder, standin.url, [args.baseline, args.changed], args.rounds)
        page = stack.enter_context(chromium_page())
        for url, chats in apps:  # a server's first runs are slower
            time_reply(page, url.format(chat_id=chats["warm-up"][0]), "Warming up?")
        for kind in ("short", "long"):
            compare(page, apps, kind, args.rounds)


if __name__ == "__main__":
    main()
