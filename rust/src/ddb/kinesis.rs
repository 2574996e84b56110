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

/// The fields of a Kinesis record the decoder reads (the envelope around the
/// payload); `data` is borrowed from the event text where it can be.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outer<'a> {
    pub sequence_number: Option<String>,
    pub data: Option<Cow<'a, str>>,
    pub event_source_arn: Option<String>,
    pub aws_region: Option<String>,
}

/// A decoded Kinesis event: every payload that could be read, one after the
/// other in `text` (the change records' JSON), and the records.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisBatch {
    pub text: String,
    pub records: Vec<KinesisRecord>,
}

/// One record of a decoded Kinesis event: where its text lies in the event
/// (raw text only; `0..0` for a parsed event), where its change record lies in
/// the batch's `text` (when base64 and UTF-8 were valid), and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisRecord {
    pub raw: Range<usize>,
    pub payload: Option<Range<usize>>,
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

/// A one-pass decoder of a change record: given the record's index, the
/// batch's text, the record's range in it and the Kinesis sequence number, its
/// data (`None` sends it to the reference decoder, which gives the exact error).
/// It must accept only a record that ends within its range ([`accepts`]).
pub(crate) type InnerFn<'f> =
    dyn FnMut(usize, &str, Range<usize>, String) -> Option<RecordData> + 'f;

/// Where a one-pass parse of the record in `range` of `text` starts (after
/// leading whitespace).
pub(crate) fn start_of(text: &str, range: &Range<usize>) -> usize {
    let bytes = text.as_bytes();
    let mut pos = range.start;
    while pos < range.end && matches!(bytes.get(pos), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Whether a one-pass parse that ended at `end` read exactly the record in
/// `range` (only whitespace after it, nothing of the next payload).
pub(crate) fn accepts(text: &str, range: &Range<usize>, end: usize) -> bool {
    end <= range.end
        && text
            .get(end..range.end)
            .is_some_and(|t| t.trim().is_empty())
}

/// The one-pass decoder for `want`, as an [`InnerFn`].
pub(crate) fn inner_fast(
    want: Want,
) -> impl FnMut(usize, &str, Range<usize>, String) -> Option<RecordData> {
    move |_, text, range, seq| {
        let (data, end) = fast::record_with(text, start_of(text, &range), want, Some(seq))?;
        accepts(text, &range, end).then_some(data)
    }
}

/// The one-pass decoder of a change record for rendering ([`Want::Render`]:
/// only the image a template sees is built), as an [`InnerFn`].
pub(crate) fn inner_for_render(
) -> impl FnMut(usize, &str, Range<usize>, String) -> Option<RecordData> {
    inner_fast(Want::Render)
}

// For the templates' `render_event` (parsed events), beside the text path's
// [`decode_kinesis_using`] and [`decode_items`].
pub(crate) use super::kinesis_py::{is_kinesis_parsed, kinesis_source, parsed_outers};

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<OuterJson<'a>>,
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

impl<'a> OuterJson<'a> {
    fn outer(self) -> Result<Outer<'a>, DecodeErr> {
        let Some(k) = self.kinesis else {
            return Err(DecodeErr::new("missing required field \"kinesis\""));
        };
        Ok(Outer {
            sequence_number: k.sequence_number,
            data: k.data,
            event_source_arn: self.event_source_arn,
            aws_region: self.aws_region,
        })
    }
}

/// The envelope fields of one Kinesis record's JSON text.
pub fn outer_from_json(raw: &str) -> Result<Outer<'_>, DecodeErr> {
    let o: OuterJson<'_> =
        serde_json::from_str(raw).map_err(|e| DecodeErr::new(redact_serde(&e.to_string())))?;
    o.outer()
}

fn envelope_error(e: &serde_json::Error) -> DecodeErr {
    DecodeErr::new(format!(
        "not a Kinesis event (expected {{\"Records\": [...]}}): {}",
        redact_serde(&e.to_string())
    ))
}

/// A record's failure at `index`, its error path from the event.
fn failure(
    index: usize,
    error: DecodeErr,
    event_id: Option<String>,
    sequence_number: Option<String>,
) -> RecordFailure {
    RecordFailure {
        error: error.within_index(index).within_key("Records"),
        event_id,
        sequence_number,
    }
}

/// Decode a Kinesis event's JSON text. `Err` only for a malformed envelope
/// (not JSON, no `Records` list); record failures are per record. With
/// `stop_on_error` the records after the first failure are not decoded.
pub fn decode_kinesis_str(text: &str, stop_on_error: bool) -> Result<KinesisBatch, DecodeErr> {
    decode_kinesis_using(text, stop_on_error, &mut inner_fast(Want::Trees))
}

/// [`decode_kinesis_str`] with `inner` decoding each change record in one pass.
///
/// One pass of the hand-written parser reads every record's span and envelope
/// fields (borrowing `data`); when it gives up, serde reads the envelope, then
/// record by record if that fails (a record of the wrong shape: its error).
pub(crate) fn decode_kinesis_using(
    text: &str,
    stop_on_error: bool,
    inner: &mut InnerFn<'_>,
) -> Result<KinesisBatch, DecodeErr> {
    if let Some(records) = fast::kinesis_envelope(text) {
        let (spans, items): (Vec<_>, Vec<_>) =
            records.into_iter().map(|(span, o)| (span, Ok(o))).unzip();
        if let Some((buf, read)) = read_payloads(items, Data::Unchecked) {
            let mut batch = decode_payloads(buf, read, stop_on_error, inner);
            for (rec, span) in batch.records.iter_mut().zip(spans) {
                rec.raw = span;
            }
            return Ok(batch);
        }
    }
    decode_kinesis_two_pass(text, stop_on_error, inner)
}

/// The reference path of [`decode_kinesis_using`]: serde reads the envelope
/// (then record by record if that fails). Gives the same result; separate so
/// that the tests can check that.
pub(crate) fn decode_kinesis_two_pass(
    text: &str,
    stop_on_error: bool,
    inner: &mut InnerFn<'_>,
) -> Result<KinesisBatch, DecodeErr> {
    let (items, spans) = match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(env) => {
            let items = env
                .records
                .into_iter()
                .enumerate()
                .map(|(i, o)| o.outer().map_err(|e| failure(i, e, None, None)))
                .collect();
            (items, None)
        }
        Err(_) => {
            // Per record: the envelope's error, or each record's own.
            let env: RawEnvelope<'_> =
                serde_json::from_str(text).map_err(|e| envelope_error(&e))?;
            let spans = record_spans(text, &env.records);
            let items = env
                .records
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    outer_from_json(raw.get()).map_err(|e| {
                        let seq = serde_json::from_str::<serde_json::Value>(raw.get())
                            .ok()
                            .and_then(|v| {
                                v.get("kinesis")?
                                    .get("sequenceNumber")?
                                    .as_str()
                                    .map(str::to_owned)
                            });
                        failure(i, e, None, seq)
                    })
                })
                .collect();
            (items, Some(spans))
        }
    };
    let spans = match spans {
        Some(s) => s,
        None => {
            let env: RawEnvelope<'_> =
                serde_json::from_str(text).map_err(|e| envelope_error(&e))?;
            record_spans(text, &env.records)
        }
    };
    let mut batch = decode_items(items, stop_on_error, inner);
    for (rec, span) in batch.records.iter_mut().zip(spans) {
        rec.raw = span;
    }
    Ok(batch)
}

fn record_spans(text: &str, records: &[&RawValue]) -> Vec<Range<usize>> {
    let base = text.as_ptr() as usize;
    records
        .iter()
        .map(|raw| {
            let start = (raw.get().as_ptr() as usize).saturating_sub(base);
            start..start + raw.get().len()
        })
        .collect()
}

/// A record once its payload is read: the payload's range in the batch's
/// buffer, its sequence number, stream ARN and region; or its failure.
type Read = Result<(Range<usize>, String, Option<String>, Option<String>), RecordFailure>;

/// Decode records from their envelope fields (or the failure reading them).
///
/// Every payload is base64-decoded into one buffer first (the batch's text, which
/// the records' images then point into, as those of a DynamoDB Streams event
/// point into the event), then each change record is decoded where it lies.
pub(crate) fn decode_items(
    items: Vec<Result<Outer<'_>, RecordFailure>>,
    stop_on_error: bool,
    inner: &mut InnerFn<'_>,
) -> KinesisBatch {
    // Not `Unchecked`: every outcome is `Some`.
    let (buf, read) = read_payloads(items, Data::Checked).unwrap_or_default();
    decode_payloads(buf, read, stop_on_error, inner)
}

/// Where the `data` texts of [`read_payloads`] come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Data {
    /// Decoded JSON strings, or Python strings.
    Checked,
    /// Borrowed from the event text up to the closing quote by the one-pass
    /// envelope, NOT checked for a backslash (an escape) or a raw control
    /// character (invalid JSON): [`read_payloads`] does that.
    Unchecked,
}

/// Every payload base64-decoded, one after the other into one buffer, and each
/// record's outcome so far. `None` when `data` is [`Data::Unchecked`] and some
/// record's `data` text is not what its JSON string holds (it has an escape,
/// or is invalid JSON): the caller then decodes the event with serde.
fn read_payloads(
    items: Vec<Result<Outer<'_>, RecordFailure>>,
    data_from: Data,
) -> Option<(Vec<u8>, Vec<Read>)> {
    let unchecked = data_from == Data::Unchecked;
    let capacity = items
        .iter()
        .filter_map(|o| Some(o.as_ref().ok()?.data.as_ref()?.len() / 4 * 3 + 3))
        .sum();
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    let mut read: Vec<Read> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let outer = match item {
            Ok(o) => o,
            Err(f) => {
                read.push(Err(f));
                continue;
            }
        };
        let seq = outer.sequence_number;
        let fail = |msg: &str, key: Option<&str>| {
            let mut e = DecodeErr::new(msg);
            if let Some(k) = key {
                e = e.within_key(k);
            }
            failure(index, e.within_key("kinesis"), None, seq.clone())
        };
        let Some(data) = outer.data else {
            let msg = match seq {
                None => "missing required field \"sequenceNumber\"",
                Some(_) => "missing required field \"data\"",
            };
            read.push(Err(fail(msg, None)));
            continue;
        };
        let trimmed = data.trim_ascii();
        let start = buf.len();
        // Into the buffer's spare capacity (reserved above for every payload);
        // as strict as `base64`'s STANDARD engine (canonical padding, no
        // trailing bits), which the tests check.
        let decoded = seq.is_some()
            && base64_simd::STANDARD
                .decode_append(trimmed, &mut buf)
                .is_ok();
        // Decoded, `trimmed` is base64 alone: only the ASCII whitespace trimmed
        // off can be a control character (a space is the only one JSON allows).
        if unchecked {
            let plain = if decoded {
                data.trim_matches(' ').len() == trimmed.len()
            } else {
                plain_json_text(&data)
            };
            if !plain {
                return None;
            }
        }
        let Some(s) = seq.clone() else {
            read.push(Err(fail("missing required field \"sequenceNumber\"", None)));
            continue;
        };
        if !decoded {
            buf.truncate(start);
            let msg = format!("invalid base64 ({} characters)", data.chars().count());
            read.push(Err(fail(&msg, Some("data"))));
            continue;
        }
        read.push(Ok((
            start..buf.len(),
            s,
            outer.event_source_arn,
            outer.aws_region,
        )));
    }
    Some((buf, read))
}

/// Whether `text`, read from between a JSON string's quotes, is that string's
/// value: no escape (backslash) and no control character (invalid in JSON).
fn plain_json_text(text: &str) -> bool {
    !text.bytes().any(|b| b < 0x20 || b == b'\\')
}

/// Decode each change record where it lies in `buf` (see [`decode_items`]).
fn decode_payloads(
    buf: Vec<u8>,
    mut read: Vec<Read>,
    stop_on_error: bool,
    inner: &mut InnerFn<'_>,
) -> KinesisBatch {
    let text = utf8_payloads(buf, &mut read);
    let mut records = Vec::with_capacity(read.len());
    for (index, item) in read.into_iter().enumerate() {
        let (result, payload) = match item {
            Err(f) => (Err(f), None),
            Ok((range, seq, arn, region)) => {
                let slice = text.get(range.clone()).unwrap_or("");
                let decoded = match inner(index, &text, range.clone(), seq.clone()) {
                    Some(d) => Ok(d),
                    None => decode_record_json_with(slice, Some(seq.clone())),
                };
                let result = match decoded {
                    Ok(mut d) => {
                        d.approximate_creation_time =
                            d.approximate_creation_time.map(creation_seconds);
                        d.event_source_arn = arn;
                        if d.aws_region.is_none() {
                            d.aws_region = region;
                        }
                        Ok(d)
                    }
                    Err(e) => {
                        let event_id = serde_json::from_str::<serde_json::Value>(slice)
                            .ok()
                            .and_then(|v| v.get("eventID")?.as_str().map(str::to_owned));
                        let e = e.within_key("data").within_key("kinesis");
                        Err(failure(index, e, event_id, Some(seq)))
                    }
                };
                (result, Some(range))
            }
        };
        let failed = result.is_err();
        records.push(KinesisRecord {
            raw: 0..0,
            payload: payload.filter(|_| !failed),
            result,
        });
        if failed && stop_on_error {
            break;
        }
    }
    KinesisBatch { text, records }
}

/// The payloads as text: checked as a whole (the common case), and only when
/// that fails record by record, each invalid one turned into its failure and
/// blanked (spaces) so that the rest is valid text at the same offsets.
fn utf8_payloads(buf: Vec<u8>, read: &mut [Read]) -> String {
    let mut bytes = match String::from_utf8(buf) {
        Ok(text) => return text,
        Err(e) => e.into_bytes(),
    };
    for (index, item) in read.iter_mut().enumerate() {
        let Ok((range, seq, _, _)) = item else {
            continue;
        };
        let Some(part) = bytes.get(range.clone()) else {
            continue;
        };
        if let Err(e) = std::str::from_utf8(part) {
            let msg = format!("payload is not valid UTF-8 (at byte {})", e.valid_up_to());
            let err = DecodeErr::new(msg).within_key("data").within_key("kinesis");
            let seq = Some(std::mem::take(seq));
            if let Some(part) = bytes.get_mut(range.clone()) {
                part.fill(b' ');
            }
            *item = Err(failure(index, err, None, seq));
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
        let batch = decode_kinesis_str(&text, false).expect("envelope is fine");
        let rec = batch.records.first().expect("one record");
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
        assert_eq!(
            rec.payload.clone().and_then(|r| batch.text.get(r)),
            Some(CHANGE)
        );
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
        let out = decode_kinesis_str(&text, false)
            .expect("envelope is fine")
            .records;
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
        assert_eq!(
            decode_kinesis_str(&text, true).expect("ok").records.len(),
            2
        );
        // a good record after a bad one is still read (payloads share one buffer)
        let later = event(&[record("!!", "1"), record(&b64(CHANGE), "2")]);
        let out = decode_kinesis_str(&later, false).expect("ok");
        assert!(out.records.get(1).is_some_and(|r| r.result.is_ok()));
        // a truncated payload never reads into the next one
        let cut = event(&[
            record(&b64(&CHANGE[..CHANGE.len() - 1]), "1"),
            record(&b64(CHANGE), "2"),
        ]);
        let out = decode_kinesis_str(&cut, false).expect("ok");
        assert!(out.records.first().is_some_and(|r| r.result.is_err()));
        assert!(out.records.get(1).is_some_and(|r| r.result.is_ok()));
    }

    #[test]
    fn the_one_pass_envelope_matches_serde() {
        let good = record(&b64(CHANGE), "1");
        let cases = [
            event(&[good.clone(), record("!!", "2"), good.clone()]),
            event(&[]),
            format!(" {{ \"x\" : [1, {{\"a\": [true, null]}}] ,\n \"Records\" : [ {good} ,\t{good} ] , \"y\": -1.5e3 }} "),
            good.replace("\"awsRegion\"", "\"extra\": {\"k\": [1, 2]}, \"awsRegion\""),
            good.replace("\"kinesisSchemaVersion\":\"1.0\"", "\"kinesisSchemaVersion\":null"),
            event(&[good.replace("\"awsRegion\":\"eu-west-1\"", "\"awsRegion\":5")]),
            event(&[good.replace("\"partitionKey\"", "\"data\":\"e30=\",\"partitionKey\"")]),
            event(&[good.replace("\"kinesis\":{", "\"kinesis\":null,\"k\":{")]),
            event(&[good.replace("\"data\":\"", "\"data\":\"\\u0065")]),
            event(&[r#"{"kinesis":{"sequenceNumber":"1","data":null}}"#.to_owned(), "5".to_owned()]),
            format!("{{\"Records\":[{good}],\"Records\":[]}}"),
            format!("{{\"Records\":[{good},]}}"),
            format!("{{\"Records\":[{good}]}} x"),
            "{}".to_owned(),
            "[]".to_owned(),
            // `data` is read up to the quote unchecked, then checked once decoded:
            // spaces around it are JSON, raw tabs or newlines are not, escapes
            // (even a valid payload's) go to serde
            event(&[record(&format!("  {}  ", b64(CHANGE)), "1")]),
            event(&[record(&format!("{}\t", b64(CHANGE)), "1")]),
            event(&[record(&format!("\n{}", b64(CHANGE)), "1")]),
            event(&[record(&format!("{}\\t", b64(CHANGE)), "1")]),
            event(&[record(&format!("{}\\u003d", &b64(CHANGE)[..b64(CHANGE).len() - 1]), "1")]),
            event(&[record(&b64(CHANGE).replacen('/', "\\/", 1), "1")]),
            event(&[good.clone(), record("ab\\\"cd", "2")]),
            event(&[good.clone(), record("ab\\/cd", "2")]),
            event(&[good.clone(), record("ab\u{1}cd", "2")]),
            event(&[good.clone(), record("ab\u{7f}cd\u{e9}", "2")]),
            event(&["{\"kinesis\":{\"data\":\"a\u{1}b\"}}".to_owned()]),
            event(&[r#"{"kinesis":{"data":"a\\nb"}}"#.to_owned()]),
            event(&[r#"{"kinesis":{"data":"ab"}}"#.to_owned()]),
            event(&[r#"{"kinesis":{"sequenceNumber":"1","data":""}}"#.to_owned()]),
            event(&["{\"kinesis\":{\"sequenceNumber\":\"1\",\"data\":\"\u{1}\"}}".to_owned()]),
        ];
        for text in &cases {
            for stop in [false, true] {
                let fast = decode_kinesis_using(text, stop, &mut inner_fast(Want::Trees));
                let slow = decode_kinesis_two_pass(text, stop, &mut inner_fast(Want::Trees));
                assert_eq!(fast, slow, "{text}");
            }
        }
        assert!(fast::kinesis_envelope(&cases[0]).is_some());
        assert!(fast::kinesis_envelope(&cases[2]).is_some());
        // the one-pass path decodes a payload with spaces around it (and only spaces)
        let spaced = &cases[15];
        let records = fast::kinesis_envelope(spaced)
            .expect("one pass")
            .into_iter();
        let items = records.map(|(_, o)| Ok(o)).collect();
        assert!(read_payloads(items, Data::Unchecked).is_some());
        for text in &cases[16..18] {
            let records = fast::kinesis_envelope(text).expect("one pass").into_iter();
            let items = records.map(|(_, o)| Ok(o)).collect();
            assert!(read_payloads(items, Data::Unchecked).is_none(), "{text}");
        }
        let out = decode_kinesis_str(spaced, false).expect("envelope is fine");
        assert!(out.records.first().is_some_and(|r| r.result.is_ok()));
        for text in &cases[16..18] {
            assert!(decode_kinesis_str(text, false).is_err(), "{text}");
        }
        let escaped = decode_kinesis_str(&cases[18], false).expect("envelope is fine");
        assert!(escaped.records.first().is_some_and(|r| r.result.is_ok()));
    }

    /// The base64 engine of the payloads accepts exactly what the `base64`
    /// crate's STANDARD engine accepts (canonical padding, no trailing bits),
    /// and decodes it the same.
    #[test]
    fn payload_base64_is_the_base64_crate_standard() {
        use proptest::prelude::*;
        let engine = base64::engine::general_purpose::STANDARD;
        let same = |text: &str| {
            let mut buf = b"prefix".to_vec();
            let simd = base64_simd::STANDARD
                .decode_append(text, &mut buf)
                .map(|()| buf.split_off(6));
            let reference = engine.decode(text);
            assert_eq!(simd.ok(), reference.ok(), "{text:?}");
        };
        for text in [
            "",
            "=",
            "==",
            "===",
            "====",
            "A",
            "AA",
            "AA=",
            "AA==",
            "AAA=",
            "AAA",
            "AAAA",
            "AB==",
            "AAB=",
            "QQ==",
            "QR==",
            "QUI=",
            "QUJ=",
            "QUJD",
            "QUJD====",
            "QU=D",
            "Q===",
            "QQ=",
            "QQ===",
            "QUJDRA==",
            "QUJDRA",
            "QUJDR",
            " QUJD",
            "QUJD\n",
            "QU JD",
            "QUJD-_",
            "QUJD+/",
            "\u{e9}AAA",
            "AAAA\0",
        ] {
            same(text);
        }
        let config = ProptestConfig {
            cases: 4_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(text in "[A-Da-d0-3+/=\\- _.]{0,70}")| same(&text));
        proptest!(config, |(bytes in proptest::collection::vec(any::<u8>(), 0..80), cut in 0usize..4, tweak in any::<u8>())| {
            // canonical encodings, cut short or with one character changed
            let mut text = engine.encode(&bytes).into_bytes();
            text.truncate(text.len().saturating_sub(cut));
            if let Some(c) = text.last_mut() {
                *c = b"AQgw+/=Bz9"[usize::from(tweak) % 10];
            }
            same(&String::from_utf8(text).unwrap_or_default());
        });
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
