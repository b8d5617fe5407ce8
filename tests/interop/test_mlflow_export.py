"""``loanrisk models export --format mlflow``: MLflow loads the model in a fresh process and
scores raw loans as loanrisk does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage

from ..conftest import REAL_CSV
from ..test_cli import run

#: Loads the model with MLflow in a fresh interpreter, scores the loans, and reports.
LOAD_AND_SCORE = """
import json, sys
import mlflow, pandas as pd
model_dir, loans, out = sys.argv[1:]
model = mlflow.pyfunc.load_model(model_dir)
frame = pd.read_csv(loans)
scored = model.predict(frame)
scored.to_parquet(out)
import loanrisk
booster = mlflow.xgboost.load_model(model_dir)
bad = frame.head(3).astype({"loan_int_rate": object})
bad.loc[1, "loan_int_rate"] = "high"
try:
    model.predict(bad)
    refused = None
except Exception as exc:
    refused = str(exc)
print(json.dumps({"loanrisk": loanrisk.__file__, "trees": booster.num_boosted_rounds(),
                  "columns": list(scored.columns), "refused": refused}))
"""


@pytest.fixture(scope="module")
def exported(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("export") / "loan-default-1"
    done = run(
        "models",
        "export",
        "loan-default@1",
        str(target),
        "--format",
        "mlflow",
        "--storage",
        str(store),
    )
    assert done.returncode == 0, done.stderr
    assert f"written to {target}" in done.stderr
    return target


def test_the_mlmodel_has_both_flavours_a_signature_from_the_schema_and_no_pickle(
    exported: Path, store: Path
) -> None:
    mlmodel = yaml.safe_load((exported / "MLmodel").read_text())
    pyfunc, booster = mlmodel["flavors"]["python_function"], mlmodel["flavors"]["xgboost"]
    assert pyfunc["loader_module"] == "loanrisk.interop.mlflow_pyfunc"
    assert (exported / pyfunc["code"] / "loanrisk" / "inference" / "scorer.py").is_file()
    assert not (exported / pyfunc["code"] / "loanrisk" / "static").exists()
    assert (exported / booster["data"]).is_file() and booster["model_format"] == "ubj"
    schema = ModelRegistry(FsspecStorage(str(store))).schema("loan-default", 1)
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [i["name"] for i in inputs] == list(schema.feature_names)
    kinds = {i["name"]: i["type"] for i in inputs}
    assert kinds["loan_grade"] == "string" and kinds["loan_amnt"] == "any"
    outputs = json.loads(mlmodel["signature"]["outputs"])
    assert [(o["name"], o["type"]) for o in outputs] == [
        ("probability", "double"),
        ("label", "boolean"),
        ("band", "string"),
        ("grade", "string"),
        ("score", "long"),
    ]
    example = json.loads((exported / "input_example.json").read_text())
    assert dict(zip(example["columns"], example["data"][0], strict=True)) == {
        k: float(v) if isinstance(v, int | float) else v for k, v in schema.example_record().items()
    }
    requirements = (exported / "requirements.txt").read_text().split()
    assert any(r.startswith("xgboost-cpu==") for r in requirements)
    assert any(r.startswith("mlflow-skinny==") for r in requirements)
    files = [p for p in exported.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".joblib")]
    assert not [p for p in files if p.read_bytes()[:2] in (b"\x80\x04", b"\x80\x05")]


def test_mlflow_scores_raw_loans_as_loanrisk_does_in_a_fresh_process(
    exported: Path, store: Path, tmp_path: Path
) -> None:
    loans = tmp_path / "loans.csv"
    raw = pd.read_csv(REAL_CSV).drop(columns=["loan_status"]).head(5_000)
    raw.to_csv(loans, index=False)  # whole numbers stay int64, as users' frames have them
    out = tmp_path / "scored.parquet"
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SCORE, str(exported), str(loans), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["loanrisk"].startswith(str(exported / "code")), "scored with its own code"
    assert facts["trees"] == 20 and facts["columns"] == [
        "probability",
        "label",
        "band",
        "grade",
        "score",
    ]
    assert "loan_int_rate" in facts["refused"] and "row 2" in facts["refused"]

    scored = pd.read_parquet(out)
    loaded = ModelRegistry(FsspecStorage(str(store))).load("loan-default", 1)
    ours, _ = Scorer(loaded).score_frame(pd.read_csv(loans))
    assert len(scored) == len(ours) == 5_000
    assert np.abs(scored["probability"].to_numpy() - ours["probability"].to_numpy()).max() <= 1e-6
    assert (scored["label"].to_numpy() == ours["label"].to_numpy()).all()
    assert (scored["band"].astype(str).to_numpy() == ours["band"].astype(str).to_numpy()).all()
    # the grade: the version's master scale, as loanrisk grades the same loans
    assert (scored["grade"].astype(str).to_numpy() == ours["grade"].astype(str).to_numpy()).all()
    assert set(scored["grade"]) <= set(loaded.master_scale.names)
    assert scored["grade"].nunique() > 1


def test_export_refuses_a_used_directory_an_unknown_version_and_another_format(
    store: Path, tmp_path: Path
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    done = run("models", "export", "loan-default@1", str(used), "--storage", str(store))
    assert done.returncode == 2 and "not an empty directory" in done.stderr
    assert [p.name for p in used.iterdir()] == ["keep.txt"]

    missing = tmp_path / "missing"
    done = run("models", "export", "loan-default@9", str(missing), "--storage", str(store))
    assert done.returncode == 2 and "no version 9" in done.stderr
    assert not missing.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["used"]

    done = run(
        "models",
        "export",
        "loan-default@1",
        str(missing),
        "--format",
        "onnx",
        "--storage",
        str(store),
    )
    assert done.returncode == 2 and "onnx" in done.stderr and not missing.exists()
