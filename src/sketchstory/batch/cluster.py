"""Where the workers run: an existing Ray cluster, a Ray started on this machine, or this process alone."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sketchstory.batch.pool import ClusterError, LocalPool, Pool, RayPool, Worker

INSTALL_HINT = "pip install 'sketchstory[dist]' (from a clone: pip install -e '.[dist]')"


@dataclass(frozen=True)
class Cluster:
    address: str | None = None  # an existing cluster (``auto``, ``ray://HEAD:10001``); None: start Ray here
    workers: int | None = None  # None: as many as the cluster holds; 0: this process, without Ray
    gpus: float | None = None  # per worker; None: 1 where the workers' machines have a GPU, else 0
    cpus: float = 1.0  # per worker


def import_ray() -> ModuleType | None:
    try:
        import ray
    except ImportError:
        return None
    return ray


@contextmanager
def connected(ray: ModuleType, cluster: Cluster) -> Iterator[None]:
    """Ray connected to ``cluster.address``, or started here; left as found when done."""
    if ray.is_initialized():  # the caller (a notebook, a test) connected already: use it, leave it running
        yield
        return
    # Worker output would garble the progress bar; every failure is in the report instead.
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if cluster.address:
            ray.init(address=cluster.address, **quiet)
        else:
            # --workers N: room for exactly the N workers asked for, even beyond this machine's cores (a
            # local Ray has no autoscaler: a worker that did not fit would wait forever). Else Ray
            # counts the cores it may use.
            wanted = math.ceil((cluster.workers or 0) * cluster.cpus) or None
            ray.init(num_cpus=wanted, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {cluster.address}" if cluster.address else "a local Ray"
        raise ClusterError(f"cannot start or reach {where}: {error}. Check `ray status` on the cluster's head node, "
                           "or run without --ray-address to start Ray on this machine") from None
    try:
        yield
    finally:
        ray.shutdown()


def capacity(resources: dict[str, float], gpus: float, cpus: float) -> int:
    """How many workers of ``gpus`` and ``cpus`` the cluster's resources hold at once."""
    fits = int(resources.get("CPU", 0) // cpus)
    return min(fits, int(resources.get("GPU", 0) // gpus)) if gpus else fits


def _size(cluster: Cluster, resources: dict[str, float], gpus: float, jobs: int) -> int:
    fits = capacity(resources, gpus, cluster.cpus)
    have = f"{resources.get('CPU', 0):g} CPU(s) and {resources.get('GPU', 0):g} GPU(s)"
    if cluster.workers is None:
        if fits == 0:
            raise ClusterError(f"the cluster has {have}: not enough for one worker of {gpus:g} GPU(s) and "
                               f"{cluster.cpus:g} CPU(s); ask for less (--gpus-per-*, --cpus-per-*) or pass "
                               "--workers N for an autoscaling cluster to grow to")
        return min(fits, jobs)
    if cluster.workers > fits:
        if not cluster.address:
            raise ClusterError(f"this machine has {have}: {cluster.workers} workers of {gpus:g} GPU(s) each do not "
                               f"fit; use --workers {fits} or fewer GPUs per worker")
        print(f"note: the cluster holds {fits} of the {cluster.workers} workers now; the others start when it "
              "grows", file=sys.stderr)
    return min(cluster.workers, jobs)


@contextmanager
def worker_pool(cluster: Cluster, worker: Callable[..., Worker], kwargs: dict[str, Any], method: str, jobs: int,
                what: str) -> Iterator[Pool]:
    """A pool of ``worker(**kwargs, device=..., threads=...)`` calling ``method``: Ray actors, or one here."""
    ray = import_ray()
    if ray is None and cluster.address:
        raise ClusterError(f"--ray-address needs Ray, which is not installed: {INSTALL_HINT}")
    if ray is None or cluster.workers == 0:
        if ray is None:
            print(f"Ray is not installed: running the {jobs} {what} one after another in this process "
                  f"(for parallel workers: {INSTALL_HINT})", file=sys.stderr)
        import torch

        gpus = cluster.gpus if cluster.gpus is not None else float(torch.cuda.is_available())
        # threads=None: alone in this process, torch may use every core.
        yield LocalPool(worker(**kwargs, device=_device(gpus), threads=None), method)
        return
    with connected(ray, cluster):
        resources = ray.cluster_resources()
        gpus = cluster.gpus if cluster.gpus is not None else float(resources.get("GPU", 0) > 0)
        size = _size(cluster, resources, gpus, jobs)
        actor = ray.remote(num_cpus=cluster.cpus, num_gpus=gpus)(worker)
        options = kwargs | {"device": _device(gpus), "threads": max(1, int(cluster.cpus))}
        where = cluster.address or "local"
        pool = RayPool(lambda: actor.remote(**options), size, method,
                       f"{size} Ray worker(s) ({where}), {gpus:g} GPU and {cluster.cpus:g} CPU each")
        try:
            yield pool
        finally:
            pool.close()


def _device(gpus: float) -> str:
    # Ray shows each actor only the GPUs it was given (CUDA_VISIBLE_DEVICES), so "cuda" is its own.
    return "cuda" if gpus > 0 else "cpu"
