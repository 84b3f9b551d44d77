"""The HTTP layer: FastAPI routes over a Service, and one error shape for every endpoint.

Routes only parse, validate and format; Service does the work. Errors use the OpenAI shape
`{"error": {"message", "type", "param", "code"}}` everywhere (so OpenAI clients raise
BadRequestError with our message): 400 for a bad request, 503 when the index is missing or
refused, 500 for anything unexpected.
"""
from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict

from ..config import ConfigError
from ..embeddings import EMBEDDING_MODELS
from ..errors import GenretrieveError, UsageError
from .page import render_page
from .service import Service

MAX_INPUTS = 2048  # OpenAI's limit on inputs per embeddings request


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # `user` and future OpenAI fields are accepted and unused

    input: Union[str, list[str], list[int], list[list[int]]]
    model: str
    encoding_format: str = "float"
    dimensions: Optional[int] = None


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status_code=status)


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        yield
        await service.stop()

    # no /docs: Swagger UI loads its scripts from a CDN, which offline machines cannot reach; /openapi.json stays
    app = FastAPI(title="genretrieve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
        return error(400, f"{where}: {first.get('msg', 'invalid request')}" if where else str(exc), param=where or None)

    @app.exception_handler(UsageError)
    @app.exception_handler(ConfigError)
    async def usage(request: Request, exc: Exception):
        return error(400, str(exc))

    @app.exception_handler(GenretrieveError)
    async def unavailable(request: Request, exc: GenretrieveError):
        return error(503, str(exc), kind="service_unavailable")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        return error(500, f"{type(exc).__name__}: {exc}", kind="server_error")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return await service.info()

    @app.get("/search")
    async def search(q: str, k: Optional[int] = None, mode: Optional[str] = None, path: Optional[str] = None,
                     safety: Optional[str] = None, hybrid_weight: Optional[float] = None):
        result = await service.search(q, k, mode, path, safety, hybrid_weight)
        return result.to_dict()

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingsRequest):
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts:
            return error(400, "input must not be empty", param="input")
        if len(texts) > MAX_INPUTS:
            return error(400, f"at most {MAX_INPUTS} inputs per request, not {len(texts)}", param="input")
        if not all(isinstance(t, str) for t in texts):
            return error(400, "token arrays are not supported: send the text", param="input")
        if body.model not in EMBEDDING_MODELS:
            return error(400, f"model must be one of {', '.join(EMBEDDING_MODELS)}, not {body.model!r}", param="model")
        if body.encoding_format not in ("float", "base64"):
            return error(400, f"encoding_format must be float or base64, not {body.encoding_format!r}",
                         param="encoding_format")
        if body.dimensions is not None and body.dimensions != service.encoder.dim:
            return error(400, f"this model has {service.encoder.dim} dimensions; it cannot give {body.dimensions}",
                         param="dimensions")
        vectors, tokens = await service.embed(texts, body.model)
        data = [{"object": "embedding", "index": i, "embedding": encode_vector(v, body.encoding_format)}
                for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": body.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @app.get("/", response_class=HTMLResponse)
    async def page(q: str = "", mode: Optional[str] = None, k: Optional[str] = None, safety: Optional[str] = None):
        s = service.config.search
        mode, safety = mode or s.mode, safety or s.safety
        if not q:
            return HTMLResponse(render_page("", mode, s.k, safety))
        if k and not k.strip().isdigit():
            return HTMLResponse(render_page(q, mode, s.k, safety, error=f"k must be a whole number, not {k!r}"),
                                status_code=400)
        k_value = int(k) if k else s.k
        try:
            result = await service.search(q, k_value, mode, None, safety)
        except (UsageError, ConfigError) as exc:
            return HTMLResponse(render_page(q, mode, k_value, safety, error=str(exc)), status_code=400)
        except GenretrieveError as exc:
            return HTMLResponse(render_page(q, mode, k_value, safety, error=str(exc)), status_code=503)
        return HTMLResponse(render_page(q, mode, k_value, safety, result))

    return app


def encode_vector(vector: np.ndarray, encoding_format: str):
    """A float list, or base64 of the little-endian float32 bytes (what OpenAI clients decode)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return np.asarray(vector, dtype=np.float32).tolist()
