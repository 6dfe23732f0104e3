"""Training Bayesian models under ``tf.distribute`` (and without it).

Three things matter when a flipout network is trained on several replicas:

1. **Decorrelated replicas.** Every variational layer folds the global replica
   index into its stateless seed (:func:`bayesflip.random.fold_in_replica`), so
   replicas perturb independently while the RNG state stays one synchronised,
   saved variable: a run is reproducible from its seeds.
2. **ELBO scaling.** Gradients are *summed* over replicas, so each replica
   contributes ``sum(NLL_i) / global_batch + KL / num_replicas``
   (:func:`compute_loss`); the sum over replicas is then the per-example
   negative ELBO of the global batch, with the KL counted once. Keras'
   ``model.fit`` does the same under ``MirroredStrategy``.
3. **Multi-worker training.** Keras 3's ``model.fit`` fails under
   ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585). :func:`fit` is a
   small custom training loop (``strategy.run`` over a distributed dataset) that
   works under no strategy, ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``
   and — by construction, untested here — ``TPUStrategy``, with metrics, chief-only
   progress output and checkpoint/resume through ``tf.train.CheckpointManager``.

``TPUStrategy`` (not testable on this project's CPU-only CI): create the model,
optimizer and metrics under ``strategy.scope()``, batch the dataset with
``drop_remainder=True`` (static shapes) and call ``fit(model, dataset,
strategy=strategy)``. The step uses only stateless RNG ops and variables (no
host-side ops) and compiles with ``jit_compile=True`` on CPU, which is the
property TPUs need.

Layout: a package whose private modules define the functions exported here (import
every name from ``bayesflip.distribute``): devices and roles (``_devices``: :func:`split_cpu`,
:func:`is_chief`), the loss (``_loss``: :func:`compute_loss`) and the training
loop with its named steps (``_fit``: :func:`fit`).
"""

from bayesflip.distribute._devices import is_chief, split_cpu
from bayesflip.distribute._fit import fit
from bayesflip.distribute._loss import compute_loss

__all__ = ["split_cpu", "is_chief", "compute_loss", "fit"]
