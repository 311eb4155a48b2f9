"""The OpenAI wire format ``archon serve`` speaks: request, response, stream chunk, model list, error.

Requests accept every field the OpenAI API defines and ignore those a pipeline has no use for
(``temperature``, ``max_tokens``, ``tools``, ...: the pipeline file sets its own), so clients work
unchanged; the fields that are read are type-checked strictly (no ``"1"`` for ``1``), and a wrong one
is a 400 naming the field. The descriptions end up in ``/openapi.json``.

The conversation becomes the pipeline's query (``ChatCompletionRequest.query``): a single user message
is the query text as it is; anything else (a system message, several turns) is rendered as a
transcript, one "Role: text" paragraph per message. The messages themselves travel in
``Query.data["messages"]`` for operators that want the turns.
"""

from __future__ import annotations

__all__ = [
    "ArchonInfo",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "ModelCard",
    "ModelList",
    "ResponseMessage",
    "StreamOptions",
    "UsageInfo",
]

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_serializer,
)

from archon.types import Query

_OPEN = ConfigDict(extra="allow")  # OpenAI fields we do not use are accepted and ignored


def _unicode(v: str) -> str:
    # JSON may escape half of a surrogate pair ("\ud800"); such a string is not text and cannot be
    # sent to a model or stored, so it is the request's mistake.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode: a lone surrogate at position {exc.start}") from None
    return v


#: A string read into the query: strict (no numbers for strings) and real Unicode.
Text = Annotated[StrictStr, AfterValidator(_unicode)]


class ContentPart(BaseModel):
    """One part of a message's content. Only text parts can become a pipeline's query."""

    model_config = _OPEN
    type: StrictStr = Field(..., description="The part's kind; only 'text' is supported.")
    text: Text | None = Field(None, description="The text of a 'text' part.")

    @field_validator("type")
    @classmethod
    def _text_only(cls, v: str) -> str:
        if v != "text":
            raise ValueError(f"only text content is supported (got a '{v}' part)")
        return v

    @field_validator("text")
    @classmethod
    def _has_text(cls, v: str | None) -> str | None:
        if v is None:
            raise ValueError("a text part needs 'text'")
        return v


class ChatMessage(BaseModel):
    """One turn of the conversation."""

    model_config = _OPEN
    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(..., description="Who speaks.")
    content: Text | list[ContentPart] | None = Field(None, description="The text, or a list of text parts.")
    name: Text | None = Field(None, description="An optional speaker name (kept in the rendered query).")

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = _OPEN
    include_usage: StrictBool | None = Field(
        None, description="Send usage in a last chunk with no choices (as OpenAI does); otherwise it rides on the finishing chunk.")


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions. The messages are the pipeline's query; ``model`` picks the pipeline."""

    model_config = _OPEN
    model: StrictStr = Field(..., min_length=1, description="The served pipeline's name (GET /v1/models lists them).")
    messages: list[ChatMessage] = Field(..., min_length=1, description="The conversation; see the README for how it becomes the query.")
    stream: StrictBool | None = Field(False, description="Answer with server-sent events (chat.completion.chunk).")
    stream_options: StreamOptions | None = Field(None, description="Streaming options.")
    n: StrictInt | None = Field(None, description="Must be 1 (or absent): a pipeline gives one answer.")
    user: StrictStr | None = Field(None, description="An end-user id (accepted, not used).")

    @field_validator("n")
    @classmethod
    def _one_answer(cls, v: int | None) -> int | None:
        if v is not None and v != 1:
            raise ValueError("n must be 1: a pipeline gives one answer per request")
        return v

    def query(self) -> Query:
        """The pipeline's query: a lone user message verbatim, else a "Role: text" transcript."""
        msgs = self.messages
        if len(msgs) == 1 and msgs[0].role == "user":
            text = msgs[0].text()
        else:
            text = "\n\n".join(f"{_speaker(m)}: {m.text()}" for m in msgs)
        turns = [{"role": m.role, "content": m.text()} for m in msgs]
        return Query(text, data={"messages": turns})


def _speaker(m: ChatMessage) -> str:
    role = m.role.capitalize()
    return f"{role} ({m.name})" if m.name else role


class UsageInfo(BaseModel):
    """Tokens summed over every model call the pipeline made for this request (cache replays included)."""

    prompt_tokens: int | None = Field(..., description="Prompt tokens over all calls; null when a server did not report them.")
    completion_tokens: int | None = Field(..., description="Completion tokens over all calls; null when a server did not report them.")
    total_tokens: int | None = Field(..., description="Their sum; null when either is unknown.")


class ArchonInfo(BaseModel):
    """What Archon adds to an OpenAI response: where to find the run, and what it cost."""

    run_id: str | None = Field(None, description="The run in the store (archon calls --run ID).")
    pipeline: str = Field(..., description="The pipeline that answered.")
    cost_usd: float | None = Field(None, description="Dollar cost of the calls; null when a price is unknown.")
    calls: int = Field(..., description="Model calls made (cached ones included).")
    cached_calls: int = Field(..., description="Calls answered from the cache.")
    latency_ms: float = Field(..., description="Time the pipeline took.")


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = Field("assistant", description="Always 'assistant'.")
    content: str = Field(..., description="The pipeline's answer.")


class Choice(BaseModel):
    index: int = Field(0, description="Always 0: one answer.")
    message: ResponseMessage
    finish_reason: Literal["stop"] = Field("stop", description="Always 'stop'.")
    logprobs: None = Field(None, description="Not available.")


class ChatCompletionResponse(BaseModel):
    """The answer, in OpenAI's chat.completion shape, plus ``archon``."""

    id: str = Field(..., description="chatcmpl-<hex>.")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(..., description="Unix time the request arrived.")
    model: str = Field(..., description="The pipeline's name.")
    choices: list[Choice]
    usage: UsageInfo
    archon: ArchonInfo


class Delta(BaseModel):
    """New text of a streamed answer (``role`` on the first chunk only)."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def drop_nulls(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = Field(None, description="'stop' on the last chunk with a choice.")
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer (``data: {...}``; the stream ends with ``data: [DONE]``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = Field(None, description="On the final chunk only.")
    archon: ArchonInfo | None = Field(None, description="On the final chunk only.")

    @model_serializer(mode="wrap")
    def drop_nulls(self, handler: Any) -> dict[str, Any]:
        # Nested values are already plain here, so a choice's explicit "finish_reason": null stays.
        return {k: v for k, v in handler(self).items() if v is not None}


class ModelCard(BaseModel):
    id: str = Field(..., description="A served pipeline's name: pass it as 'model'.")
    object: Literal["model"] = "model"
    created: int = Field(..., description="Unix time the server started.")
    owned_by: str = "archon"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str = Field(..., description="What went wrong and, where it helps, the fix.")
    type: str = Field(..., description="invalid_request_error, authentication_error, rate_limit_error, server_error, ...")
    param: str | None = Field(None, description="The request field at fault, if one is.")
    code: str | None = Field(None, description="A stable machine-readable code.")


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape, so OpenAI clients raise their usual exceptions."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    in_flight: int = Field(..., description="Chat completions being answered now.")
    max_in_flight: int = Field(..., description="Beyond this many, requests get 429.")
