#!/usr/bin/env python3
"""Runs prove_ray.py against a local 3-node Ray cluster (head + 2 workers, each one CPU).

    python scripts/ray/cluster_test.py DIR --input INPUT.json --proof OUT.json --zkinfer PATH \
        [--node-memory-mb MB] [--object-store-mb MB] \
        [--aggregate [--leaf N] [--arity A] [--k K] [--dev-srs]]

All three nodes are processes on this machine, each with its own raylet and object
store, so tasks really cross node boundaries (objects are transferred between stores).
Asserts that the bundle (with --aggregate: the aggregated proof) was written and that the
tasks ran on at least two nodes, then shuts the cluster down, also on failure or SIGTERM.
With --aggregate each node offers --node-memory-mb (default 13500) of Ray memory: the
leaves of a tree then run side by side, one a node, each taking ~8 GB at k 21 (a root of
two, ~13 GB).
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

# Keep every node and the driver on the loopback address: otherwise Ray swaps 127.0.0.1
# for the machine's outward IP (ray._private.services.get_node_ip_address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in scripts/ray
sys.path.insert(0, str(Path(__file__).resolve().parent))
import prove_ray  # noqa: E402

WORKERS = 2
# The defaults are small enough for a 2-core CI machine; `memory` is Ray's logical budget
# for `memory=` requests, not a limit the OS enforces. A larger model's keys need a larger
# object store (they travel through it) and its tasks more memory per node.
DEFAULT_NODE_MEMORY_MB = 4000
DEFAULT_OBJECT_STORE_MB = 80
AGGREGATE_NODE_MEMORY_MB = 13500


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--input", required=True)
    p.add_argument("--proof", required=True)
    p.add_argument("--zkinfer", required=True)
    p.add_argument("--node-memory-mb", type=int)
    p.add_argument("--object-store-mb", type=int, default=DEFAULT_OBJECT_STORE_MB)
    p.add_argument("--aggregate", action="store_true")
    p.add_argument("--leaf", type=int)
    p.add_argument("--arity", type=int)
    p.add_argument("--k", type=int)
    p.add_argument("--dev-srs", action="store_true")
    a = p.parse_args(argv)
    aggregate = None
    if a.aggregate:
        aggregate = {"leaf": a.leaf, "arity": a.arity, "k": a.k, "srs": None,
                     "dev_srs": a.dev_srs}
    if a.node_memory_mb is None:
        a.node_memory_mb = AGGREGATE_NODE_MEMORY_MB if a.aggregate else DEFAULT_NODE_MEMORY_MB
    node_args = {"node_ip_address": "127.0.0.1", "num_cpus": 1,
                 "object_store_memory": a.object_store_mb * 2**20,
                 "memory": a.node_memory_mb * 10**6}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` still runs

    cluster, code = None, 1
    start = time.monotonic()
    try:
        cluster = Cluster(initialize_head=True,
                          head_node_args={**node_args, "include_dashboard": False})
        for _ in range(WORKERS):
            cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        print(f"cluster: {1 + WORKERS} nodes at {cluster.address}, "
              f"up in {time.monotonic() - start:.1f} s", flush=True)

        t = time.monotonic()
        results = prove_ray.run(a.dir, a.input, a.proof, cluster.address, a.zkinfer,
                                aggregate)
        print(f"driver: {time.monotonic() - t:.1f} s", flush=True)
        bundle = Path(a.proof)
        assert bundle.is_file() and bundle.stat().st_size > 0, f"no proof at {bundle}"
        nodes = {r["node"] for r in results}
        print(f"cluster test: {len(results)} tasks ran on {len(nodes)} distinct nodes")
        assert len(nodes) >= 2 or len(results) < 2, "all tasks ran on one node"
        code = 0
    except prove_ray.DriverError as e:
        print(f"error: {e}", file=sys.stderr)
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        t = time.monotonic()
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        print(f"cluster: shut down in {time.monotonic() - t:.1f} s "
              f"(total {time.monotonic() - start:.1f} s)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
