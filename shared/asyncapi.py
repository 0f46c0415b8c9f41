"""The bus contract as an AsyncAPI 3.0 document, generated from the code.

Everything comes from the modules that define the contract: the event models
(``shared.events.CATALOGUE``: payload schemas from pydantic, subjects, ce-types), the streams
(``shared.bus.streams``: which stream holds each subject, and its owner, hence
``ce-source``), the envelope (``shared.bus.envelope``: the CloudEvents headers) and the
request-reply submission (``shared.rpc``). FastStream's own generator cannot do this: our
consumers are bound by hand, so it would list channels with empty payloads.

``scripts/gen_event_docs.py`` writes it to ``docs/asyncapi.yaml`` (and a test fails when the
file and the code differ); every service serves it at ``GET /asyncapi.yaml``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.bus.envelope import CONTENT_TYPE, CORRELATION_HEADER, SPECVERSION
from shared.bus.streams import DEAD_LETTER_PREFIX, stream_for_subject
from shared.events import CATALOGUE, SPEC_VERSION, Event
from shared.rpc import SUBMIT_SUBJECT, BusError, BusReceipt, BusSubmission
from shared.units import UNIT_CODE_PATTERN

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_REF = "#/components/schemas/{model}"
UNIT_CODE = UNIT_CODE_PATTERN.strip("^$")
UNIT_PATH_PATTERN = f"^{UNIT_CODE}(\\.{UNIT_CODE}){{0,11}}$"
UNIT_PATH_PARAMETER = {
    "description": (
        "The path of the unit the message speaks for, root first, one subject token per "
        f"level (1 to 12 unit codes matching `{UNIT_CODE_PATTERN}`), e.g. `T89.H886.X30337`. "
        "Subscribe to a subtree with two filters: `<path>` and `<path>.>`."
    ),
    "examples": ["T89", "T89.H886", "T89.H886.X30337"],
}
SERVERS = {
    "local": {
        "host": "127.0.0.1:14222",
        "protocol": "nats",
        "description": "`qcdc up` on this machine (open without --secure).",
    },
    "compose": {
        "host": "nats:4222",
        "protocol": "nats",
        "description": "Docker Compose: credentials from `qcdc nats config` (docs/security.md).",
    },
}


def _summary(cls: type[BaseModel]) -> str:
    text = inspect.getdoc(cls) or ""
    if cls.__doc__ is None or text in (inspect.getdoc(Event), inspect.getdoc(BaseModel)):
        return cls.__name__
    return " ".join(text.replace("``", "`").split())


def _owner(cls: type[Event]) -> tuple[str, str]:
    spec = stream_for_subject(f"{cls.subject_prefix()}.X")
    return spec.name, spec.owner


def _key(cls: type[Event]) -> str:
    """``report.submitted``: the channel's and the message's id in the document."""
    return f"{cls.aggregate}.{cls.event}"


# --- headers --------------------------------------------------------------------------------


def cloudevents_headers() -> dict[str, Any]:
    """The headers every event carries (binary-mode CloudEvents over NATS)."""
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in binary mode, as NATS headers.",
        "required": [
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-time",
            "ce-subject",
            "content-type",
            "Nats-Msg-Id",
        ],
        "properties": {
            "ce-specversion": {"type": "string", "const": SPECVERSION},
            "ce-id": {
                "type": "string",
                "format": "uuid",
                "description": "The event id: unique per event, fixed in the outbox. "
                "Deduplicate on it.",
            },
            "ce-source": {"type": "string", "description": "`/qcdc/<service>`."},
            "ce-type": {"type": "string", "description": "`qcdc.<aggregate>.<event>.v1`."},
            "ce-time": {
                "type": "string",
                "format": "date-time",
                "description": "When the event was recorded: RFC 3339, UTC, with `Z`.",
            },
            "ce-subject": {
                "type": "string",
                "pattern": UNIT_PATH_PATTERN,
                "description": "The unit path, dot-separated: the subject's tail.",
            },
            CORRELATION_HEADER: {
                "type": "string",
                "description": "The chain of work that caused the event; absent: use ce-id.",
            },
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C Trace Context (CloudEvents distributed-tracing "
                "extension): the span that published the event; only when the publishing "
                "service records traces.",
            },
            "tracestate": {
                "type": "string",
                "description": "W3C Trace Context vendor state, with traceparent, if any.",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "Nats-Msg-Id": {
                "type": "string",
                "description": "Equal to ce-id: JetStream drops a re-published copy.",
            },
        },
    }


def _event_headers(cls: type[Event]) -> dict[str, Any]:
    _, owner = _owner(cls)
    return {
        "allOf": [
            {"$ref": SCHEMA_REF.format(model="CloudEventHeaders")},
            {
                "type": "object",
                "properties": {
                    "ce-type": {"type": "string", "const": cls.ce_type()},
                    "ce-source": {"type": "string", "const": f"/qcdc/{owner}"},
                },
            },
        ]
    }


def dead_letter_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The original message's headers (ce-* included) plus these.",
        "required": [
            "qcdc-deadletter-reason",
            "qcdc-original-subject",
            "qcdc-consumer",
            "qcdc-deliveries",
            "Nats-Msg-Id",
        ],
        "properties": {
            "qcdc-deadletter-reason": {"type": "string", "maxLength": 1000},
            "qcdc-deadletter-truncated": {
                "type": "string",
                "description": "Only when the body was cut: `<length> bytes, sha256 <hex>`.",
            },
            "qcdc-original-subject": {"type": "string"},
            "qcdc-consumer": {"type": "string", "description": "`<service>-<consumer>`."},
            "qcdc-deliveries": {"type": "string", "pattern": "^[0-9]+$"},
            "Nats-Msg-Id": {
                "type": "string",
                "description": "`dl-<durable>-<stream>-<stream sequence>`.",
            },
        },
    }


# --- schemas --------------------------------------------------------------------------------


def component_schemas(catalogue: Sequence[type[Event]]) -> dict[str, Any]:
    """Every payload's JSON Schema, with nested models shared under components.schemas
    (pydantic's ``$defs`` would be unreachable inside an AsyncAPI document)."""
    models: list[type[BaseModel]] = [*catalogue, BusSubmission, BusReceipt, BusError]
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = dict(sorted(top.get("$defs", {}).items()))
    schemas["CloudEventHeaders"] = cloudevents_headers()
    schemas["DeadLetterHeaders"] = dead_letter_headers()
    return schemas


# --- channels, operations, messages ---------------------------------------------------------


def _event_parts(cls: type[Event]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    key = _key(cls)
    stream, owner = _owner(cls)
    message = {
        "name": cls.__name__,
        "title": cls.ce_type(),
        "summary": _summary(cls),
        "contentType": CONTENT_TYPE,
        "headers": _event_headers(cls),
        "payload": {"$ref": SCHEMA_REF.format(model=cls.__name__)},
    }
    channel = {
        "address": f"{cls.subject_prefix()}.{{unitPath}}",
        "title": cls.__name__,
        "description": f"Stream `{stream}`, published by the {owner} service. {_summary(cls)}",
        "parameters": {"unitPath": {"$ref": "#/components/parameters/unitPath"}},
        "messages": {cls.__name__: {"$ref": f"#/components/messages/{key}"}},
        "x-jetstream-stream": stream,
    }
    operation = {
        "action": "receive",
        "title": f"Receive {cls.__name__}",
        "summary": f"Read {cls.ce_type()} from stream {stream} (any consumer, any filter).",
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{cls.__name__}"}],
    }
    return channel, operation, message


def _rpc_parts() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    channels = {
        "rpc.report.submit": {
            "address": f"{SUBMIT_SUBJECT}.{{unitPath}}",
            "title": "Report submission (request-reply)",
            "description": (
                "Core NATS request-reply, not a stream: the reports service answers in "
                "its queue group. The unit path is the path of the unit owing the "
                "obligation; a request on another unit's path is refused."
            ),
            "parameters": {"unitPath": {"$ref": "#/components/parameters/unitPath"}},
            "messages": {"BusSubmission": {"$ref": "#/components/messages/rpc.submission"}},
        },
        "rpc.report.submit.reply": {
            "address": None,
            "title": "The requester's reply subject (an inbox)",
            "messages": {
                "BusReceipt": {"$ref": "#/components/messages/rpc.receipt"},
                "BusError": {"$ref": "#/components/messages/rpc.error"},
            },
        },
    }
    operations = {
        "submitReport": {
            "action": "send",
            "title": "Submit a report over the bus",
            "summary": "Send a BusSubmission; the reply is a receipt or an error.",
            "channel": {"$ref": "#/channels/rpc.report.submit"},
            "messages": [{"$ref": "#/channels/rpc.report.submit/messages/BusSubmission"}],
            "reply": {
                "channel": {"$ref": "#/channels/rpc.report.submit.reply"},
                "messages": [
                    {"$ref": "#/channels/rpc.report.submit.reply/messages/BusReceipt"},
                    {"$ref": "#/channels/rpc.report.submit.reply/messages/BusError"},
                ],
            },
        }
    }
    models: list[tuple[str, type[BaseModel]]] = [
        ("submission", BusSubmission),
        ("receipt", BusReceipt),
        ("error", BusError),
    ]
    messages = {
        f"rpc.{name}": {
            "name": model.__name__,
            "summary": _summary(model),
            "contentType": CONTENT_TYPE,
            "payload": {"$ref": SCHEMA_REF.format(model=model.__name__)},
        }
        for name, model in models
    }
    return channels, operations, messages


def _dead_letter_parts() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    channel = {
        "address": f"{DEAD_LETTER_PREFIX}.{{service}}.{{consumer}}",
        "title": "Dead letters",
        "description": "Stream `QCDC_DEADLETTER`: messages a consumer could never handle. "
        "The body is the original body, byte for byte (cut to fit when too large).",
        "parameters": {
            "service": {"description": "The service (or district instance) that gave up."},
            "consumer": {"description": "Its consumer, e.g. `reports`."},
        },
        "messages": {"DeadLetter": {"$ref": "#/components/messages/deadletter"}},
        "x-jetstream-stream": "QCDC_DEADLETTER",
    }
    operation = {
        "action": "receive",
        "title": "Receive dead letters",
        "channel": {"$ref": "#/channels/deadletter"},
        "messages": [{"$ref": "#/channels/deadletter/messages/DeadLetter"}],
    }
    message = {
        "name": "DeadLetter",
        "summary": "A message a consumer gave up on, with the reason.",
        "headers": {"$ref": SCHEMA_REF.format(model="DeadLetterHeaders")},
        "payload": {"description": "The original body."},
    }
    return channel, operation, message


# --- the document ---------------------------------------------------------------------------


def document(catalogue: Sequence[type[Event]] = CATALOGUE) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in catalogue:
        channel, operation, message = _event_parts(cls)
        channels[_key(cls)] = channel
        operations[f"receive{cls.__name__}"] = operation
        messages[_key(cls)] = message
    rpc_channels, rpc_operations, rpc_messages = _rpc_parts()
    channels.update(rpc_channels)
    operations.update(rpc_operations)
    messages.update(rpc_messages)
    channel, operation, message = _dead_letter_parts()
    channels["deadletter"] = channel
    operations["receiveDeadLetters"] = operation
    messages["deadletter"] = message
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "QCDC bus",
            "version": f"1.0.0-{SPEC_VERSION}",
            "description": (
                "Events of the Grassroots Democracy Regulation plan and report workflow, "
                "on NATS JetStream: subjects `qcdc.v1.<aggregate>.<event>.<unit path>`, "
                "binary-mode CloudEvents headers, JSON bodies. Within v1 the contract only "
                "grows. Generated from the code (shared/asyncapi.py); see docs/events.md."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": component_schemas(catalogue),
            "messages": messages,
            "parameters": {"unitPath": UNIT_PATH_PARAMETER},
        },
    }


def render(catalogue: Sequence[type[Event]] = CATALOGUE) -> str:
    header = (
        "# Generated by scripts/gen_event_docs.py from shared/asyncapi.py and the event\n"
        "# models: do not edit by hand. Served by every service at GET /asyncapi.yaml.\n"
    )
    body = yaml.safe_dump(document(catalogue), sort_keys=False, allow_unicode=True, width=100)
    return header + body


@functools.cache
def served() -> bytes:
    """The document as the services serve it (built once per process)."""
    return render().encode("utf-8")
