"""``/v1/schemas``: named loan schemas on the storage, for datasets to name.

Reading is open to any key that may score (a schema says which fields a loan has); storing
one needs the admin scope. A schema is sent as JSON, or as YAML (``application/yaml``), as
the files ``loanrisk schema infer`` drafts.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_serializer
from starlette.concurrency import run_in_threadpool

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.registry.models import ModelRegistry, check_name
from loanrisk.schema import LoanSchema, parse_schema, schema_from_doc
from loanrisk.schema.files import MAX_SCHEMA_BYTES
from loanrisk.service.auth import require
from loanrisk.service.bodies import JSON, parse_json, require_media_type
from loanrisk.service.deps import ServicesDep
from loanrisk.service.routes.models import ModelDir, VersionRef
from loanrisk.serving.auth import ADMIN, SCORE
from loanrisk.serving.state import store_of

router = APIRouter(tags=["schemas"])
YAML = ("application/yaml", "application/x-yaml", "text/yaml")


class SchemaDoc(BaseModel):
    """A schema as the API answers it: its fields left at their defaults left out, and its
    ``hash`` (the fingerprint datasets and models record) after them."""

    model_config = ConfigDict(frozen=True)

    schema_: LoanSchema

    @model_serializer
    def _with_hash(self) -> dict[str, object]:
        doc: dict[str, object] = self.schema_.model_dump(mode="json", exclude_defaults=True)
        doc["hash"] = self.schema_.fingerprint()
        return doc


class SchemaNames(BaseModel):
    schemas: list[str]


class ModelSchema(BaseModel):
    """The schema a model version scores."""

    model: str
    version: int
    schema_: SchemaDoc = Field(alias="schema")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


@router.get("/v1/schemas", summary="List named schemas", dependencies=[require(SCORE)])
async def list_schemas(services: ServicesDep) -> SchemaNames:
    """Names of the stored schemas and of the built-in one."""
    return SchemaNames(schemas=await run_in_threadpool(store_of(services).names))


@router.get("/v1/schemas/{name}", summary="A named schema", dependencies=[require(SCORE)])
async def get_schema(name: str, services: ServicesDep) -> SchemaDoc:
    """The schema (fields left at their defaults are left out) and its hash."""
    return SchemaDoc(schema_=await run_in_threadpool(store_of(services).get, name))


@router.put(
    "/v1/schemas/{name}",
    summary="Store a named schema",
    dependencies=[require(ADMIN)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["name", "columns"],
                        "properties": {
                            "name": {"type": "string", "description": "The path's name."},
                            "columns": {"type": "array", "minItems": 1, "items": {}},
                        },
                        "description": "A loan schema: "
                        "docs/schema.md; JSON Schema: docs/schema.schema.json",
                    }
                },
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def put_schema(name: str, request: Request, services: ServicesDep) -> SchemaDoc:
    """Validates the schema (422 with one line per problem) and stores it under ``name``,
    which must be the schema's own ``name``. The built-in schema's name is refused (409)."""
    kind = require_media_type(request, (JSON, *YAML), default=JSON)
    body = await request.body()
    if len(body) > MAX_SCHEMA_BYTES:
        raise TooLarge(f"a schema of {len(body):,} bytes: at most {MAX_SCHEMA_BYTES:,}")
    schema = (
        schema_from_doc(parse_json(body), source="body")
        if kind == JSON
        else parse_schema(body, source="body")
    )
    if schema.name != name:
        raise InvalidInput(
            f"the schema is named {schema.name!r}, not {name!r}", details={"field": "name"}
        )
    await run_in_threadpool(store_of(services).put, schema)
    return SchemaDoc(schema_=schema)


@router.get(
    "/v1/models/{name}/schema",
    summary="The schema a model scores",
    dependencies=[require(SCORE)],
)
async def get_model_schema(
    name: str,
    services: ServicesDep,
    ref: VersionRef = None,
    model_directory: ModelDir = None,
) -> ModelSchema:
    """The declared schema the version was trained on: the fields ``/v1/predict`` expects
    (each named; ``null`` for a missing value), their types, ranges and categories."""
    settings = services.settings
    folder = services.storage.resolve(model_directory or settings.model_directory)
    registry = ModelRegistry(services.storage, folder)
    alias = ref or settings.model_alias
    served = services.models.served
    scorer = served.serving()
    if (
        scorer is not None
        and name == served.name
        and alias == served.ref
        and folder == served.registry.root
    ):
        return ModelSchema(
            model=name, version=scorer.version, schema_=SchemaDoc(schema_=scorer.schema)
        )

    def read() -> ModelSchema:
        version = registry.resolve(check_name("model", name), alias)
        doc = SchemaDoc(schema_=registry.schema(name, version))
        return ModelSchema(model=name, version=version, schema_=doc)

    return await run_in_threadpool(read)
