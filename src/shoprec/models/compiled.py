"""The ranker's trees compiled to native code: the one module that imports treelite and tl2cgen.

At build time :func:`compile_trees` turns the LightGBM text model into C with TL2cgen
(Treelite's code generator) and compiles it with the system's C compiler into a shared
library, which the artifacts then carry (``ranker.so``: in the manifest, checksummed and
signed like every other file). Serving needs no compiler, only TL2cgen's runtime, which
loads the library: :class:`CompiledTrees`. The compiled trees are the same model, not an
approximation: the build keeps the library only when its scores equal LightGBM's to 1e-6 on
real candidates, and loading checks it again on a fixed probe (:meth:`CompiledTrees.check`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shoprec.errors import ArtifactError

log = logging.getLogger(__name__)

COMPILED_FILE = "ranker.so"
MAX_ABS_DIFF = 1e-6  # what "the same scores" means, here and in the build's check


class CompilerUnavailableError(ArtifactError):
    """No C compiler or no treelite/tl2cgen here: the ranker stays LightGBM's."""


def compile_trees(model_txt: Path, out: Path, *, threads: int | None = None) -> None:
    """Compile the LightGBM text model at ``model_txt`` into the shared library ``out``."""
    compiler = os.environ.get("CC", "gcc")
    if shutil.which(compiler) is None:
        raise CompilerUnavailableError(f"no C compiler ({compiler!r} is not on PATH)")
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        raise CompilerUnavailableError(f"treelite and tl2cgen are not installed ({exc})") from exc
    model = treelite.frontend.load_lightgbm_model(str(model_txt))
    units = max(1, min(8, threads or os.cpu_count() or 1))
    # quantize: thresholds become integer bin indices, each feature is binned once per row and the
    # trees compare integers: the same decisions, two to three times faster here (docs/BENCHMARKS.md)
    params = {"parallel_comp": units, "quantize": 1}
    tl2cgen.export_lib(model, toolchain=compiler, libpath=str(out), params=params, verbose=False)


class CompiledTrees:
    """A compiled tree ensemble: raw scores (margins) for float32 feature rows, NaN = missing."""

    def __init__(self, path: Path) -> None:
        try:
            import tl2cgen
        except ImportError as exc:
            raise CompilerUnavailableError(f"{path}: tl2cgen is not installed ({exc})") from exc
        self._tl2cgen = tl2cgen
        try:
            self._predictor = tl2cgen.Predictor(str(path), nthread=1)
        except Exception as exc:  # tl2cgen raises its own error types (and OSError from dlopen)
            raise ArtifactError(f"{path}: unloadable compiled ranker: {exc}") from exc
        self.num_feature = int(self._predictor.num_feature)

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = np.ascontiguousarray(features, dtype=np.float32)
        out = self._predictor.predict(self._tl2cgen.DMatrix(x, dtype="float32"))
        return np.asarray(out, dtype=np.float32).reshape(len(x))


def probe_features(num_feature: int, rows: int = 256, seed: int = 0) -> npt.NDArray[np.float32]:
    """A fixed matrix to compare two forms of one model on: values of every scale, a tenth missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, num_feature)) * rng.choice([0.1, 1.0, 10.0, 100.0], size=(rows, num_feature))
    x[rng.random(x.shape) < 0.1] = np.nan
    probe: npt.NDArray[np.float32] = x.astype(np.float32)
    return probe
