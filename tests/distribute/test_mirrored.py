"""MirroredStrategy on two logical CPU devices (run in a subprocess, see _common.py).

References: the one-device run (exact equality where the posterior scale plays
no role), Keras' own ``model.fit`` (same steps), and an independence check of
the replicas' perturbations.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.distribute._common import max_abs_diff as _max_abs_diff
from tests.distribute._common import run_once, run_script

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distribute")]  # subprocesses


@pytest.fixture(scope="session")  # once per (xdist) process, whatever the test order
def results(tmp_path_factory):
    return run_once(
        tmp_path_factory, "mirrored_checks", lambda _: run_script("mirrored_checks.py", timeout=300)
    )


def test_two_replicas(results):
    assert results["num_devices"] == 2


@pytest.mark.parametrize("estimator", ["flipout", "shared"])
def test_replicas_perturb_independently(results, estimator):
    r = results["decorrelation"][estimator]
    runs = np.asarray(r["runs"])  # [run, step, replica, batch, units]
    mean = np.asarray(r["mean"])  # x @ loc: the unperturbed output
    p0, p1 = runs[0, :, 0] - mean, runs[0, :, 1] - mean
    assert np.std(p0) > 0.5 and np.std(p1) > 0.5  # init_scale=0.5: real perturbations
    # Identical draws (Keras' SeedGenerator under MirroredStrategy) would give
    # correlation 1; independent ones ~N(0, 1/sqrt(n)) with n = 2*8*64 = 1024.
    corr = np.corrcoef(p0.ravel(), p1.ravel())[0, 1]
    assert abs(corr) < 0.15, corr
    # successive steps draw anew
    assert not np.allclose(runs[0, 0], runs[0, 1])


@pytest.mark.parametrize("estimator", ["flipout", "shared"])
def test_same_seed_same_run_and_replica0_equals_single_device(results, estimator):
    r = results["decorrelation"][estimator]
    runs = np.asarray(r["runs"])
    np.testing.assert_array_equal(runs[0], runs[1])
    # replica 0 keeps the un-folded stream: equal to a single-device model
    np.testing.assert_allclose(runs[1, :, 0], np.asarray(r["single"]), rtol=1e-5, atol=1e-5)
    # the RNG state copies stay in sync: one counter step per forward pass
    assert results["decorrelation"][f"{estimator}_state_copies"] == [[11, 2], [11, 2]]


@pytest.mark.parametrize("how", ["custom", "fit", "bd.fit", "fit_vd", "fit_rank1"])
def test_elbo_scaling_one_step_matches_one_device(results, how):
    """Posterior-mean mode (no sampling): one SGD step on 2 replicas == 1 device.

    ``fit_vd``: the same with variational dropout layers (learned ``log α``);
    ``fit_rank1``: with rank-1 mixture layers (per-component factors and biases).

    A KL counted once per replica (instead of once per step) or an NLL averaged
    per replica and summed would change both the loss and the update.
    """
    r = results["elbo_scaling"][how]
    assert r["mirrored"]["loss"] == pytest.approx(r["one_device"]["loss"], rel=1e-6)
    assert _max_abs_diff(r["mirrored"]["weights"], r["one_device"]["weights"]) < 1e-6
    # and the update is not trivially zero
    assert _max_abs_diff(r["mirrored"]["weights"], r["mirrored"]["initial"]) > 1e-3


def test_bd_fit_takes_the_same_steps_as_model_fit_under_mirrored(results):
    r = results["fit_vs_model_fit"]
    fit, ours = r["fit"], r["bd.fit"]
    assert _max_abs_diff(fit["weights"], ours["weights"]) < 1e-5
    np.testing.assert_allclose(ours["history"]["loss"], fit["history"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["history"]["acc"], fit["history"]["acc"], rtol=1e-6)
    np.testing.assert_allclose(
        ours["history"]["loss"], np.add(ours["history"]["nll"], ours["history"]["kl"]), rtol=1e-5
    )


def test_streaming_metrics_aggregate_over_replicas(results):
    one, two = results["metrics"]["one_device"], results["metrics"]["mirrored"]
    assert results["metrics"]["mirrored_kl_weight"] == pytest.approx(1 / 32)
    for name in ("loss", "nll", "kl", "acc"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, err_msg=name)
    # accuracy over 64 examples: a multiple of 1/64 (not a per-replica value)
    assert np.allclose(np.asarray(two["acc"]) * 64, np.round(np.asarray(two["acc"]) * 64))
