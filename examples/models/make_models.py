"""Save the credit pipeline of credit_models.py as credit_pipeline.joblib:

    python examples/models/make_models.py [OUT.joblib]

The fitted model is deterministic (lbfgs on fixed data), so the file is the same model on
every run; a pickle is tied to the scikit-learn version that wrote it, so rebuild it
here rather than trusting an old one (and never load a .joblib you did not make:
unpickling runs code). The audit:

    fairaudit check examples/models/credit_pipeline.joblib --data examples/models/credit.csv

gives what credit_models.py's docstring says of ``pipeline``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import joblib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from credit_models import pipeline  # noqa: E402


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "credit_pipeline.joblib"
    joblib.dump(pipeline, out)
    print(f"wrote {out}")
