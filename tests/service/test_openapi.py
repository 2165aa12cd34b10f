"""The OpenAPI document describes every response and request as clients need them: a client
built from the document alone (no knowledge of the code) fetches JSON, NetCDF and PNG, and the
document itself is valid OpenAPI."""

from __future__ import annotations

import io

import httpx
import jsonschema
import netCDF4
from openapi_spec_validator import validate
from PIL import Image

from ingest.ingestor import Ingestor
from service.api.app import create_app
from service.inference import InferenceWorker
from service.methods_runner import MethodRunner
from tests.service.helpers import API_KEY
from tests.service.live_server import serving


def _spec(settings, redis_conn) -> dict:
    with serving(create_app(settings, redis_conn)) as base_url:
        return httpx.get(f"{base_url}/openapi.json").json()


def test_every_media_type_the_upload_body_the_key_and_the_methods_are_described(
    settings, redis_conn
):
    spec = _spec(settings, redis_conn)
    latest = spec["paths"]["/v1/sites/{site}/nowcast/latest"]["get"]
    media = set(latest["responses"]["200"]["content"])
    assert media == {
        "application/json",
        "application/x-netcdf",
        "image/png",
        "image/gif",
        "application/geo+json",
        "image/tiff; application=geotiff; profile=cloud-optimized",
    }
    assert latest["responses"]["200"]["content"]["application/x-netcdf"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    method = next(p for p in latest["parameters"] if p["name"] == "method")
    assert method["schema"]["enum"] == list(settings.methods)
    upload = spec["paths"]["/v1/sites/{site}/frames"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/x-netcdf", "application/x-hdf5"}
    (scheme_name,) = upload["security"][0]
    scheme = spec["components"]["securitySchemes"][scheme_name]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert "security" not in latest  # reads need no key
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"list_sites", "latest_nowcast", "push_frame", "verification", "healthz"} <= set(ids)
    health = spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]
    assert health["schema"]["$ref"].endswith("/HealthBody")


def test_the_document_is_valid_openapi(settings, redis_conn):
    spec = _spec(settings, redis_conn)
    validate(spec)  # openapi-spec-validator: raises on any violation of the OpenAPI schema
    assert spec["openapi"].startswith("3.")


def test_a_client_built_from_the_document_fetches_json_netcdf_and_png(
    settings, redis_conn, feed, tmp_path
):
    ingestor = Ingestor(settings, redis_conn)
    for path in feed[:6]:
        ingestor.ingest_bytes(path.read_bytes(), str(path))
    worker = InferenceWorker(settings, redis_conn, MethodRunner(settings), consumer="openapi")
    while worker.process_once() > 0:
        pass
    with serving(create_app(settings, redis_conn)) as base_url:
        spec = httpx.get(f"{base_url}/openapi.json").json()
        # the client: find the operation by id, fill its path, ask for the documented type
        path, operation = next(
            (path, op)
            for path, item in spec["paths"].items()
            for op in item.values()
            if op["operationId"] == "latest_nowcast"
        )
        content = operation["responses"]["200"]["content"]
        url = base_url + path.replace("{site}", "synth-01")
        fetched = {
            media: httpx.get(url, headers={"Accept": media})
            for media in content
            if media in ("application/json", "application/x-netcdf", "image/png")
        }
        upload = next(
            op for item in spec["paths"].values() for op in item.values()
            if op["operationId"] == "push_frame"
        )  # fmt: skip
        key_header = spec["components"]["securitySchemes"][next(iter(upload["security"][0]))]
        pushed = httpx.post(
            base_url + "/v1/sites/synth-01/frames",
            content=feed[6].read_bytes(),
            headers={key_header["name"]: API_KEY, "Content-Type": "application/x-netcdf"},
        )
    assert len(fetched) == 3
    for media, response in fetched.items():
        assert response.status_code == 200, (media, response.text[:200])
        assert response.headers["content-type"].split(";")[0] == media
    # JSON: valid against the response schema the document gives (its refs resolved in it)
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(fetched["application/json"].json())
    # PNG: a real image; NetCDF: the forecast
    image = Image.open(io.BytesIO(fetched["image/png"].content))
    assert image.format == "PNG" and image.width > 0
    response = fetched["application/x-netcdf"]
    (tmp_path / "f.nc").write_bytes(response.content)
    with netCDF4.Dataset(tmp_path / "f.nc") as ds:
        assert ds["rainfall_rate"].shape == (15, 32, 32)
    assert pushed.status_code == 201, pushed.text
