#!/usr/bin/env python3
"""FedAvg softmax regression on digits in Flower's simulation engine (the Python side of the federated bench).

Setup (once; Flower is needed by this bench only, never by `cargo test`):

    python3 -m venv /tmp/flower-venv
    /tmp/flower-venv/bin/pip install "flwr[simulation]==1.42.0" numpy scikit-learn

Run from the repository root:

    /tmp/flower-venv/bin/python scripts/bench_flower.py --data data/digits.csv
    /tmp/flower-venv/bin/python scripts/bench_flower.py --data data/digits.csv --partition dirichlet --alpha 0.5

What it does:
1. Loads data/digits.csv (a header row, 64 pixel columns, then `label`), splits it 80/20 with
   sklearn's train_test_split(stratify=labels, test_size=0.2, random_state=SPLIT_SEED) and standardises
   the features with the training set's mean and std (std 0 -> 1). SPLIT_SEED is --split-seed, which
   defaults to --seed (Tributary's federated_quality example keeps its split seed at 42 and varies the
   partition seed: pass --split-seed 42 to mirror that). The split is NOT bit-identical to Tributary's
   seeded split (same sizes, 1437 x 360, same stratification, different permutation), so accuracies
   are comparable only up to split noise (a few test points).
2. Partitions the training set over --clients clients: `iid` (seeded shuffle, near-equal contiguous
   chunks) or `dirichlet` (per class, proportions ~ Dir(alpha); redrawn until every client has at
   least 10 examples, as flwr-datasets' DirichletPartitioner does by default).
3. Runs --rounds rounds of FedAvg in Flower's simulation engine (flwr.simulation.run_simulation, Ray
   backend, Message API: ServerApp + ClientApp + flwr.serverapp.strategy.FedAvg). Every client trains
   every round (fraction_train = 1), --epochs local epochs of mini-batch SGD (batch 32, lr 0.05, no
   momentum, reshuffled every epoch) on a softmax-regression model (one linear layer 64 -> 10, mean
   cross-entropy, float64; initial weights uniform in +-1/sqrt(64) drawn from SEED, biases 0, as
   Tributary initialises, though not the same draws), and the server averages weighted by example
   count. All randomness (partition, initial weights, each client's per-round shuffles) comes from
   --seed.
   There is no client-side evaluation (fraction_evaluate = 0): the global model is evaluated centrally
   on the 20 % test split by the strategy's evaluate_fn after every round (a 360 x 64 matmul).
4. Prints one JSON object on stdout (everything else, including Flower's and Ray's logs, goes to stderr):
   flwr_version, rounds, clients, local_epochs, partition, alpha, seed, split_seed, accuracy (final,
   central test split), wall_seconds (from just before run_simulation to the end of the last round's central
   evaluation: Ray start, actor pool, all rounds; imports and data loading excluded), per_round_ms
   (steady-state: (end of round R - end of round 1) / (R - 1)), first_round_seconds (round 1 alone:
   it absorbs Ray start-up, the actor pool and the actors' imports, because Flower evaluates the initial
   model and starts round 1 before any Ray actor exists), startup_seconds (wall_seconds - rounds *
   per_round_ms, an estimate of that one-off overhead), simulation_seconds (the whole run_simulation
   call, Ray shutdown included), process_seconds (from the first line of this script to the JSON;
   Python interpreter start-up excluded), ray_cpus.

Timing caveat: Flower's in-memory grid polls for client replies every 0.1 s (InMemoryGrid pull_interval,
not configurable through run_simulation), so a round here never takes less than ~100 ms however little
the clients compute; the stock value is kept.

Ray resources are kept small: ray.init(num_cpus=--ray-cpus, default 2) and 1 CPU per client, so
--ray-cpus actors run the clients' jobs. Telemetry is switched off (FLWR_TELEMETRY_ENABLED=0).

The ClientApp lives in this module and is handed to run_simulation through `import bench_flower`
(Flower's Ray backend puts the driver's sys.path, which holds scripts/, on the actors' PYTHONPATH), so
the actors import it by name and cache the prepared arrays once per actor process, the way Flower's own
examples cache their partitions at module level.
"""
from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a FutureWarning (CPU only)

import numpy as np  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BATCH = 32
LEARNING_RATE = 0.05
FEATURES = 64
CLASSES = 10
MIN_DIRICHLET_PARTITION = 10


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def load_digits_csv(path: pathlib.Path):
    with open(path) as handle:
        header = handle.readline().strip().split(",")
    if header[-1] != "label" or len(header) != FEATURES + 1:
        sys.exit(f"{path}: expected {FEATURES} pixel columns then `label`, got {len(header)} columns")
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return raw[:, :-1], raw[:, -1].astype(np.int64)


def split_and_standardise(x, y, seed: int):
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def partition(y_train, clients: int, scheme: str, alpha: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(y_train)
    if scheme == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), clients)]
    classes = np.unique(y_train)
    for _attempt in range(1000):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in classes:
            idx = rng.permutation(np.flatnonzero(y_train == label))
            proportions = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(idx)).astype(np.int64)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= MIN_DIRICHLET_PARTITION:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    sys.exit(f"dirichlet(alpha={alpha}): no draw gave every client >= {MIN_DIRICHLET_PARTITION} examples")


# ----------------------------------------------------------------------------------------------
# Model: softmax regression, W (64 x 10), b (10)
# ----------------------------------------------------------------------------------------------

def logits(w, b, x):
    return x @ w + b


def initial_parameters(seed: int) -> list[np.ndarray]:
    """Weights uniform in +-1/sqrt(fan-in), biases 0 (Tributary's scheme; not its draws)."""
    bound = 1.0 / np.sqrt(FEATURES)
    rng = np.random.default_rng([seed, 0x1417])
    return [rng.uniform(-bound, bound, size=(FEATURES, CLASSES)), np.zeros(CLASSES)]


def accuracy(w, b, x, y) -> float:
    return float((logits(w, b, x).argmax(axis=1) == y).mean())


def cross_entropy(w, b, x, y) -> float:
    z = logits(w, b, x)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def local_sgd(w, b, x, y, epochs: int, rng: np.random.Generator):
    """Mini-batch SGD on the mean cross-entropy; returns the new (w, b)."""
    w = w.copy()
    b = b.copy()
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            batch = order[start:start + BATCH]
            xb, yb = x[batch], y[batch]
            z = xb @ w + b
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1.0
            p /= len(yb)
            w -= LEARNING_RATE * (xb.T @ p)
            b -= LEARNING_RATE * p.sum(axis=0)
    return w, b


# ----------------------------------------------------------------------------------------------
# ClientApp (runs inside the Ray actors; imported there as `bench_flower`)
# ----------------------------------------------------------------------------------------------

_ACTOR_CACHE: dict[str, dict] = {}


def _prepared(path: str) -> dict:
    """The prepared arrays (one npz written by the driver), loaded once per actor process."""
    data = _ACTOR_CACHE.get(path)
    if data is None:
        with np.load(path) as npz:
            data = {key: npz[key] for key in npz.files}
        _ACTOR_CACHE[path] = data
    return data


client_app = ClientApp()


@client_app.train()
def client_train(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    data = _prepared(str(config["data-path"]))
    partition_id = int(context.node_config["partition-id"])
    idx = data[f"part{partition_id}"]
    x, y = data["x_train"][idx], data["y_train"][idx]
    w, b = msg.content["arrays"].to_numpy_ndarrays()
    rng = np.random.default_rng([int(config["seed"]), int(config["server-round"]), partition_id])
    w, b = local_sgd(w, b, x, y, int(config["local-epochs"]), rng)
    content = RecordDict({
        "arrays": ArrayRecord([w, b]),
        "metrics": MetricRecord({"train-loss": cross_entropy(w, b, x, y), "num-examples": len(y)}),
    })
    return Message(content=content, reply_to=msg)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=pathlib.Path, default=ROOT / "data" / "digits.csv")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5, help="local epochs per round")
    parser.add_argument("--seed", type=int, default=1,
                        help="partition, initial weights and local shuffles")
    parser.add_argument("--split-seed", type=int, default=None,
                        help="train/test split seed (default: --seed)")
    parser.add_argument("--partition", choices=["iid", "dirichlet"], default="iid")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration")
    parser.add_argument("--ray-cpus", type=int, default=2,
                        help="ray.init(num_cpus=...); each client job takes 1 CPU")
    args = parser.parse_args()
    if args.split_seed is None:
        args.split_seed = args.seed

    # Everything written to fd 1 from here on (Flower, Ray, actors' forwarded output) goes to stderr;
    # the JSON goes to the saved original stdout.
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    import flwr
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    # Hand Flower the ClientApp of the importable module, not of __main__, so that Ray pickles it by
    # reference and each actor keeps its cache. No scripts/__pycache__ (the actors inherit the env).
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import bench_flower

    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    log(f"flwr {flwr.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")

    x, y = load_digits_csv(args.data)
    x_train, y_train, x_test, y_test = split_and_standardise(x, y, args.split_seed)
    parts = partition(y_train, args.clients, args.partition, args.alpha, args.seed)
    log(f"digits: {len(y_train)} train / {len(y_test)} test; {args.partition} partition sizes "
        f"{[len(p) for p in parts]}")

    tmp = tempfile.TemporaryDirectory(prefix="bench-flower-")
    data_path = pathlib.Path(tmp.name) / "prepared.npz"
    np.savez(data_path, x_train=x_train, y_train=y_train,
             **{f"part{i}": p for i, p in enumerate(parts)})

    marks: dict[int, float] = {}
    history: dict[int, float] = {}

    def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        w, b = arrays.to_numpy_ndarrays()
        acc = accuracy(w, b, x_test, y_test)
        metrics = MetricRecord({"accuracy": acc, "loss": cross_entropy(w, b, x_test, y_test)})
        history[server_round] = acc
        marks[server_round] = time.perf_counter()
        return metrics

    server_app = ServerApp()

    @server_app.main()
    def server_main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0,
                          min_train_nodes=args.clients, min_available_nodes=args.clients)
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial_parameters(args.seed)),
            num_rounds=args.rounds,
            train_config=ConfigRecord({"data-path": str(data_path), "seed": args.seed,
                                       "local-epochs": args.epochs}),
            evaluate_fn=central_evaluate,
        )

    backend_config = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": args.ray_cpus, "num_gpus": 0, "include_dashboard": False,
                      "logging_level": "warning"},
    }
    t_start = time.perf_counter()
    run_simulation(server_app=server_app, client_app=bench_flower.client_app,
                   num_supernodes=args.clients, backend_name="ray", backend_config=backend_config)
    t_returned = time.perf_counter()
    tmp.cleanup()

    if args.rounds not in marks or 0 not in marks:
        log(f"simulation did not finish all rounds (evaluated rounds: {sorted(marks)})")
        return 1
    t_end = marks[args.rounds]
    gaps = [marks[r] - marks[r - 1] for r in range(1, args.rounds + 1)]
    steady = gaps[1:] or gaps
    per_round = sum(steady) / len(steady)
    result = {
        "flwr_version": flwr.__version__,
        "rounds": args.rounds,
        "clients": args.clients,
        "local_epochs": args.epochs,
        "partition": args.partition,
        "alpha": args.alpha if args.partition == "dirichlet" else None,
        "seed": args.seed,
        "split_seed": args.split_seed,
        "accuracy": history[args.rounds],
        "wall_seconds": t_end - t_start,
        "per_round_ms": per_round * 1000.0,
        "first_round_seconds": gaps[0],
        "startup_seconds": (t_end - t_start) - args.rounds * per_round,
        "simulation_seconds": t_returned - t_start,
        "process_seconds": time.perf_counter() - _T_PROCESS,
        "ray_cpus": args.ray_cpus,
    }
    ordered = sorted(steady)
    log(f"round 1: {gaps[0]:.2f} s (Ray start-up included); rounds 2..{args.rounds}: min "
        f"{ordered[0] * 1000:.0f} ms, median {ordered[len(ordered) // 2] * 1000:.0f} ms, max "
        f"{ordered[-1] * 1000:.0f} ms")
    log(f"accuracy after round 1/10/50/{args.rounds}: "
        + ", ".join(f"{history[r]:.4f}" for r in (1, 10, 50, args.rounds) if r in history))
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
