"""Single import point of TensorFlow Probability.

TFP 0.25 imports ``tf_keras`` on first use; bayesflip depends on ``tf-keras`` for
that reason only and itself uses Keras 3.
"""

import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["tfp", "tfd"]
