"""Answers to requests that FastAPI could not validate, whatever bytes they carried.

FastAPI's own handler echoes the request's input in its answer and fails with a 500 when
that input is a body that is not UTF-8 (a non-JSON body on a JSON route); this one shows
such bytes with replacement characters instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's error list: location, input, message."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": jsonable_encoder(_printable(errors))}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, request_validation_error)


def _printable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value
