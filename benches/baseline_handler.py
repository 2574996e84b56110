"""The baseline: the same notifier built the usual way, for the end-to-end benchmarks.

AWS Lambda Powertools ``BatchProcessor`` + ``process_partial_response`` with
``EventType.DynamoDBStreams`` (records parsed by Powertools' data classes, images deserialized
by boto3's TypeDeserializer), Powertools idempotency (``DynamoDBPersistenceLayer``,
``@idempotent_function`` keyed on ``event_id``: conditional put IN_PROGRESS, update COMPLETED),
boto3 ``sesv2.send_email`` one record after another, and Jinja2 rendering notifier's own
built-in template set (``notifier.templates.builtin_templates()``: subject, text and HTML per
event type, German overrides, shared layouts and macros; HTML autoescaped), compiled once, with
Python versions of the set's two custom filters (``datetime``, ``number``).

Routing is the product's default: INSERT records whose ``event_type`` has a template notify
``user.email``; anything else is skipped. Everything is created once, at build time, as a
well-written Lambda would. The Lambda runtime hands this handler a parsed dict (awslambdaric
parses the payload); the benchmarks charge that parse to the baseline (``simplejson.loads``,
what awslambdaric uses).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["build_baseline_handler"]

EVENT_TYPES = ("profile_view", "friend_request", "application_update")
_SEPARATORS = {"de": (".", ","), "en": (",", ".")}


def _number(value: Any, decimals: int | None = None, locale: str = "en") -> str:
    """``{{ x|number(1, locale="de") }}``: grouped thousands, locale separators."""
    dec = Decimal(str(value))
    if decimals is not None:
        dec = round(dec, decimals)
    text = f"{dec:,f}"
    thousands, point = _SEPARATORS.get(locale.split("-")[0], _SEPARATORS["en"])
    return text.replace(",", "\0").replace(".", point).replace("\0", thousands)


def _datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M", tz: str | None = None) -> str:
    """``{{ epoch|datetime("%b %-d, %Y", tz="Europe/Berlin") }}``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(float(value), ZoneInfo(tz or "UTC")).strftime(fmt)


def build_baseline_handler(
    *,
    templates_dir: str | None = None,
    table: str = "notifier-ledger",
    sender: str = "notifications@example.com",
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Powertools/boto3/Jinja2 handler; AWS endpoints come from the environment."""
    import boto3
    import jinja2
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
        DynamoDBRecordEventName,
    )
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    ses = boto3.client("sesv2")
    persistence = DynamoDBPersistenceLayer(table_name=table, key_attr="pk")
    config = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=7 * 86_400)
    from notifier.templates import builtin_templates

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir or str(builtin_templates())),
        autoescape=lambda name: bool(name and name.endswith(".html")),
        auto_reload=False,  # production setting: templates are compiled once, never re-stat()ed
    )
    env.filters["number"] = _number
    env.filters["datetime"] = _datetime
    parts = ("subject.txt", "body.txt", "body.html")
    compiled = {
        (t, lang): tuple(env.get_template(f"{t}/{lang}{part}") for part in parts)
        for t in EVENT_TYPES
        for lang in ("", "de/")
    }
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    @idempotent_function(
        data_keyword_argument="notification", persistence_store=persistence, config=config
    )
    def notify(*, notification: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        lang = "de/" if str(context["user"].get("locale", "")).startswith("de") else ""
        subject, text, html = compiled[notification["template"], lang]
        response = ses.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [notification["to"]]},
            Content={
                "Simple": {
                    "Subject": {"Data": subject.render(context).strip(), "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": text.render(context), "Charset": "UTF-8"},
                        "Html": {"Data": html.render(context), "Charset": "UTF-8"},
                    },
                }
            },
        )
        return {"message_id": response["MessageId"]}

    def record_handler(record: DynamoDBRecord) -> None:
        if record.event_name != DynamoDBRecordEventName.INSERT or record.dynamodb is None:
            return
        image = record.dynamodb.new_image
        template = image.get("event_type")
        if template not in EVENT_TYPES:
            return
        context = dict(image)
        context["event"] = {
            "name": "INSERT",
            "id": record.event_id,
            "sequence_number": record.dynamodb.sequence_number,
            "approximate_creation_time": record.dynamodb.approximate_creation_date_time,
        }
        notification = {
            "event_id": image["event_id"],
            "to": image["user"]["email"],
            "template": template,
        }
        notify(notification=notification, context=context)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if context is not None:
            config.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler
