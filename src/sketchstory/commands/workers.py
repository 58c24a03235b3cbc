"""The options that say where a command's workers run (``--ray-address``, ``--workers``, each worker's
GPUs and CPUs), bounded on the command line, and the :class:`Cluster` they describe."""

from __future__ import annotations

import argparse

from sketchstory.batch.cluster import Cluster
from sketchstory.commands.args import bounded

MAX_WORKERS = 10_000  # far beyond any cluster's actors; a typo (1e9) is refused, not scheduled
MAX_GPUS = 16  # a worker runs on one node: no node has more GPUs
MAX_CPUS = 1024  # likewise for cores; also the worker's torch threads
MIN_CPUS = 0.01  # more than 0: the cluster's cores are divided by it


def add_cluster_args(p: argparse.ArgumentParser, unit: str, ray_by_default: bool = True) -> None:
    """``--ray-address``, ``--workers`` and the resources of each worker (one ``unit`` at a time).

    Without ``ray_by_default`` the command runs in this process unless one of the first two is given.
    """
    g = p.add_argument_group("workers (Ray, optional: see docs/dist.md)")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="an existing Ray cluster: 'auto' on one of its nodes, or ray://HEAD:10001 "
                        f"(default: {'start Ray on this machine' if ray_by_default else 'no Ray, unless --workers'})")
    g.add_argument("--workers", type=bounded(int, 0, MAX_WORKERS), metavar="N",
                   help=f"worker processes (0..{MAX_WORKERS}), each loading the model once (default: "
                        f"{'as many as' if ray_by_default else 'with --ray-address, as many as'} the cluster's "
                        "resources hold; 0: one after another in this process, without Ray)")
    g.add_argument(f"--gpus-per-{unit}", dest="gpus", type=bounded(float, 0, MAX_GPUS), metavar="G",
                   help=f"GPUs each worker asks for, 0..{MAX_GPUS} (default: 1 where the cluster, or this machine, "
                        "has GPUs, else 0; 0.5 puts two workers on a GPU)")
    g.add_argument(f"--cpus-per-{unit}", dest="cpus", type=bounded(float, MIN_CPUS, MAX_CPUS), default=1.0,
                   metavar="C", help=f"CPU cores each worker asks for, {MIN_CPUS:g}..{MAX_CPUS}, and its torch "
                                     "threads (default 1)")


def cluster_from_args(args: argparse.Namespace) -> Cluster:
    return Cluster(args.ray_address, args.workers, args.gpus, args.cpus)
