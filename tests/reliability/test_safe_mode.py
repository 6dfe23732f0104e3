"""A tampered ``.keras`` file carrying code is refused under ``safe_mode=True``.

We save a genuine bayesflip model, then edit ``config.json`` inside the zip:
(1) insert a ``Lambda`` layer (its function travels as marshalled bytecode), and
(2) replace a ``DenseFlipout`` activation by a serialized Python lambda.
``keras.saving.load_model(..., safe_mode=True)`` must raise; as controls, the
untampered file loads with ``safe_mode=True`` and the tampered one *does* load
(and run the injected code) with ``safe_mode=False``, so the tampering is real.
"""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from bayesflip import posterior_mean
from bayesflip.layers import DenseFlipout


def _save_model(tmp_path):
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(2, seed=0, name="flip")], name="victim")
    path = tmp_path / "clean.keras"
    model.save(path)
    return model, path


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def _add_lambda_layer(config):
    lam = keras.saving.serialize_keras_object(keras.layers.Lambda(lambda x: x * 2.0, name="evil"))
    config["config"]["layers"].append(lam)


def _lambda_activation(config):
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "DenseFlipout":
            layer["config"]["activation"] = keras.saving.serialize_keras_object(lambda x: x * 2.0)


@pytest.mark.parametrize(
    "edit", [_add_lambda_layer, _lambda_activation], ids=["lambda-layer", "lambda-activation"]
)
def test_tampered_file_is_refused_in_safe_mode(tmp_path, edit):
    model, clean = _save_model(tmp_path)
    keras.saving.load_model(clean, safe_mode=True)  # control: the genuine file loads
    tampered = tmp_path / "tampered.keras"
    _rewrite_config(clean, tampered, edit)
    # Keras re-raises nested deserialization errors as TypeError; the cause is named either way
    # Keras >= 3.12: "... a Python lambda ..."; before: "... a `lambda` object ..."
    refused = r"(Python lambda|`lambda` object)(.|\n)*safe_mode"
    with pytest.raises((ValueError, TypeError), match=refused):
        keras.saving.load_model(tampered, safe_mode=True)
    # control: the tampering is effective (the injected code runs when allowed)
    unsafe = keras.saving.load_model(tampered, safe_mode=False)
    x = np.ones((1, 3), "float32")
    with posterior_mean(unsafe), posterior_mean(model):
        expected = model(x).numpy() * 2.0
        np.testing.assert_allclose(unsafe(x).numpy(), expected, rtol=1e-6)
