"""Posterior families: how a variational layer perturbs its weights.

Every bayesflip layer takes ``posterior=`` (default ``"gaussian"``). The family
decides the noise ``ΔW`` of one draw and the KL term; the estimators
(``flipout``, ``shared``, ``local``) and the layers are the same for all of them,
because flipout needs only that ``ΔW`` is symmetric and shared by the batch:

=============================  ==============================  =======================  ============
family                         weight ``W``                    learned                  KL
=============================  ==============================  =======================  ============
:class:`MeanFieldGaussian`     ``θ + σ ∘ ε`` (additive)        ``θ``, ``σ``             vs the prior
:class:`GaussianDropConnect`   ``θ ∘ (1 + √α ε)``, fixed α     ``θ``                    none
:class:`VariationalDropout`    ``θ ∘ (1 + √α ε)``              ``θ``, ``α`` (per        log-uniform
                                                               weight or unit)
:class:`Rank1`                 ``W ∘ (s rᵀ)``, ``(s, r)`` a    ``W`` (point), per       factors vs
                               ``K``-component mixture of      component ``s̄, σ_s,``    ``N(1, σ²)``
                               Gaussians, drawn per example    ``r̄, σ_r`` and a bias
:class:`MatrixNormal`          ``θ + L_A (S ∘ E) L_Bᵀ``        ``θ`` (factors given,    vs a Normal
                               (``shared`` estimator only)     e.g. by Laplace)         prior
=============================  ==============================  =======================  ============

The multiplicative families are the perturbations of the flipout paper's
speed-up and LSTM experiments (Wen et al. 2018, §4.2–4.3): Gaussian DropConnect with
drop rate ``p`` is ``α = p / (1 − p)`` (Wang & Manning 2013; Srivastava et al.
2014), and with a learned ``α`` and the log-uniform prior it is variational
dropout (Kingma, Salimans & Welling 2015) in the sparse form of Molchanov,
Ashukha & Vetrov (2017): ``log α`` clipped to ``[-8, 8]``, the additive
reparameterisation ``σ² = α θ²`` for per-weight ``α``, and weights with
``log α > 3`` pruned in posterior-mean predictions (:func:`sparsity` reports
the fraction).

:class:`Rank1` is the rank-1 Bayesian network of Dusenberry et al. (ICML
2020): its draw is not a shared ``ΔW`` but per-example factors,
``op(x ∘ s, W) ∘ r``, exact per example at the cost of one op; see its
docstring for how the estimators and the mixture components map.

The package's modules: ``_families`` (the
``posterior=`` choices), ``_gaussian`` (the per-weight
posterior the core asks for, and the Gaussian one),
``_multiplicative`` (``θ ∘ (1 + √α ε)`` and sparsity), ``_rank1`` (``W ∘ (s rᵀ)``) and
``_matrix_normal`` (``θ + L_A (S ∘ E) L_Bᵀ``, the Kronecker-factored Laplace posterior).
Saved models and configs find the families by their registered name
(``"bayesflip>GaussianDropConnect"``), so configs that say
``"module": "bayesflip.posteriors"`` load as before.

Example:
>>> import numpy as np
>>> from bayesflip.layers import DenseFlipout
>>> layer = DenseFlipout(3, posterior=GaussianDropConnect(rate=0.5), seed=0)
>>> layer(np.ones((2, 4), "float32")).shape
TensorShape([2, 3])
"""

from bayesflip.posteriors._families import (
    GaussianDropConnect,
    MeanFieldGaussian,
    PosteriorFamily,
    Rank1,
    VariationalDropout,
    get,
)
from bayesflip.posteriors._gaussian import (
    ExampleFactors,
    GaussianPosterior,
    WeightPosterior,
    analytic_kl_available,
)
from bayesflip.posteriors._matrix_normal import MatrixNormal, MatrixNormalPosterior
from bayesflip.posteriors._multiplicative import (
    MultiplicativePosterior,
    SparsityReport,
    log_uniform_kl,
    sparsity,
)
from bayesflip.posteriors._rank1 import RandomSignInitializer, Rank1Posterior, tile_for_components

__all__ = [
    "PosteriorFamily",
    "MeanFieldGaussian",
    "GaussianDropConnect",
    "VariationalDropout",
    "Rank1",
    "MatrixNormal",
    "WeightPosterior",
    "ExampleFactors",
    "GaussianPosterior",
    "MultiplicativePosterior",
    "Rank1Posterior",
    "RandomSignInitializer",
    "MatrixNormalPosterior",
    "SparsityReport",
    "analytic_kl_available",
    "log_uniform_kl",
    "sparsity",
    "tile_for_components",
    "get",
]
