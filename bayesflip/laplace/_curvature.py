"""Curvature of the negative log-likelihood: the GGN (or empirical Fisher) in diag, Kronecker or full form.

With per-example Hessian factors ``L_n`` in the output space (``Λ_n = L_n L_nᵀ``,
see ``_likelihood``) and the Jacobian ``J_n = ∂f_n/∂θ``, the generalised
Gauss–Newton is ``H = Σ_n J_nᵀ Λ_n J_n``. For the last Dense layer
``f = Wᵀφ + b`` the Jacobian is closed form (``vec`` is row-major, ``W`` is
``(d, K)``): the kernel block is ``Σ_n φ_n φ_nᵀ ⊗ Λ_n`` and the bias block
``Σ_n Λ_n``.

- ``diag``: the exact diagonal of ``H``.
- ``kron`` (KFAC, Ritter et al. 2018; Martens & Grosse 2015): the kernel block
  ``≈ A ⊗ B`` with ``A = Σ_n φ_n φ_nᵀ`` and ``B = (1/N) Σ_n Λ_n``, exact for one
  example or a constant ``Λ`` (Gaussian regression); the bias is its own block
  ``Σ_n Λ_n = N B`` (exact), and kernel–bias cross terms are dropped (as in
  laplace-torch).
- ``full``: ``H`` over ``[vec W; b]`` (last layer only).
- ``AllLayerDiag``: the exact diagonal over every covered layer from per-example
  Jacobians (``tf.GradientTape.jacobian``); ``AllLayerKron``: KFAC per covered
  Dense layer, its input factor from the layer's inputs and its output factor
  from the per-example gradients at its pre-activation.

Every structure keeps the eigenvalues ``λ`` of its curvature (at observation
noise ``σ = 1``), so the posterior precision ``c H + δ I`` (``c = 1/σ²`` for a
GGN in regression, ``1/σ⁴`` for its empirical Fisher, 1 otherwise) and its log
determinant are cheap for any prior precision ``δ`` and noise.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

STRUCTURES = ("diag", "kron", "full")


def _eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return np.clip(vals, 0.0, None), vecs


class LastLayerCurvature:
    """Curvature of the last Dense layer's ``[vec W; b]`` (one prior-precision group)."""

    structure = ""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray | None):
        self.kernel, self.bias = kernel, bias
        self.d, self.k = kernel.shape
        self.num_examples = 0
        self.groups = ["last_layer"]

    @property
    def theta(self) -> np.ndarray:
        parts = [self.kernel.reshape(-1)] + ([] if self.bias is None else [self.bias])
        return np.concatenate(parts)

    def theta_sq(self) -> np.ndarray:
        return np.array([np.sum(self.theta**2)])

    def num_params(self) -> np.ndarray:
        return np.array([self.theta.size])

    def add(self, phi: np.ndarray, factors: np.ndarray, x=None) -> None:
        raise NotImplementedError

    def finalize(self) -> None:
        """Eigen-decompose what was accumulated."""

    def eigen_groups(self) -> list[np.ndarray]:
        """Per prior-precision group, the eigenvalues of the curvature at ``σ = 1``."""
        raise NotImplementedError

    def f_cov(self, phi: np.ndarray, delta: np.ndarray, c: float, x=None) -> np.ndarray:
        """``Cov[f(x)] = J Σ Jᵀ`` of the linearised model, ``(B, K, K)``."""
        raise NotImplementedError


class LastLayerDiag(LastLayerCurvature):
    structure = "diag"

    def __init__(self, kernel, bias):
        super().__init__(kernel, bias)
        self.h_kernel = np.zeros((self.d, self.k))
        self.h_bias = np.zeros(self.k)

    def add(self, phi, factors, x=None):
        lam_diag = np.sum(factors**2, axis=2)  # (B, K): diag Λ_n
        self.h_kernel += np.einsum("ni,nk->ik", phi**2, lam_diag)
        self.h_bias += lam_diag.sum(0)
        self.num_examples += len(phi)

    def _h(self) -> np.ndarray:
        parts = [self.h_kernel.reshape(-1)] + ([] if self.bias is None else [self.h_bias])
        return np.concatenate(parts)

    def eigen_groups(self):
        return [self._h()]

    def variances(self, delta, c):
        """Posterior variances of the kernel ``(d, K)`` and the bias ``(K,)``."""
        return 1.0 / (c * self.h_kernel + delta[0]), 1.0 / (c * self.h_bias + delta[0])

    def f_cov(self, phi, delta, c, x=None):
        var_w, var_b = self.variances(delta, c)
        v = phi**2 @ var_w + (0.0 if self.bias is None else var_b)
        return np.einsum("nk,kl->nkl", v, np.eye(self.k))


class LastLayerKron(LastLayerCurvature):
    structure = "kron"

    def __init__(self, kernel, bias):
        super().__init__(kernel, bias)
        self.a = np.zeros((self.d, self.d))
        self.b_sum = np.zeros((self.k, self.k))

    def add(self, phi, factors, x=None):
        self.a += phi.T @ phi
        self.b_sum += np.einsum("nkc,nlc->kl", factors, factors)
        self.num_examples += len(phi)

    def finalize(self):
        self.eig_a, self.q_a = _eigh(self.a)
        self.eig_b, self.q_b = _eigh(self.b_sum / max(self.num_examples, 1))

    def eigen_groups(self):
        parts = [np.outer(self.eig_a, self.eig_b).reshape(-1)]
        if self.bias is not None:
            parts.append(self.num_examples * self.eig_b)
        return [np.concatenate(parts)]

    def kernel_scale(self, delta, c):
        """``S`` of the kernel in the eigenbasis: ``(c a_i b_j + δ)^(-1/2)``, ``(d, K)``."""
        return 1.0 / np.sqrt(c * np.outer(self.eig_a, self.eig_b) + delta[0])

    def bias_scale(self, delta, c):
        return 1.0 / np.sqrt(c * self.num_examples * self.eig_b + delta[0])

    def f_cov(self, phi, delta, c, x=None):
        u2 = (phi @ self.q_a) ** 2  # (B, d)
        v = u2 @ self.kernel_scale(delta, c) ** 2  # (B, K) in B's eigenbasis
        if self.bias is not None:
            v = v + self.bias_scale(delta, c)[None] ** 2
        return np.einsum("kj,nj,lj->nkl", self.q_b, v, self.q_b)


class LastLayerFull(LastLayerCurvature):
    structure = "full"

    def __init__(self, kernel, bias):
        super().__init__(kernel, bias)
        p = self.theta.size
        self.h = np.zeros((p, p))

    def jacobian_factor(self, phi, factors) -> np.ndarray:
        """``L_nᵀ J_n`` stacked over examples and columns: ``(B·C, P)``."""
        n, _, cols = factors.shape
        g = np.einsum("ni,nkc->ncik", phi, factors).reshape(n * cols, self.d * self.k)
        if self.bias is not None:
            g = np.concatenate([g, factors.transpose(0, 2, 1).reshape(n * cols, self.k)], axis=1)
        return g

    def add(self, phi, factors, x=None):
        g = self.jacobian_factor(phi, factors)
        self.h += g.T @ g
        self.num_examples += len(phi)

    def finalize(self):
        self.eig, self.vecs = _eigh(self.h)

    def eigen_groups(self):
        return [self.eig]

    def f_cov(self, phi, delta, c, x=None):
        vw = self.vecs[: self.d * self.k].reshape(self.d, self.k, -1)
        jv = np.einsum("ni,ikp->nkp", phi, vw)
        if self.bias is not None:
            jv = jv + self.vecs[self.d * self.k :][None]
        return np.einsum("nkp,p,nlp->nkl", jv, 1.0 / (c * self.eig + delta[0]), jv)


class AllLayerDiag:
    """Exact GGN/EF diagonal over every covered layer's kernel and bias; one group per layer."""

    structure = "diag"

    def __init__(self, parts, chunk: int = 32):
        self.parts = parts
        self.layers = list(parts.covered)
        self.groups = [layer.name for layer in self.layers]
        self.variables = [(i, v) for i, layer in enumerate(self.layers) for v in _layer_variables(layer)]
        self.h = [np.zeros(tuple(v.shape)) for _, v in self.variables]
        self.num_examples = 0
        self.chunk = chunk
        self._jac: Any = None

    def _f(self, x):
        last = self.parts.last
        phi = self.parts.features(x)
        f = tf.matmul(phi, last.kernel)
        return f if last.bias is None else f + last.bias

    def _jacobian(self, x, factors):
        if self._jac is None:
            variables = [v for _, v in self.variables]

            @tf.function(reduce_retracing=True)
            def jac(x, factors):
                with tf.GradientTape() as tape:
                    z = tf.einsum("nk,nkc->nc", self._f(x), factors)
                return tape.jacobian(z, variables, experimental_use_pfor=True)

            self._jac = jac
        return self._jac(x, factors)

    def add(self, phi, factors, x=None):
        for start in range(0, len(factors), self.chunk):
            xs = tf.convert_to_tensor(x[start : start + self.chunk])
            fs = tf.constant(factors[start : start + self.chunk], tf.float32)
            for h, j in zip(self.h, self._jacobian(xs, fs)):
                h += np.sum(np.square(np.asarray(j, np.float64)), axis=(0, 1))
        self.num_examples += len(factors)

    def finalize(self):
        pass

    def _grouped(self, arrays):
        out: list[list[np.ndarray]] = [[] for _ in self.layers]
        for (i, _), a in zip(self.variables, arrays):
            out[i].append(np.asarray(a, np.float64).reshape(-1))
        return [np.concatenate(g) for g in out]

    def eigen_groups(self):
        return self._grouped(self.h)

    def theta_sq(self):
        return np.array([np.sum(t**2) for t in self._grouped([v.numpy() for _, v in self.variables])])

    def num_params(self):
        return np.array([g.size for g in self.eigen_groups()])

    def variances(self, delta, c):
        """Posterior variances per covered variable, in ``variables`` order."""
        return [1.0 / (c * h + delta[i]) for (i, _), h in zip(self.variables, self.h)]

    def f_cov(self, phi, delta, c, x=None):
        k = self.parts.num_outputs
        eye = tf.eye(k, batch_shape=[1])
        covs = []
        variances = self.variances(delta, c)
        for start in range(0, len(x), self.chunk):
            xs = tf.convert_to_tensor(x[start : start + self.chunk])
            factors = tf.tile(eye, [len(xs), 1, 1])
            jacs = self._jacobian(xs, factors)  # (B, K, *shape) each
            cov = 0.0
            for j, var in zip(jacs, variances):
                jf = np.asarray(j, np.float64).reshape(len(xs), k, -1)
                cov = cov + np.einsum("nkp,p,nlp->nkl", jf, var.reshape(-1), jf)
            covs.append(cov)
        return np.concatenate(covs)


def _layer_variables(layer) -> list:
    return [layer.kernel] + ([] if layer.bias is None else [layer.bias])


class AllLayerKron:
    """KFAC over every covered Dense layer: per layer ``A = Σ aaᵀ`` (its inputs), ``B = (1/N) Σ_c g_c g_cᵀ``.

    ``g_c = ∂(L_cᵀ f)/∂z`` is the backpropagated factor at the layer's
    pre-activation ``z`` (read as the gradient with respect to its bias, so every
    covered layer needs a bias); one prior-precision group per layer. The
    linearised output covariance sums the layers' pre-activation covariances
    pushed through ``∂f/∂z``.
    """

    structure = "kron"

    def __init__(self, parts, chunk: int = 32):
        from bayesflip.laplace._model import _weights_of

        self.parts = parts
        self.layers = list(parts.covered)
        self.groups = [layer.name for layer in self.layers]
        self.per_layer = [LastLayerKron(*_weights_of(layer)) for layer in self.layers]
        model = parts.model
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._taps = [
            i for i, layer in enumerate(self.layers) if not any(layer.input is t for t in model.inputs)
        ]
        self._inputs_model = (
            keras.Model(inputs, [self.layers[i].input for i in self._taps]) if self._taps else None
        )
        self.num_examples = 0
        self.chunk = chunk
        self._jac: Any = None

    def _layer_inputs(self, x) -> list[np.ndarray]:
        taps = self._inputs_model(x, training=False) if self._inputs_model is not None else []
        taps = list(taps) if isinstance(taps, (list, tuple)) else [taps]
        found = dict(zip(self._taps, taps))
        return [np.asarray(found.get(i, x), np.float64).reshape(len(x), -1) for i in range(len(self.layers))]

    def _backprop(self, x, factors) -> list[np.ndarray]:
        """``∂(Σ_k L_kc f_k)/∂z_l`` per layer: ``(B, C, out_l)``."""
        if self._jac is None:
            biases = [layer.bias for layer in self.layers]
            last = self.parts.last

            @tf.function(reduce_retracing=True)
            def jac(x, factors):
                with tf.GradientTape() as tape:
                    f = tf.matmul(self.parts.features(x), last.kernel) + last.bias
                    z = tf.einsum("nk,nkc->nc", f, factors)
                return tape.jacobian(z, biases, experimental_use_pfor=True)

            self._jac = jac
        return [np.asarray(g, np.float64) for g in self._jac(x, factors)]

    def add(self, phi, factors, x=None):
        for start in range(0, len(factors), self.chunk):
            xs = tf.convert_to_tensor(x[start : start + self.chunk])
            grads = self._backprop(xs, tf.constant(factors[start : start + self.chunk], tf.float32))
            for kron, a, g in zip(self.per_layer, self._layer_inputs(xs), grads):
                kron.add(a, g.transpose(0, 2, 1))
        self.num_examples += len(factors)

    def finalize(self):
        for kron in self.per_layer:
            kron.finalize()

    def eigen_groups(self):
        return [kron.eigen_groups()[0] for kron in self.per_layer]

    def theta_sq(self):
        return np.array([kron.theta_sq()[0] for kron in self.per_layer])

    def num_params(self):
        return np.array([kron.num_params()[0] for kron in self.per_layer])

    def f_cov(self, phi, delta, c, x=None):
        k = self.parts.num_outputs
        covs = []
        for start in range(0, len(x), self.chunk):
            xs = tf.convert_to_tensor(x[start : start + self.chunk])
            grads = self._backprop(xs, tf.tile(tf.eye(k, batch_shape=[1]), [len(xs), 1, 1]))
            cov = 0.0
            for i, (kron, a, g) in enumerate(zip(self.per_layer, self._layer_inputs(xs), grads)):
                z_cov = kron.f_cov(a, delta[i : i + 1], c)
                cov = cov + np.einsum("nko,nop,nlp->nkl", g, z_cov, g)
            covs.append(cov)
        return np.concatenate(covs)
