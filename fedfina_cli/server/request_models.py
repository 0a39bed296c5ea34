"""The API's request bodies and parameters as pydantic models, checked by the rules of
core/validation.py; their failures become the seed's 422 shape: ``errors: [{"field", "message"}]``.

The body is read (with its size limit) before the model sees it, so FastAPI's own body
parsing is not used: the webhook needs its raw bytes for the signature, and a size limit
must hold while a body streams in.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fedfina_cli.core import validation
from fedfina_cli.core.errors import InvalidValue
from fedfina_cli.server.http import Refused

_Model = TypeVar("_Model", bound=BaseModel)


def _checked(check: Any, value: str) -> str:
    try:
        return str(check(value))
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


class _Conversation(BaseModel):
    """A conversation's id, and optionally its account, as every route takes them."""

    model_config = ConfigDict(strict=True)

    conversation_id: str
    account_id: str | None = None

    @field_validator("conversation_id")
    @classmethod
    def _conversation(cls, value: str) -> str:
        return _checked(validation.conversation_id, value)

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return None if value is None else _checked(validation.account_id, value)


class PostprocessRequest(_Conversation):
    """POST /api/v1/postprocess/conversation (other fields are ignored). The account and the
    recipient may be left out when the conversation carries them in its dynamic variables."""

    model_config = ConfigDict(extra="ignore", strict=True)

    email_id: str | None = None

    @field_validator("email_id")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _checked(validation.email_address, value)


class StatusQuery(_Conversation):
    """GET /api/v1/postprocess/conversation/{conversation_id}[?account_id=]."""


def parsed(model: type[_Model], values: dict[str, Any]) -> _Model:
    """``values`` as ``model``, or 422 naming each field and what is wrong with it."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise Refused(422, "invalid request", errors=[_field_error(e) for e in exc.errors()]) from None


def _field_error(found: Any) -> dict[str, str]:
    field = ".".join(str(part) for part in found["loc"]) or "body"
    if found["type"] == "missing":
        return {"field": field, "message": "required"}
    if found["type"] == "string_type":
        return {"field": field, "message": "must be a string"}
    cause = (found.get("ctx") or {}).get("error")
    return {"field": field, "message": str(cause) if cause is not None else found["msg"]}
