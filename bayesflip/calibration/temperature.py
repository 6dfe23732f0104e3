"""Temperature scaling (Guo et al. 2017): one scalar ``T`` that rescales logits.

``softmax(z / T)`` keeps the predicted class and changes only the confidence.
``T`` is fitted on held-out data by minimizing the NLL. The NLL is convex in
``β = 1 / T`` (a log-sum-exp of linear functions of ``β``), with gradient
``mean_i (E_{p_i}[z_i] − z_{i, y_i})`` and curvature ``mean_i Var_{p_i}[z_i] ≥ 0``,
so a safeguarded 1-D Newton method finds the global minimum in a few dozen
steps without an optimizer dependency.

For a Bayesian model, fit on the log of the MC-averaged probabilities
(``from_probs=True``; ``log p`` are valid logits since ``softmax(log p) = p``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_real, looks_like_probabilities, warn_probabilities_as_logits
from bayesflip._typing import ArrayLike
from bayesflip.calibration import _inputs
from bayesflip.calibration import metrics as m

__all__ = ["fit_temperature", "TemperatureScaling"]

_DEFAULT_BOUNDS = (0.01, 100.0)


def _as_logits(fn: str, logits, from_probs: bool, stacklevel: int) -> np.ndarray:
    """Validated logits ``z`` (``log p`` with ``from_probs``).

    ``stacklevel`` is that of the warning for probabilities passed as logits.
    """
    if from_probs:
        return np.log(np.maximum(_inputs.validate_probs(fn, logits), 1e-12))
    z = _inputs._check_matrix(fn, "logits", logits)
    if looks_like_probabilities(z):
        fix = "Pass from_probs=True for probabilities (e.g. MC-averaged ones)."
        warn_probabilities_as_logits(fn, "the `logits`", stacklevel, fix=fix)
    return z


def _logits(fn: str, logits, labels, from_probs: bool):
    z = _as_logits(fn, logits, from_probs, stacklevel=5)
    y = _inputs.validate_labels(fn, labels, z.shape[0], z.shape[1])
    return z, y


def _nll_grad_hess(beta: float, z: np.ndarray, z_y: np.ndarray):
    s = beta * z
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    ez = np.sum(p * z, axis=1)
    grad = float(np.mean(ez - z_y))
    hess = float(np.mean(np.sum(p * z * z, axis=1) - ez**2))
    return grad, max(hess, 0.0)


def fit_temperature(
    logits: ArrayLike,
    labels: ArrayLike,
    from_probs: bool = False,
    bounds: tuple[float, float] = _DEFAULT_BOUNDS,
) -> float:
    """The temperature ``T`` minimizing ``NLL(softmax(logits / T), labels)``.

    Args:
        logits: held-out logits ``(N, K)`` (or probabilities with ``from_probs=True``).
        labels: integer labels ``(N,)`` (``(N, 1)`` or one-hot also accepted).
        from_probs: fit on ``log(probs)``, e.g. MC-averaged predictive probabilities.
        bounds: ``(T_min, T_max)``, the search interval (``0 < T_min < T_max``).
            When the NLL keeps decreasing past a bound (e.g. all examples
            classified correctly), that bound is returned.

    Returns:
        The fitted temperature (float; ``> 1`` softens overconfident predictions).

    Example:
    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 4.0]])
    >>> round(fit_temperature(logits, [0, 1, 1, 0]), 3)  # half right: optimum is uniform
    100.0
    >>> round(fit_temperature(logits, [0, 0, 1, 0]), 4)  # 3/4 right: softmax(4 / T) = 3/4, T = 4 / log 3
    3.641
    """
    fn = "fit_temperature"
    t_min, t_max = (float(b) for b in bounds)
    if not (0 < t_min < t_max < np.inf):
        raise ValueError(f"{fn}: `bounds` must satisfy 0 < T_min < T_max < inf, got {bounds!r}.")
    z, y = _logits(fn, logits, labels, from_probs)
    z_y = z[np.arange(len(y)), y]
    lo, hi = 1.0 / t_max, 1.0 / t_min  # bracket on beta = 1 / T
    g_lo, _ = _nll_grad_hess(lo, z, z_y)
    if g_lo >= 0:
        return t_max
    g_hi, _ = _nll_grad_hess(hi, z, z_y)
    if g_hi <= 0:
        return t_min
    beta = min(max(1.0, lo), hi)
    for _ in range(200):
        g, h = _nll_grad_hess(beta, z, z_y)
        if g > 0:
            hi = beta
        else:
            lo = beta
        if abs(g) < 1e-12 or hi - lo < 1e-12 * hi:
            break
        step = beta - g / h if h > 0 else None
        beta = step if step is not None and lo < step < hi else 0.5 * (lo + hi)
    return float(1.0 / beta)


@keras.saving.register_keras_serializable(package="bayesflip")
class TemperatureScaling(keras.layers.Layer):
    """Keras layer dividing logits by a fitted temperature ``T``.

    ``T`` lives in a saved non-trainable weight (and in the config), so a model
    ending in this layer saves and loads with the calibrated temperature. Fit it
    with :meth:`fit` on held-out logits (or MC-averaged probabilities), apply it
    with :meth:`predict_probs` (or as a layer, to logits), and use
    :meth:`report` for the before/after calibration metrics.

    Args:
        temperature: initial temperature (> 0).
        **kwargs: base layer arguments (``name``, ``dtype`` …).

    Example:
    >>> ts = TemperatureScaling().fit([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 4.0]], [0, 0, 1, 0])
    >>> round(ts.temperature, 3)
    3.641
    >>> [round(float(v), 3) for v in ts(np.array([[4.0, 0.0]], "float32"))[0]]
    [1.099, 0.0]
    """

    def __init__(self, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial = self._check(temperature)

    def _check(self, temperature) -> float:
        return check_real(
            f"TemperatureScaling '{self.name}'", "temperature", temperature, low=0, what="a finite number > 0"
        )

    def build(self, input_shape: tuple | None = None) -> None:
        self._temperature = self.add_weight(
            name="temperature",
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(self._initial),
            trainable=False,
        )
        self.built = True

    @property
    def temperature(self) -> float:
        """The current temperature."""
        if not self.built:
            return self._initial
        return float(keras.ops.convert_to_numpy(self._temperature.value))

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = self._check(value)
        self._initial = value
        if self.built:
            self._temperature.assign(value)

    def call(self, logits: tf.Tensor) -> tf.Tensor:
        logits = tf.convert_to_tensor(logits)
        return logits / tf.cast(self._temperature.value, logits.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def fit(
        self,
        logits: ArrayLike,
        labels: ArrayLike,
        from_probs: bool = False,
        bounds: tuple[float, float] = _DEFAULT_BOUNDS,
    ) -> TemperatureScaling:
        """Fit ``T`` by minimizing the NLL on held-out data; returns ``self``.

        Args:
            logits: held-out logits ``(N, K)``, or probabilities with ``from_probs=True``.
            labels: integer labels ``(N,)``.
            from_probs: fit on ``log(probs)`` (e.g. MC-averaged predictive probabilities).
            bounds: search interval of ``T``.

        Returns:
            This layer, with :attr:`temperature` set.
        """
        self.temperature = fit_temperature(logits, labels, from_probs=from_probs, bounds=bounds)
        if not self.built:
            self.build()
        return self

    def predict_probs(self, logits: ArrayLike, from_probs: bool = False) -> np.ndarray:
        """Calibrated probabilities ``softmax(z / T)``, float32 ``(N, K)``.

        Args:
            logits: logits ``(N, K)`` (``z``), or probabilities with ``from_probs=True``
                (``z = log p``: e.g. the MC-averaged predictive of a BNN, which has
                no logits of its own).
            from_probs: treat ``logits`` as probabilities.

        Returns:
            The temperature-scaled probabilities.

        Example:
        >>> ts = TemperatureScaling(temperature=2.0)
        >>> [round(float(v), 3) for v in ts.predict_probs([[0.8, 0.2]], from_probs=True)[0]]
        [0.667, 0.333]
        """
        z = _as_logits("TemperatureScaling.predict_probs", logits, from_probs, stacklevel=4)
        if not self.built:
            self.build()
        return keras.ops.convert_to_numpy(keras.ops.softmax(self(z.astype("float32")), axis=-1))

    def report(
        self, logits: ArrayLike, labels: ArrayLike, from_probs: bool = False, num_bins: int = 15
    ) -> dict[str, float]:
        """Calibration before and after scaling on ``(logits, labels)``.

        Args:
            logits: logits ``(N, K)``, or probabilities with ``from_probs=True``.
            labels: integer labels ``(N,)``.
            from_probs: treat ``logits`` as probabilities.
            num_bins: ECE bins.

        Returns:
            ``{"temperature", "nll_before", "nll_after", "ece_before", "ece_after",
            "brier_before", "brier_after"}``.
        """
        z, y = _logits("TemperatureScaling.report", logits, labels, from_probs)
        out = {"temperature": self.temperature}
        for tag, scaled in (("before", z), ("after", z / self.temperature)):
            out[f"nll_{tag}"] = m.negative_log_likelihood(y, scaled, from_logits=True)
            out[f"ece_{tag}"] = m.expected_calibration_error(y, scaled, num_bins=num_bins, from_logits=True)
            out[f"brier_{tag}"] = m.brier_score(y, scaled, from_logits=True)
        return out

    def get_config(self) -> dict:
        config = super().get_config()
        config["temperature"] = self.temperature
        return config
