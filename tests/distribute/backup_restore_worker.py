"""Training process of the fault-tolerance test (killed and restarted by the test).

Usage: python backup_restore_worker.py BACKUP_DIR OUT_NPZ [STALL_EPOCH]

Trains the test model with ``model.fit`` and ``keras.callbacks.BackupAndRestore``.
With STALL_EPOCH it writes ``BACKUP_DIR/../stalled`` after the second batch of
that (0-based) epoch and then waits to be killed, mid-epoch.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.distribute._common import data, make_model  # noqa: E402

EPOCHS = 4


class Stall(keras.callbacks.Callback):
    def __init__(self, epoch: int, marker: str):
        super().__init__()
        self.stall_epoch, self.marker, self.epoch = epoch, marker, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.stall_epoch and batch == 1:
            with open(self.marker, "w") as f:
                f.write("stalled")
            time.sleep(600)  # the test kills us here


def train(backup_dir: str, stall_epoch: int | None = None) -> tuple[keras.Model, dict]:
    x, y = data()
    model = make_model(seed=12, init_scale=0.2, optimizer="adam", lr=0.01)
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir)]
    if stall_epoch is not None:
        callbacks.append(Stall(stall_epoch, os.path.join(os.path.dirname(backup_dir), "stalled")))
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return model, {"epochs": history.epoch, "loss": history.history["loss"]}


if __name__ == "__main__":
    stall = int(sys.argv[3]) if len(sys.argv) > 3 else None
    model, info = train(sys.argv[1], stall)
    np.savez(sys.argv[2], *model.get_weights())
    with open(sys.argv[2] + ".json", "w") as f:
        json.dump(info, f)
