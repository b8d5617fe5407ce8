"""``/v1/admin``: the operator's checks of the service's storage (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from loanrisk.service.auth import require
from loanrisk.service.deps import SettingsDep, StorageDep
from loanrisk.serving.auth import ADMIN
from loanrisk.serving.storage_check import StorageReport, check_storage

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[require(ADMIN)])


@router.get(
    "/storage-check",
    summary="Check every stored item",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "clean": False,
                        "checked": {
                            "model_versions": 3,
                            "aliases": 1,
                            "datasets": 2,
                            "jobs": 5,
                            "log_files": 12,
                            "links": 0,
                        },
                        "problems": [
                            {
                                "kind": "dataset",
                                "path": "data/datasets/ds-20261122T130501Z-1f2e3d4c/train.parquet",
                                "problem": "dataset 'ds-20261122T130501Z-1f2e3d4c': data/datasets/"
                                "ds-20261122T130501Z-1f2e3d4c/train.parquet does not match the "
                                "hash its manifest recorded (changed or corrupted since "
                                "processing); refused: process the data again",
                                "repair": "process the data again (loanrisk data process SOURCE, "
                                "or POST /v1/datasets) and train from the new dataset; then "
                                "delete this dataset's folder (or restore the file from a backup)",
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def storage_check(settings: SettingsDep, storage: StorageDep) -> StorageReport:
    """What ``loanrisk storage check`` reports: every model version's and dataset's files
    verified against their recorded hashes; every alias, job record and prediction-log file
    read; every symlink leading out of a local storage. Each bad item is named by its path
    inside the storage, with what is wrong and how to repair it. Reads everything, writes
    nothing: it takes as long as reading the storage once (run it off-peak on a large one).
    Always 200: ``clean`` says whether anything was found."""
    return await run_in_threadpool(check_storage, storage, settings)
