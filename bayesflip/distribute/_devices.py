"""Devices and roles: logical CPU devices, the chief, the number of replicas (re-exported by
``bayesflip.distribute``).
"""

from __future__ import annotations

import tensorflow as tf

from bayesflip._checks import check_positive_int


def split_cpu(num_devices: int) -> list[str]:
    """Split the host CPU into ``num_devices`` logical devices.

    Lets ``MirroredStrategy`` run ``num_devices`` replicas on one CPU (for tests
    and tutorials; the replicas share the physical cores). Must be called before
    TensorFlow initializes its devices, i.e. before the first tensor is created.
    Calling it again with the same number is a no-op.

    Args:
        num_devices: positive int.

    Returns:
        The names of the logical CPU devices, e.g. ``["/device:CPU:0", "/device:CPU:1"]``.

    Raises:
        ValueError: ``num_devices`` is not a positive int.
        RuntimeError: TensorFlow's devices were initialized already with another split.

    Example:
    >>> names = split_cpu(len(tf.config.list_logical_devices("CPU")))  # no-op re-split
    >>> all("CPU" in n for n in names)
    True
    """
    num_devices = check_positive_int("split_cpu", "num_devices", num_devices)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError:
        current = tf.config.list_logical_devices("CPU")
        if len(current) != num_devices:
            raise RuntimeError(
                f"split_cpu: TensorFlow's devices are already initialized with {len(current)} logical CPU "
                f"device(s), cannot split into {num_devices}; call split_cpu before creating any tensor "
                "(at the very top of the program)."
            ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process is the chief (the one that logs and keeps checkpoints).

    True outside multi-worker training; under ``MultiWorkerMirroredStrategy`` the
    task ``chief`` (or ``worker`` 0 when the cluster has no chief).

    Args:
        strategy: the strategy; default the current one.

    Returns:
        bool.

    Example:
    >>> is_chief()
    True
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


def _num_replicas() -> int:
    ctx = tf.distribute.get_replica_context()
    if ctx is not None:
        return ctx.num_replicas_in_sync
    return tf.distribute.get_strategy().num_replicas_in_sync
