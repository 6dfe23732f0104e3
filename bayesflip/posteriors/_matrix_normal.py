"""Matrix-normal weight posteriors: ``ΔW = L_A (S ∘ E) L_Bᵀ``, correlated within rows and columns.

A weight of shape ``(..., out)`` is read as a ``rows × cols`` matrix with
``cols = out`` (the output channels) and ``rows`` the product of the other axes
(the inputs of a ``Dense`` kernel, the receptive field of a convolution; 1 for
a bias). One draw is ``ΔW = L_A (S ∘ E) L_Bᵀ`` with ``E ~ N(0, I)``: with
``S = 1`` (the default) ``vec(ΔW) ~ N(0, A ⊗ B)`` (row-major ``vec``),
``A = L_A L_Aᵀ`` over the rows and ``B = L_B L_Bᵀ`` over the columns — the
matrix normal ``MN(θ, A, B)``. A non-constant ``S`` gives the Kronecker-factored
eigenbasis form ``(Q_A ⊗ Q_B) diag(S²) (Q_A ⊗ Q_B)ᵀ`` (``L = Q`` orthogonal),
which is what a Kronecker-factored Laplace posterior with an isotropic prior
is exactly: ``(A ⊗ B + δ I)⁻¹``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bayesflip import random as rnd
from bayesflip.posteriors._families import _ALIASES, PosteriorFamily
from bayesflip.posteriors._gaussian import WeightPosterior


def matrix_shape(shape: tuple) -> tuple[int, int]:
    """``(rows, cols)`` of a weight of shape ``(..., out)``: ``cols = out``, ``rows`` the rest (1 for a vector)."""
    shape = tuple(int(s) for s in shape)
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1, shape[-1]


class MatrixNormalPosterior(WeightPosterior):
    """``W = θ + L_A (S ∘ E) L_Bᵀ`` over one weight tensor (see the module docstring).

    Variables on ``layer``: ``<name>_loc`` (``θ``, trainable) and the
    non-trainable factors ``<name>_row_factor`` (``L_A``, ``rows × rows``),
    ``<name>_col_factor`` (``L_B``, ``cols × cols``) and ``<name>_scale``
    (``S``, ``rows × cols``). At initialisation ``L_A = L_B = I`` and
    ``S = init_scale``, i.e. ``N(θ, init_scale²)`` independently per weight.
    The factors are a *given* posterior (set e.g. by
    :meth:`bayesflip.laplace.LaplaceApproximation.to_bayesian_model`), not
    learned.

    Args:
        layer: the owning Keras layer.
        name: weight name.
        shape: weight shape.
        loc_initializer: Keras initializer of ``θ``.
        init_scale: initial ``S`` (> 0).
        prior: the layer's prior; the KL is the closed form against a
            :class:`~bayesflip.priors.Normal` prior.
    """

    def __init__(self, layer, name: str, shape, loc_initializer, init_scale: float, prior):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.rows, self.cols = matrix_shape(self.shape)
        self.loc = layer.add_weight(
            name=f"{name}_loc", shape=shape, initializer=loc_initializer, trainable=True, autocast=False
        )
        self.row_factor = layer.add_weight(
            name=f"{name}_row_factor",
            shape=(self.rows, self.rows),
            initializer="identity" if self.rows > 1 else "ones",
            trainable=False,
            autocast=False,
        )
        self.col_factor = layer.add_weight(
            name=f"{name}_col_factor",
            shape=(self.cols, self.cols),
            initializer="identity" if self.cols > 1 else "ones",
            trainable=False,
            autocast=False,
        )
        self.scale = layer.add_weight(
            name=f"{name}_scale",
            shape=(self.rows, self.cols),
            initializer=keras.initializers.Constant(init_scale),
            trainable=False,
            autocast=False,
        )
        self.prior = prior
        self.has_kl = prior is not None

    def _factors(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        read = lambda v: tf.convert_to_tensor(v.value, tf.float32)  # noqa: E731
        return read(self.row_factor), read(self.col_factor), read(self.scale)

    def noise_scale(self) -> tf.Tensor:
        """Marginal standard deviation of every entry, ``√(L_A² (S²) (L_B²)ᵀ)``, float32, the weight's shape."""
        la, lb, s = self._factors()
        var = tf.matmul(tf.matmul(tf.square(la), tf.square(s)), tf.square(lb), transpose_b=True)
        return tf.reshape(tf.sqrt(var), self.shape)

    def sample_delta(self, seed: tf.Tensor, scale: tf.Tensor | None = None) -> tf.Tensor:
        """One draw ``L_A (S ∘ E) L_Bᵀ``, ``E ~ N(0, I)`` from ``seed`` (``scale`` is not used)."""
        la, lb, s = self._factors()
        eps = rnd.standard_normal((self.rows, self.cols), seed)
        delta = tf.matmul(tf.matmul(la, s * eps), lb, transpose_b=True)
        return tf.reshape(delta, self.shape)

    def covariance(self) -> np.ndarray:
        """The ``(rows·cols) × (rows·cols)`` covariance of the row-major ``vec(ΔW)`` (NumPy float64; small weights only)."""
        la, lb, s = (np.asarray(t, np.float64) for t in self._factors())
        q = np.kron(la, lb)
        return q @ np.diag(s.reshape(-1) ** 2) @ q.T

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``KL(q ‖ N(m, σ² I))`` in closed form, summed over the weight (float32).

        With ``Σ = (L_A ⊗ L_B) diag(S²) (L_A ⊗ L_B)ᵀ`` and ``d = rows·cols``:
        ``½ [tr Σ / σ² + ‖θ − m‖² / σ² − d + d log σ² − log det Σ]``, where
        ``tr Σ = Σ_ij S_ij² ‖L_A[:, i]‖² ‖L_B[:, j]‖²`` and ``log det Σ =
        2 cols log|det L_A| + 2 rows log|det L_B| + Σ log S²``.
        """
        if self.prior is None:
            return tf.constant(0.0, tf.float32)
        la, lb, s = self._factors()
        var_prior = tf.constant(float(self.prior.scale) ** 2, tf.float32)
        col_a = tf.reduce_sum(tf.square(la), axis=0)
        col_b = tf.reduce_sum(tf.square(lb), axis=0)
        trace = tf.reduce_sum(tf.square(s) * col_a[:, None] * col_b[None, :])
        logdet = (
            2.0 * self.cols * tf.linalg.slogdet(la)[1]
            + 2.0 * self.rows * tf.linalg.slogdet(lb)[1]
            + tf.reduce_sum(tf.math.log(tf.square(s)))
        )
        dim = float(self.rows * self.cols)
        sq = tf.reduce_sum(tf.square(self.mean() - float(self.prior.loc)))
        return 0.5 * (trace / var_prior + sq / var_prior - dim + dim * tf.math.log(var_prior) - logdet)

    def assign_factors(self, row_factor, col_factor, scale=None) -> None:
        """Set ``L_A`` (``rows × rows``), ``L_B`` (``cols × cols``) and ``S`` (``rows × cols``, default ones)."""
        row_factor = np.asarray(row_factor, np.float32).reshape(self.rows, self.rows)
        col_factor = np.asarray(col_factor, np.float32).reshape(self.cols, self.cols)
        scale = (
            np.ones((self.rows, self.cols), np.float32) if scale is None else np.asarray(scale, np.float32)
        )
        if scale.shape != (self.rows, self.cols) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError(
                f"MatrixNormalPosterior '{self.name}': `scale` must be positive and finite with shape "
                f"{(self.rows, self.cols)}, got shape {scale.shape}."
            )
        self.row_factor.assign(row_factor)
        self.col_factor.assign(col_factor)
        self.scale.assign(scale)


def _check_normal_prior(owner: str, prior) -> None:
    from bayesflip.priors import Normal

    if prior is not None and type(prior) is not Normal:
        raise ValueError(
            f"{owner}: posterior=MatrixNormal() has a closed-form KL against a Normal prior only, got "
            f"prior={prior!r}; use bayesflip.priors.Normal(loc, scale)."
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class MatrixNormal(PosteriorFamily):
    """Matrix-normal posterior ``vec(W) ~ N(vec θ, A ⊗ B)``, one draw ``ΔW = L_A (S ∘ E) L_Bᵀ`` for the batch.

    ``A`` (over a kernel's inputs, ``L_A L_Aᵀ``) and ``B`` (over its outputs,
    ``L_B L_Bᵀ``) are stored as square-root factors in non-trainable variables,
    with an elementwise ``S`` that also represents a Kronecker-factored Laplace
    posterior exactly (see :class:`MatrixNormalPosterior`). A bias is a
    ``1 × out`` matrix: its own Gaussian over the outputs, independent of the
    kernel (the block-diagonal split of Kronecker-factored Laplace).

    Only the ``shared`` estimator: one ``ΔW`` for the whole batch, so every
    example sees the matrix normal. Flipout's per-example sign flips
    ``diag(s) ΔW diag(r)`` keep a distribution only when the entries of ``ΔW``
    are independent; for correlated entries every example would see a
    sign-flipped covariance (on average the diagonal ``diag(A) ⊗ diag(B)``,
    the correlations lost), and ``local`` needs independent entries too.
    :func:`bayesflip.uncertainty.mc_predict` draws each sample in its own
    forward pass, so its samples are independent either way.

    KL: closed form against the layer's prior, which must be a
    :class:`bayesflip.priors.Normal` (default ``N(0, 1)``).

    Example:
    >>> import numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(3, posterior=MatrixNormal(), estimator="shared", seed=0)
    >>> layer(np.ones((2, 4), "float32")).shape
    TensorShape([2, 3])
    >>> tuple(layer.kernel_posterior.row_factor.shape), tuple(layer.kernel_posterior.col_factor.shape)
    ((4, 4), (3, 3))
    """

    uses_prior = True
    supported_estimators = ("shared",)

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> MatrixNormalPosterior:
        owner = f"{type(layer).__name__} '{layer.name}'"
        _check_normal_prior(owner, layer.prior)
        return MatrixNormalPosterior(layer, name, shape, loc_initializer, layer.init_scale, layer.prior)


_ALIASES["matrix_normal"] = MatrixNormal
