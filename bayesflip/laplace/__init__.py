"""Laplace approximations: a trained Keras model made Bayesian after training, served by bayesflip layers.

:func:`fit_laplace` fits a Gaussian posterior ``N(θ*, (c H + δ I)⁻¹)`` around
the trained weights ``θ*`` of a deterministic model (or a bayesflip model in
posterior-mean mode) from its training data, in mini-batches: ``H`` is the
generalised Gauss–Newton (or empirical Fisher) of the negative log-likelihood
in a diagonal, Kronecker-factored (KFAC, Ritter et al. 2018) or full form, over
the last Dense layer or every Dense/Conv layer, and ``δ`` the prior precision.
The returned :class:`LaplaceApproximation` tunes ``δ`` (and the regression
noise ``σ``) by the Laplace marginal likelihood (Immer et al. 2021) or a
validation NLL, predicts with the linearised (GLM) or the sampled-network (NN)
predictive, and converts itself into bayesflip layers
(:meth:`LaplaceApproximation.to_bayesian_model`): the diagonal posterior is
the mean-field Gaussian family, the Kronecker-factored one the
:class:`~bayesflip.posteriors.MatrixNormal` family. API and math follow
laplace-torch (Daxberger et al. 2021, "Laplace Redux").

When to use which predictive: the GLM predictive (the default) is the
approximation's consistent predictive and the cheap one; in
the ``laplace`` benchmark (``python -m benchmarks run laplace``: digits and
diabetes) it is on par with the NN predictive for
last-layer KFAC and far better for the all-layer diagonal posterior, where the
NN predictive (weights sampled through the unlinearised network) collapses. Serve a model as layers (export,
conformal, no Jacobians at prediction time) from a last-layer posterior whose
prior precision was validated. Choose the prior precision by validation NLL
when the network was trained without weight decay (the marginal likelihood
then prefers too wide a posterior; see
:meth:`LaplaceApproximation.optimize_prior_precision`).

Layout: ``_model`` (the model cut at its last Dense layer, the covered layers),
``_likelihood`` (output-space Hessians, log-likelihoods, labels),
``_curvature`` (diag / Kronecker / full GGN and EF), ``_marglik`` (the log
marginal likelihood and its maximisation), ``_predictive`` (GLM and NN),
``_convert`` (to bayesflip layers) and ``_fit`` (:func:`fit_laplace`).

Example:
>>> import keras, numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(50, 2)).astype("float32")
>>> y = (x @ np.array([[1.0], [-2.0]]) + 0.1 * rng.normal(size=(50, 1))).astype("float32")
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> net.compile("adam", "mse")
>>> la = fit_laplace(net, x, y, hessian_structure="full", verbose=0).optimize_prior_precision()
>>> pred = la.predict(x[:3])                      # closed-form Gaussian predictive
>>> pred.mean.shape, bool(np.all(pred.total_variance > la.sigma_noise**2))
((3, 1), True)
"""

from bayesflip.laplace._fit import LaplaceApproximation, fit_laplace

__all__ = ["fit_laplace", "LaplaceApproximation"]
