"""Calibration of predictive probabilities: metrics, streaming Keras metrics,
temperature scaling and plots.

Example:
>>> from bayesflip import calibration
>>> calibration.brier_score([0, 1], [[1.0, 0.0], [0.0, 1.0]])
0.0
"""

from bayesflip.calibration.metrics import (
    BrierDecomposition,
    CalibrationBins,
    brier_decomposition,
    brier_score,
    calibration_bins,
    calibration_error_from_bins,
    classwise_calibration_error,
    expected_calibration_error,
    interval_coverage,
    negative_log_likelihood,
    quantile_calibration_curve,
    quantile_calibration_error,
)
from bayesflip.calibration.plots import (
    regression_calibration_curve,
    reliability_diagram,
    uncertainty_histogram,
)
from bayesflip.calibration.streaming import BrierScore, ExpectedCalibrationError, NegativeLogLikelihood
from bayesflip.calibration.temperature import TemperatureScaling, fit_temperature

__all__ = [
    "regression_calibration_curve",
    "reliability_diagram",
    "uncertainty_histogram",
    "TemperatureScaling",
    "fit_temperature",
    "BrierScore",
    "ExpectedCalibrationError",
    "NegativeLogLikelihood",
    "BrierDecomposition",
    "CalibrationBins",
    "brier_decomposition",
    "brier_score",
    "calibration_bins",
    "calibration_error_from_bins",
    "classwise_calibration_error",
    "expected_calibration_error",
    "interval_coverage",
    "negative_log_likelihood",
    "quantile_calibration_curve",
    "quantile_calibration_error",
]
