"""Feature-space OOD scores: class-conditional Gaussians fitted on a layer's activations.

- :class:`MahalanobisScore` (Lee et al., NeurIPS 2018): class means and one
  covariance shared by the classes; the score of ``z`` is the smallest squared
  Mahalanobis distance ``min_c (z − μ_c)ᵀ Σ⁻¹ (z − μ_c)``.
- :class:`GaussianDensityScore` (DDU; Mukhoti et al., CVPR 2023): a Gaussian
  discriminant model, one mean and covariance per class with the class
  frequencies as weights; the score is the negative log density
  ``−log Σ_c π_c N(z; μ_c, Σ_c)``.

Both scores are higher = more out-of-distribution (the orientation of
:func:`bayesflip.decisions.evaluate_ood`). Fit them on training features
(``fit_features``) or on a model's layer (``fit``, features from
:func:`layer_features`, batched). Covariances get ``jitter × mean variance``
added on their diagonal so that they stay invertible.

File format (``save`` / ``load``): a NumPy ``.npz`` with ``kind``
(``"mahalanobis"`` or ``"gaussian_density"``), ``layer`` (the layer name, or
``""``), ``jitter``, ``means (C, D)``, ``covariances`` (``(D, D)`` shared or
``(C, D, D)`` per class) and ``priors (C,)``; save it beside the ``.keras`` file.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from bayesflip._checks import check_positive_int, check_real
from bayesflip._typing import ArrayLike

__all__ = ["layer_features", "MahalanobisScore", "GaussianDensityScore", "load_feature_score"]


def layer_features(
    model: keras.Model,
    x: ArrayLike,
    layer: str,
    batch_size: int = 256,
    posterior_mean: bool = True,
) -> np.ndarray:
    """Activations of the layer named ``layer`` of ``model`` for inputs ``x``, flattened per example.

    Args:
        model: a built functional or Sequential Keras model.
        x: inputs ``(N, ...)``.
        layer: name of the layer whose output is the feature.
        batch_size: inputs per forward pass.
        posterior_mean: take the features with every variational layer in
            posterior-mean mode (deterministic features); ``False`` gives one
            posterior draw per input. Ignored for a model without variational layers.

    Returns:
        ``(N, D)`` float64 features.
    """
    fn = "layer_features"
    batch_size = check_positive_int(fn, "batch_size", batch_size)
    names = [lay.name for lay in model.layers]
    if layer not in names:
        raise ValueError(
            f"{fn}: model '{model.name}' has no layer named {layer!r} (`layer`); its layers: {names}."
        )
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{fn}: `x` must hold at least one input, got shape {x.shape}.")
    extractor = keras.Model(model.inputs, model.get_layer(layer).output)
    from bayesflip.inference import posterior_mean as _posterior_mean
    from bayesflip.inference import variational_layers

    if posterior_mean and variational_layers(model):
        with _posterior_mean(model):
            out = extractor.predict(x, batch_size=batch_size, verbose=0)
    else:
        out = extractor.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out, np.float64).reshape(len(x), -1)


def _features(fn: str, arg: str, value: ArrayLike, dim: int | None = None) -> np.ndarray:
    a = np.asarray(value, np.float64)
    if a.ndim != 2:
        raise ValueError(f"{fn}: `{arg}` must be (N, D) features, got shape {a.shape}.")
    if a.shape[0] == 0:
        raise ValueError(f"{fn}: `{arg}` is empty (shape {a.shape}).")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{fn}: `{arg}` must have {dim} features (as fitted), got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{fn}: `{arg}` contains NaN or infinite values.")
    return a


class _ClassGaussians:
    kind = ""
    shared = True

    def __init__(self, jitter: float = 1e-6) -> None:
        self.jitter = check_real(type(self).__name__, "jitter", jitter)
        if self.jitter < 0:
            raise ValueError(f"{type(self).__name__}: `jitter` must be >= 0, got {jitter!r}.")
        self.layer = ""
        self.means: np.ndarray | None = None
        self.covariances: np.ndarray | None = None
        self.priors: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    def fit_features(self, features: ArrayLike, labels: ArrayLike) -> _ClassGaussians:
        """Fit the class Gaussians on training features ``(N, D)`` and integer labels ``(N,)``."""
        fn = f"{type(self).__name__}.fit_features"
        z = _features(fn, "features", features)
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != z.shape[0]:
            raise ValueError(
                f"{fn}: `labels` must have {z.shape[0]} entries (one per feature row), got {y.shape[0]}."
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{fn}: `labels` must be integer class labels, got dtype {y.dtype}.")
        classes = np.unique(y)
        if classes.size < 1 or classes[0] < 0:
            raise ValueError(f"{fn}: `labels` must be non-negative integers, got minimum {y.min()}.")
        num_classes = int(y.max()) + 1
        missing = sorted(set(range(num_classes)) - set(classes.tolist()))
        if missing:
            raise ValueError(
                f"{fn}: every class 0..{num_classes - 1} needs a training example; none for {missing}."
            )
        means = np.stack([z[y == c].mean(axis=0) for c in range(num_classes)])
        centred = z - means[y]
        eye = np.eye(z.shape[1])
        scale = float(np.mean(np.var(z, axis=0))) or 1.0
        if self.shared:
            cov = centred.T @ centred / z.shape[0] + self.jitter * scale * eye
        else:
            cov = np.stack(
                [
                    np.atleast_2d(np.cov(centred[y == c], rowvar=False, bias=True))
                    + self.jitter * scale * eye
                    for c in range(num_classes)
                ]
            )
        self.means, self.covariances = means, cov
        self.priors = np.bincount(y, minlength=num_classes) / y.size
        return self

    def fit(
        self, model: keras.Model, x: ArrayLike, labels: ArrayLike, layer: str, batch_size: int = 256
    ) -> _ClassGaussians:
        """Fit on the posterior-mean features of ``model``'s layer ``layer`` for training inputs ``x``."""
        fn = f"{type(self).__name__}.fit"
        names = [lay.name for lay in model.layers]
        if layer not in names:
            raise ValueError(
                f"{fn}: model '{model.name}' has no layer named {layer!r} (`layer`); its layers: {names}."
            )
        self.fit_features(layer_features(model, x, layer, batch_size), labels)
        self.layer = layer
        return self

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self, fn: str) -> None:
        if self.means is None:
            raise ValueError(f"{fn}: not fitted; call fit or fit_features first.")

    def score_features(self, features: ArrayLike) -> np.ndarray:
        """OOD scores ``(N,)`` of features ``(N, D)`` (higher = more out-of-distribution)."""
        fn = f"{type(self).__name__}.score_features"
        self._check_fitted(fn)
        assert self.means is not None
        return self._score(_features(fn, "features", features, self.means.shape[1]))

    def score(self, model: keras.Model, x: ArrayLike, batch_size: int = 256) -> np.ndarray:
        """OOD scores ``(N,)`` of inputs ``x`` through the fitted layer of ``model``."""
        fn = f"{type(self).__name__}.score"
        self._check_fitted(fn)
        if not self.layer:
            raise ValueError(f"{fn}: fitted on features, not on a layer; use score_features.")
        return self.score_features(layer_features(model, x, self.layer, batch_size))

    def _score(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted scorer to an ``.npz`` file (format in the module docstring)."""
        self._check_fitted(f"{type(self).__name__}.save")
        assert self.means is not None and self.covariances is not None and self.priors is not None
        np.savez(
            path,
            kind=np.array(self.kind),
            layer=np.array(self.layer),
            jitter=np.array(self.jitter),
            means=self.means,
            covariances=self.covariances,
            priors=self.priors,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Read a scorer written by :meth:`save`."""
        return load_feature_score(path, expected=cls)


class MahalanobisScore(_ClassGaussians):
    """Smallest class-conditional Mahalanobis distance with a shared covariance (Lee et al., 2018).

    Args:
        jitter: added to the covariance's diagonal, relative to the mean feature variance.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> z = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))]
    >>> s = MahalanobisScore().fit_features(z, np.r_[np.zeros(50, int), np.ones(50, int)])
    >>> bool(s.score_features([[20.0, 20.0]])[0] > s.score_features([[0.0, 0.0]])[0])
    True
    """

    kind = "mahalanobis"
    shared = True

    def _score(self, z: np.ndarray) -> np.ndarray:
        assert self.means is not None and self.covariances is not None
        precision = np.linalg.inv(self.covariances)
        d = z[:, None, :] - self.means[None]  # (N, C, D)
        return np.einsum("ncd,de,nce->nc", d, precision, d).min(axis=1)


class GaussianDensityScore(_ClassGaussians):
    """Negative log density of a Gaussian discriminant model of the features (DDU; Mukhoti et al., 2023).

    Args:
        jitter: added to each class covariance's diagonal, relative to the mean feature variance.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> z = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))]
    >>> s = GaussianDensityScore().fit_features(z, np.r_[np.zeros(50, int), np.ones(50, int)])
    >>> bool(s.score_features([[20.0, 20.0]])[0] > s.score_features([[0.0, 0.0]])[0])
    True
    """

    kind = "gaussian_density"
    shared = False

    def _score(self, z: np.ndarray) -> np.ndarray:
        assert self.means is not None and self.covariances is not None and self.priors is not None
        dim = z.shape[1]
        logs = []
        for mean, cov, prior in zip(self.means, self.covariances, self.priors):
            chol = np.linalg.cholesky(cov)
            sol = np.linalg.solve(chol, (z - mean).T)  # (D, N)
            logdet = 2.0 * np.log(np.diag(chol)).sum()
            logs.append(np.log(prior) - 0.5 * (np.sum(sol**2, axis=0) + logdet + dim * np.log(2 * np.pi)))
        stacked = np.stack(logs, axis=1)
        m = stacked.max(axis=1)
        return -(m + np.log(np.exp(stacked - m[:, None]).sum(axis=1)))


_KINDS: dict[str, type[_ClassGaussians]] = {
    "mahalanobis": MahalanobisScore,
    "gaussian_density": GaussianDensityScore,
}


def load_feature_score(path: str | os.PathLike, expected: type | None = None) -> Any:
    """Read a :class:`MahalanobisScore` or :class:`GaussianDensityScore` from its ``.npz`` file."""
    fn = "load_feature_score"
    with np.load(path, allow_pickle=False) as f:
        kind = str(f["kind"])
        if kind not in _KINDS:
            raise ValueError(
                f"{fn}: {os.fspath(path)!r} holds an unknown kind {kind!r}; expected one of {sorted(_KINDS)}."
            )
        cls = _KINDS[kind]
        if expected is not None and cls is not expected:
            raise ValueError(f"{expected.__name__}.load: {os.fspath(path)!r} holds a {cls.__name__}.")
        obj = cls(jitter=float(f["jitter"]))
        obj.layer = str(f["layer"])
        obj.means, obj.covariances, obj.priors = f["means"], f["covariances"], f["priors"]
    return obj
