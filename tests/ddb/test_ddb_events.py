"""decode_stream_event: documented events, both input kinds, lazy images, get() and raw."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from ddb_helpers import canon

from notifier import samples
from notifier.ddb import StreamRecord, decode_stream_event, deserialize_image

Fn = Callable[[Any], Any]


@pytest.fixture
def sample_records(load_event: Callable[[str], bytes]) -> Callable[[str], list[StreamRecord]]:
    """Factory: the AWS sample event decoded from bytes, str or the parsed dict."""

    def decode(kind: str) -> list[StreamRecord]:
        raw = load_event("aws_sample.json")
        event: Any = {"bytes": raw, "str": raw.decode(), "dict": json.loads(raw)}[kind]
        return decode_stream_event(event)

    return decode


@pytest.mark.parametrize("kind", ["bytes", "str", "dict"])
def test_aws_sample_event_decodes_to_the_documented_values(
    sample_records: Callable[[str], list[StreamRecord]], kind: str
) -> None:
    # GIVEN the Lambda developer guide's sample event WHEN decoded
    insert, modify, remove = sample_records(kind)
    # THEN the three records carry the documented fields and images
    assert [r.index for r in (insert, modify, remove)] == [0, 1, 2]
    assert [r.event_name for r in (insert, modify, remove)] == ["INSERT", "MODIFY", "REMOVE"]
    assert [r.event_id for r in (insert, modify, remove)] == ["1", "2", "3"]
    assert [r.sequence_number for r in (insert, modify, remove)] == ["111", "222", "333"]
    assert [r.size_bytes for r in (insert, modify, remove)] == [26, 59, 38]
    assert {r.aws_region for r in (insert, modify, remove)} == {"us-west-2"}
    assert {r.event_source_arn for r in (insert, modify, remove)} == {"stream-ARN"}
    assert {r.stream_view_type for r in (insert, modify, remove)} == {"NEW_AND_OLD_IMAGES"}
    assert insert.approximate_creation_time is None
    assert insert.keys == {"Id": Decimal("101")}
    assert insert.new_image == {"Message": "New item!", "Id": Decimal("101")}
    assert insert.old_image is None
    assert modify.old_image == {"Message": "New item!", "Id": Decimal("101")}
    assert modify.new_image == {"Message": "This item has changed", "Id": Decimal("101")}
    assert remove.new_image is None
    assert remove.old_image == {"Message": "This item has changed", "Id": Decimal("101")}
    assert remove.get("Message") == "This item has changed"


def test_every_attribute_type_from_a_moto_shaped_record(
    load_event: Callable[[str], bytes], boto_deserialize: Fn
) -> None:
    # GIVEN a moto-shaped record (fractional creation time) holding every type
    raw = load_event("moto_stream_record.json")
    image = json.loads(raw)["Records"][0]["dynamodb"]["NewImage"]
    expected = canon({k: boto_deserialize(v) for k, v in image.items()})
    # WHEN decoded from bytes and from the dict
    for event in (raw, json.loads(raw)):
        (rec,) = decode_stream_event(event)
        # THEN the image equals boto3's and the time keeps its fraction
        assert canon(rec.new_image) == expected
        assert rec.approximate_creation_time == pytest.approx(1767225600.123456)
        assert rec.new_image["emoji"] == "\U0001f600 café"
        assert rec.get("steps") == [{"at": Decimal("1E2")}, [], {}]


def test_generated_batches_match_boto3_from_bytes_and_dict(boto_deserialize: Fn) -> None:
    # GIVEN a realistic generated batch (85% INSERT / 10% MODIFY / 5% REMOVE)
    event = samples.make_stream_event(60, seed=3)
    raw = json.dumps(event).encode()
    # WHEN decoded from bytes and from the dict
    for records in (decode_stream_event(raw), decode_stream_event(event)):
        # THEN each record's fields and images equal the source and boto3's decoding
        assert len(records) == 60
        for rec, src in zip(records, event["Records"], strict=True):
            ddb = src["dynamodb"]
            assert rec.event_name == src["eventName"]
            assert rec.sequence_number == ddb["SequenceNumber"]
            assert rec.approximate_creation_time == float(ddb["ApproximateCreationDateTime"])
            for attr, key in (("new_image", "NewImage"), ("old_image", "OldImage")):
                want = ddb.get(key)
                got = getattr(rec, attr)
                if want is None:
                    assert got is None
                else:
                    assert canon(got) == canon({k: boto_deserialize(v) for k, v in want.items()})
            assert json.loads(rec.raw) == src


def test_images_are_built_once_and_cached() -> None:
    # GIVEN a decoded record WHEN its image is read twice THEN the same dict comes back
    (rec,) = decode_stream_event(json.dumps(samples.make_stream_event(1)).encode())
    assert rec.new_image is rec.new_image
    assert rec.keys is rec.keys


def test_get_reads_one_value_by_dotted_path() -> None:
    # GIVEN a record of user 7
    (rec,) = decode_stream_event(json.dumps(samples.make_stream_event(1, start=7)).encode())
    # WHEN values are read by path THEN they match the image, with defaults for misses
    assert rec.get("user.email") == samples.user_email(7)
    assert rec.get("created_at") == rec.new_image["created_at"]
    assert rec.get("user.nope") is None
    assert rec.get("user.email.deeper", "dflt") == "dflt"
    assert rec.get("missing", 5) == 5


def test_native_numbers_apply_to_images_and_get() -> None:
    # GIVEN an event decoded with numbers="native"
    raw = json.dumps(samples.make_stream_event(1, start=2)).encode()
    (rec,) = decode_stream_event(raw, numbers="native")
    (exact,) = decode_stream_event(raw)
    # THEN numbers are ints when integral, else floats, in images and via get()
    assert type(rec.get("created_at")) is int
    assert rec.get("created_at") == exact.get("created_at")
    score = exact.new_image["data"]["score"]
    want = int(score) if score == score.to_integral_value() else float(score)
    assert type(rec.new_image["data"]["score"]) is type(want)
    assert rec.new_image["data"]["score"] == want


def test_raw_is_the_record_text_from_bytes_and_json_from_dict() -> None:
    # GIVEN a two-record event in compact and indented JSON
    event = samples.make_stream_event(2)
    for raw in (json.dumps(event), json.dumps(event, indent=2)):
        # WHEN decoded from text THEN raw is exactly the slice of that record
        records = decode_stream_event(raw)
        for rec, src in zip(records, event["Records"], strict=True):
            assert rec.raw in raw
            assert json.loads(rec.raw) == src
    # WHEN decoded from the dict THEN raw is equivalent JSON
    for rec, src in zip(decode_stream_event(event), event["Records"], strict=True):
        assert json.loads(rec.raw) == src


@pytest.mark.parametrize("kind", ["bytes", "str", "bytearray"])
@pytest.mark.parametrize("images", ["python", "tree", "lazy"])
def test_records_outlive_the_event_text_they_were_decoded_from(kind: str, images: str) -> None:
    # GIVEN an event with non-ASCII text (a str caches its UTF-8 form), as bytes, str or bytearray
    event = samples.make_stream_event(3)
    event["Records"][1]["dynamodb"]["NewImage"]["user"]["M"]["name"] = {"S": "Zoë Ådahl 🙂"}
    text = json.dumps(event, ensure_ascii=False)
    source: Any = {"bytes": text.encode(), "str": text, "bytearray": bytearray(text.encode())}[kind]
    records = decode_stream_event(source, images=images)
    # WHEN the event object is changed (where it can be) and dropped, and memory is reused
    if isinstance(source, bytearray):
        source[:] = b"x" * len(source)
    del source
    gc.collect()
    _ = [bytes(range(256)) * 64 for _ in range(200)]
    # THEN each record still reads its own text: raw slices, lazily built images, paths
    for rec, src in zip(records, event["Records"], strict=True):
        assert json.loads(rec.raw) == src
        assert rec.new_image == deserialize_image(src["dynamodb"]["NewImage"])
    assert records[1].get("user.name") == "Zoë Ådahl 🙂"


def test_records_are_immutable() -> None:
    (rec,) = decode_stream_event(json.dumps(samples.make_stream_event(1)).encode())
    with pytest.raises(AttributeError):
        rec.event_name = "REMOVE"  # type: ignore[misc]
    assert "INSERT" in repr(rec)


@pytest.mark.parametrize("images", ["python", "tree"])
def test_short_string_values_are_shared_within_a_batch_and_stay_exact(images: str) -> None:
    # GIVEN a batch whose short values repeat, with thousands of distinct short and
    # long values beside them (more than the batch's table of shared strs holds)
    def record(i: int) -> dict[str, Any]:
        image = {
            "locale": {"S": "de-AT"},
            "short": {"S": f"v{i:05d}"},
            "long": {"S": f"a-value-longer-than-sixteen-bytes-{i}"},
            "tags": {"SS": [f"t{i % 7}", "same"]},
            "list": {"L": [{"S": f"v{i:05d}"}, {"S": ""}, {"S": "ü" * (i % 9)}]},
        }
        rec = samples.make_stream_event(1, start=i)["Records"][0]
        rec["dynamodb"]["NewImage"] = image
        return rec

    n = 3000
    raw = json.dumps({"Records": [record(i) for i in range(n)]}).encode()
    # WHEN decoded into dicts
    images_ = [r.new_image for r in decode_stream_event(raw, images=images)]
    # THEN every value is the record's own
    for i, image in enumerate(images_):
        assert image == {
            "locale": "de-AT",
            "short": f"v{i:05d}",
            "long": f"a-value-longer-than-sixteen-bytes-{i}",
            "tags": {f"t{i % 7}", "same"},
            "list": [f"v{i:05d}", "", "ü" * (i % 9)],
        }
    # AND a repeated short value is one shared str (a table of recent ones: the
    # next record's), a long one is built per record
    assert images_[0]["locale"] is images_[1]["locale"]
    assert images_[0]["short"] is images_[0]["list"][0]
    assert images_[1]["long"] is not images_[2]["long"]
