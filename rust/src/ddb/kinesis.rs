//! Kinesis Data Streams for DynamoDB: Lambda Kinesis events whose records
//! carry a DynamoDB change record, base64-encoded, in `kinesis.data`.
//!
//! Each record decodes on its own (and fails on its own: a bad base64 payload
//! or bad inner JSON is that record's error) into the same [`RecordData`] as a
//! DynamoDB Streams record, with:
//! - `sequence_number`: the KINESIS `sequenceNumber` (the batch-item-failure
//!   identifier Lambda expects for Kinesis sources);
//! - `event_id`: the change record's `eventID`;
//! - `event_source_arn`: the Kinesis stream's ARN (the outer `eventSourceARN`);
//! - `aws_region`: the change record's `awsRegion`, else the outer one;
//! - `approximate_creation_time`: in SECONDS (see [`creation_seconds`]).
use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{redact_serde, DecodeErr};
use super::event::{decode_record_json_with, RecordData, RecordFailure};
use super::fast::{self, Want};

/// The fields of a Kinesis record the decoder reads (the envelope around the payload).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outer {
    pub sequence_number: Option<String>,
    pub data: Option<String>,
    pub event_source_arn: Option<String>,
    pub aws_region: Option<String>,
}

/// One record of a decoded Kinesis event: where its text lies in the event,
/// its decoded payload (the change record's JSON, when base64 and UTF-8 were
/// valid) and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisRecord {
    pub raw: Range<usize>,
    pub payload: Option<String>,
    pub result: Result<RecordData, RecordFailure>,
}

/// `ApproximateCreationDateTime` of a change record read from Kinesis, in
/// epoch seconds. Kinesis carries it in milliseconds or microseconds (the
/// table's `ApproximateCreationDateTimePrecision`), and the record does not
/// say which; the magnitude does: from 1e14 it is microseconds (1e14 us is
/// March 1973, 1e14 ms the year 5138), below it milliseconds. Both units are
/// right for every date from 1973 to 5138 (the feature dates from 2020).
pub fn creation_seconds(value: f64) -> f64 {
    if value.abs() >= 1e14 {
        value / 1e6
    } else {
        value / 1e3
    }
}

/// A record's one-pass decoder of the payload: given the record's index, the
/// change record's text and the Kinesis sequence number, its data (`None`
/// sends it to the reference decoder, which gives the exact error).
pub(crate) type InnerFn<'f> = dyn FnMut(usize, &str, String) -> Option<RecordData> + 'f;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct OuterJson<'a> {
    #[serde(borrow)]
    kinesis: Option<KinesisJson<'a>>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    #[serde(rename = "awsRegion")]
    aws_region: Option<String>,
}

#[derive(Deserialize)]
struct KinesisJson<'a> {
    #[serde(rename = "sequenceNumber")]
    sequence_number: Option<String>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// The envelope fields of one Kinesis record's JSON text.
pub fn outer_from_json(raw: &str) -> Result<Outer, DecodeErr> {
    let o: OuterJson<'_> =
        serde_json::from_str(raw).map_err(|e| DecodeErr::new(redact_serde(&e.to_string())))?;
    let (sequence_number, data) = match o.kinesis {
        Some(k) => (k.sequence_number, k.data.map(Cow::into_owned)),
        None => return Err(DecodeErr::new("missing required field \"kinesis\"")),
    };
    Ok(Outer {
        sequence_number,
        data,
        event_source_arn: o.event_source_arn,
        aws_region: o.aws_region,
    })
}

/// The change record's JSON text: `data` base64-decoded (standard alphabet,
/// padded) and checked to be UTF-8. Errors name the problem, never the data.
pub fn payload(data: &str) -> Result<String, DecodeErr> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim_ascii())
        .map_err(|_| {
            DecodeErr::new(format!(
                "invalid base64 ({} characters)",
                data.chars().count()
            ))
        })?;
    String::from_utf8(bytes).map_err(|e| {
        DecodeErr::new(format!(
            "payload is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Decode Kinesis record `index` from its envelope fields: the payload text
/// (when it could be read) and the outcome. Errors carry their path from the
/// event (`Records[3].kinesis.data.dynamodb.Keys: ...`).
pub(crate) fn decode_outer(
    index: usize,
    outer: Outer,
    inner: &mut InnerFn<'_>,
) -> (Option<String>, Result<RecordData, RecordFailure>) {
    let at = |e: DecodeErr| e.within_index(index).within_key("Records");
    let sequence_number = outer.sequence_number.clone();
    let fail = |error: DecodeErr, event_id: Option<String>| RecordFailure {
        error: at(error),
        event_id,
        sequence_number: sequence_number.clone(),
    };
    let Some(seq) = outer.sequence_number else {
        let e = DecodeErr::new("missing required field \"sequenceNumber\"").within_key("kinesis");
        return (None, Err(fail(e, None)));
    };
    let Some(data) = outer.data else {
        let e = DecodeErr::new("missing required field \"data\"").within_key("kinesis");
        return (None, Err(fail(e, None)));
    };
    let text = match payload(&data) {
        Ok(t) => t,
        Err(e) => {
            let e = e.within_key("data").within_key("kinesis");
            return (None, Err(fail(e, None)));
        }
    };
    let decoded = match inner(index, &text, seq.clone()) {
        Some(d) => Ok(d),
        None => decode_record_json_with(&text, Some(seq)),
    };
    let result = match decoded {
        Ok(mut d) => {
            d.approximate_creation_time = d.approximate_creation_time.map(creation_seconds);
            d.event_source_arn = outer.event_source_arn;
            if d.aws_region.is_none() {
                d.aws_region = outer.aws_region;
            }
            Ok(d)
        }
        Err(e) => {
            let event_id = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("eventID")?.as_str().map(str::to_owned));
            Err(fail(e.within_key("data").within_key("kinesis"), event_id))
        }
    };
    (Some(text), result)
}

/// The one-pass decoder for `want`, usable as an [`InnerFn`]: the record must
/// be the whole payload (surrounding whitespace allowed).
pub(crate) fn inner_fast(want: Want) -> impl FnMut(usize, &str, String) -> Option<RecordData> {
    move |_, text, seq| {
        let start = text.len() - text.trim_start().len();
        let (data, end) = fast::record_with(text, start, want, Some(seq))?;
        text.get(end..)?.trim().is_empty().then_some(data)
    }
}

/// Decode a Kinesis event's JSON text. `Err` only for a malformed envelope
/// (not JSON, no `Records` list); record failures are per record. With
/// `stop_on_error` the records after the first failure are not decoded.
pub fn decode_kinesis_str(
    text: &str,
    stop_on_error: bool,
) -> Result<Vec<KinesisRecord>, DecodeErr> {
    decode_kinesis_using(text, stop_on_error, &mut inner_fast(Want::Trees))
}

/// [`decode_kinesis_str`] with `inner` decoding each payload in one pass.
pub(crate) fn decode_kinesis_using(
    text: &str,
    stop_on_error: bool,
    inner: &mut InnerFn<'_>,
) -> Result<Vec<KinesisRecord>, DecodeErr> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        DecodeErr::new(format!(
            "not a Kinesis event (expected {{\"Records\": [...]}}): {}",
            redact_serde(&e.to_string())
        ))
    })?;
    let base = text.as_ptr() as usize;
    let mut out = Vec::with_capacity(envelope.records.len());
    for (index, raw) in envelope.records.iter().enumerate() {
        let slice = raw.get();
        let start = (slice.as_ptr() as usize).saturating_sub(base);
        let (payload, result) = match outer_from_json(slice) {
            Ok(outer) => decode_outer(index, outer, inner),
            Err(e) => {
                let sequence_number = serde_json::from_str::<serde_json::Value>(slice)
                    .ok()
                    .and_then(|v| {
                        v.get("kinesis")?
                            .get("sequenceNumber")?
                            .as_str()
                            .map(str::to_owned)
                    });
                let failure = RecordFailure {
                    error: e.within_index(index).within_key("Records"),
                    event_id: None,
                    sequence_number,
                };
                (None, Err(failure))
            }
        };
        let failed = result.is_err();
        out.push(KinesisRecord {
            raw: start..start + slice.len(),
            payload,
            result,
        });
        if failed && stop_on_error {
            break;
        }
    }
    Ok(out)
}

/// Whether raw event text is a Kinesis event: the first `"eventSource"` member
/// in the text has the value `"aws:kinesis"`. Cheap (a substring search that
/// stops at the first record's `eventSource`), and exact for Lambda's events:
/// the text `"eventSource"` (quotes unescaped) cannot occur inside a JSON string,
/// and an image attribute of that name has an object (`{"S": ...}`) as its value.
pub fn is_kinesis_text(text: &str) -> bool {
    const KEY: &str = "\"eventSource\"";
    let Some(at) = text.find(KEY) else {
        return false;
    };
    let rest = text.get(at + KEY.len()..).unwrap_or("").trim_start();
    match rest.strip_prefix(':') {
        Some(v) => v.trim_start().starts_with("\"aws:kinesis\""),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const CHANGE: &str = r#"{"awsRegion":"us-east-1","eventID":"a1b2","eventName":"MODIFY",
        "userIdentity":null,"recordFormat":"application/json","tableName":"users",
        "dynamodb":{"ApproximateCreationDateTime":1733371200123,"Keys":{"pk":{"S":"u#1"}},
          "NewImage":{"pk":{"S":"u#1"},"n":{"N":"2"}},"OldImage":{"pk":{"S":"u#1"},"n":{"N":"1"}},
          "SizeBytes":40},"eventSource":"aws:dynamodb"}"#;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn record(data: &str, seq: &str) -> String {
        format!(
            r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"pk","sequenceNumber":"{seq}",
            "data":"{data}","approximateArrivalTimestamp":1733371200.5}},"eventSource":"aws:kinesis",
            "eventVersion":"1.0","eventID":"shardId-000000000000:{seq}","eventName":"aws:kinesis:record",
            "invokeIdentityArn":"arn:aws:iam::1:role/r","awsRegion":"eu-west-1",
            "eventSourceARN":"arn:aws:kinesis:eu-west-1:1:stream/s"}}"#
        )
    }

    fn event(records: &[String]) -> String {
        format!("{{\"Records\":[{}]}}", records.join(","))
    }

    #[test]
    fn decodes_a_change_record_with_the_kinesis_identifiers() {
        let text = event(&[record(&b64(CHANGE), "4960")]);
        assert!(is_kinesis_text(&text));
        let out = decode_kinesis_str(&text, false).expect("envelope is fine");
        let rec = out.first().expect("one record");
        let data = rec.result.as_ref().expect("decodes");
        assert_eq!(data.sequence_number, "4960");
        assert_eq!(data.event_id, "a1b2");
        assert_eq!(data.event_name, "MODIFY");
        assert_eq!(data.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(
            data.event_source_arn.as_deref(),
            Some("arn:aws:kinesis:eu-west-1:1:stream/s")
        );
        assert_eq!(data.approximate_creation_time, Some(1_733_371_200.123));
        assert_eq!(data.size_bytes, Some(40));
        assert!(data.new_image.is_some() && data.old_image.is_some());
        assert_eq!(rec.payload.as_deref(), Some(CHANGE));
        // the one-pass and the reference decoders agree
        let reference = decode_record_json_with(CHANGE, Some("4960".into())).expect("ok");
        let mut d = reference;
        d.approximate_creation_time = d.approximate_creation_time.map(creation_seconds);
        d.event_source_arn = Some("arn:aws:kinesis:eu-west-1:1:stream/s".into());
        assert_eq!(&d, data);
    }

    #[test]
    fn creation_time_units_are_told_by_magnitude() {
        assert_eq!(creation_seconds(1_733_371_200_123.0), 1_733_371_200.123);
        assert_eq!(
            creation_seconds(1_733_371_200_123_456.0),
            1_733_371_200.123456
        );
        assert_eq!(creation_seconds(99_999_999_999_999.0), 99_999_999_999.999);
    }

    #[test]
    fn bad_payloads_fail_alone_without_quoting_data() {
        let secret = CHANGE.replace(
            r#""Keys":{"pk":{"S":"u#1"}}"#,
            r#""Keys":{"pk":{"X":"secret-value"}}"#,
        );
        let records = [
            record(&b64(CHANGE), "1"),
            record("!!not*base64secret", "2"),
            record(&b64(&secret), "3"),
            record(
                &base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]),
                "4",
            ),
            record(&b64("{\"eventName\":"), "5"),
            r#"{"eventSource":"aws:kinesis","kinesis":{"data":"e30="}}"#.to_owned(),
            r#"{"eventSource":"aws:kinesis"}"#.to_owned(),
        ];
        let text = event(&records);
        let out = decode_kinesis_str(&text, false).expect("envelope is fine");
        assert_eq!(out.len(), 7);
        assert!(out.first().is_some_and(|r| r.result.is_ok()));
        let err = |i: usize| match &out.get(i).expect("record").result {
            Err(f) => f.clone(),
            Ok(_) => panic!("record {i} should fail"),
        };
        let e = err(1);
        assert_eq!(
            e.error.to_string(),
            "Records[1].kinesis.data: invalid base64 (18 characters)"
        );
        assert_eq!(e.sequence_number.as_deref(), Some("2"));
        let e = err(2);
        assert_eq!(
            e.error.to_string(),
            "Records[2].kinesis.data.dynamodb.Keys.pk: unknown type tag \"X\""
        );
        assert!(!e.error.to_string().contains("secret"));
        assert_eq!(e.event_id.as_deref(), Some("a1b2"));
        assert_eq!(e.sequence_number.as_deref(), Some("3"));
        assert!(err(3)
            .error
            .to_string()
            .starts_with("Records[3].kinesis.data: payload is not valid UTF-8"));
        assert!(err(4)
            .error
            .to_string()
            .starts_with("Records[4].kinesis.data"));
        assert_eq!(
            err(5).error.to_string(),
            "Records[5].kinesis: missing required field \"sequenceNumber\""
        );
        assert_eq!(
            err(6).error.to_string(),
            "Records[6]: missing required field \"kinesis\""
        );
        let raw = out.get(1).expect("record").raw.clone();
        assert_eq!(text.get(raw), records.get(1).map(String::as_str));
        assert_eq!(decode_kinesis_str(&text, true).expect("ok").len(), 2);
    }

    #[test]
    fn detection_reads_the_first_event_source() {
        assert!(!is_kinesis_text(
            r#"{"Records":[{"eventSource":"aws:dynamodb"}]}"#
        ));
        assert!(!is_kinesis_text(r#"{"Records":[]}"#));
        assert!(is_kinesis_text(
            r#"{"Records":[{"eventSource" : "aws:kinesis"}]}"#
        ));
        // an image attribute named eventSource, or the text inside a string value
        assert!(!is_kinesis_text(
            r#"{"Records":[{"dynamodb":{"NewImage":{"eventSource":{"S":"aws:kinesis"}}}}]}"#
        ));
        assert!(!is_kinesis_text(
            r#"{"Records":[{"dynamodb":{"NewImage":{"a":{"S":"\"eventSource\":\"aws:kinesis\""}}}}]}"#
        ));
        assert!(decode_kinesis_str("{}", false).is_err());
        assert!(decode_kinesis_str("[]", false).is_err());
    }
}
