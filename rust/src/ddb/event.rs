//! Lambda DynamoDB stream events from raw JSON text, without the GIL.
//!
//! The envelope `{"Records": [...]}` is parsed first with each record kept as a
//! borrowed raw slice, so every record decodes (and fails) on its own and its
//! original text stays available for dead-lettering.
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{redact_serde, DecodeErr, PathSeg};
use super::fast::{self, Want};
use super::json::{AvSeed, Ctx, MapSeed};
use super::value::{AttrValue, Map};

/// The decoded fields of one stream record (everything but its position and text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordData {
    pub event_id: String,
    pub event_name: String,
    pub sequence_number: String,
    pub keys: Map,
    pub new_image: Option<Map>,
    pub old_image: Option<Map>,
    /// Where the images lie in the event text when decoding skimmed them
    /// (validated, not built: see [`decode_event_lazy`]); then the maps above are None.
    pub new_image_span: Option<Range<usize>>,
    pub old_image_span: Option<Range<usize>>,
    pub approximate_creation_time: Option<f64>,
    pub size_bytes: Option<u64>,
    pub stream_view_type: Option<String>,
    pub event_source_arn: Option<String>,
    pub aws_region: Option<String>,
}

/// A record that failed to decode, with what could still be read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFailure {
    pub error: DecodeErr,
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
}

/// One record of a decoded event: where its text lies in the input, and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRecord {
    pub raw: Range<usize>,
    pub result: Result<RecordData, RecordFailure>,
}

pub const EVENT_NAMES: [&str; 3] = ["INSERT", "MODIFY", "REMOVE"];

/// Decode a whole event. `Err` only for a malformed envelope (not JSON, no
/// `Records` list); record failures are per record. With `stop_on_error` the
/// records after the first failure are not decoded (and not returned).
pub fn decode_event_bytes(
    input: &[u8],
    stop_on_error: bool,
) -> Result<Vec<DecodedRecord>, DecodeErr> {
    let text = std::str::from_utf8(input)
        .map_err(|e| DecodeErr::new(format!("event is not valid UTF-8 ({e})")))?;
    decode_event_str(text, stop_on_error)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// [`decode_event_bytes`] for text that is already a `str`.
///
/// One pass over the text in the common case ([`decode_event_fast`]); anything
/// unusual (a malformed envelope, a record that fails) is settled by the
/// two-pass reference path, so results and error messages are the same.
pub fn decode_event_str(text: &str, stop_on_error: bool) -> Result<Vec<DecodedRecord>, DecodeErr> {
    decode_event_with(text, stop_on_error, Want::Trees)
}

/// [`decode_event_str`] that validates the images of records read in one pass
/// without building them: such records carry `new_image_span`/`old_image_span`
/// (built on demand with `fast::image_tree`/`fast::image_py`) instead of maps.
/// Records the reference path decodes have their maps as usual.
pub fn decode_event_lazy(text: &str, stop_on_error: bool) -> Result<Vec<DecodedRecord>, DecodeErr> {
    decode_event_with(text, stop_on_error, Want::Spans)
}

/// [`decode_event_str`] for rendering: records read in one pass build only the
/// image a template sees (`NewImage`, else `OldImage`); their `keys` are empty
/// and an `OldImage` beside a `NewImage` is validated, not built. Records the
/// reference path decodes are complete.
pub fn decode_event_for_render(
    text: &str,
    stop_on_error: bool,
) -> Result<Vec<DecodedRecord>, DecodeErr> {
    decode_event_with(text, stop_on_error, Want::Render)
}

/// The tree of an image span that [`decode_event_lazy`] validated (`None`
/// only for a span it did not produce).
pub fn image_from_span(text: &str) -> Option<Map> {
    fast::image_tree(text)
}

fn decode_event_with(
    text: &str,
    stop_on_error: bool,
    want: Want,
) -> Result<Vec<DecodedRecord>, DecodeErr> {
    decode_event_using(text, stop_on_error, &mut |t, pos| {
        fast::record(t, pos, want)
    })
}

/// A one-pass record parser: given the text and a record's offset, the record
/// and its end, or `None` for the reference path.
pub(crate) type RecordFn<'f> = dyn FnMut(&str, usize) -> Option<(RecordData, usize)> + 'f;

/// [`decode_event_str`] with `record` as the one-pass record parser (given the
/// text and a record's offset; `None` sends the record to the reference path).
pub(crate) fn decode_event_using(
    text: &str,
    stop_on_error: bool,
    record: &mut RecordFn<'_>,
) -> Result<Vec<DecodedRecord>, DecodeErr> {
    match decode_event_fast(text, stop_on_error, record) {
        Some(out) => Ok(out),
        None => decode_event_two_pass(text, stop_on_error),
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Deserialize one `T` starting at `pos` (no leading whitespace); its end offset.
fn value_at<'de, T: Deserialize<'de>>(text: &'de str, pos: usize) -> Option<(T, usize)> {
    let rest = text.get(pos..)?;
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    let value = stream.next()?.ok()?;
    Some((value, pos + stream.byte_offset()))
}

/// Single pass: each record is decoded where it lies in the envelope by the
/// hand-written parser ([`super::fast`]) and its span is taken from the
/// parser's offset (no `RawValue` pre-scan). `None`
/// when the envelope is not the plain `{"Records": [...]}` shape or anything
/// fails to decode: the caller then runs the two-pass path.
fn decode_event_fast(
    text: &str,
    stop_on_error: bool,
    record: &mut RecordFn<'_>,
) -> Option<Vec<DecodedRecord>> {
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(bytes, pos + 1);
    let mut out: Option<Vec<DecodedRecord>> = None;
    if bytes.get(pos) == Some(&b'}') {
        return None; // no Records: the reference path reports it
    }
    loop {
        let (key, end) = value_at::<&str>(text, pos)?;
        pos = skip_ws(bytes, end);
        if bytes.get(pos) != Some(&b':') {
            return None;
        }
        pos = skip_ws(bytes, pos + 1);
        if key == "Records" {
            if out.is_some() {
                return None; // duplicate field
            }
            let (records, end) = records_fast(text, pos, stop_on_error, record)?;
            out = Some(records);
            pos = end;
        } else {
            let (_, end) = value_at::<IgnoredAny>(text, pos)?;
            pos = end;
        }
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos = skip_ws(bytes, pos + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(bytes, pos + 1) != bytes.len() {
        return None;
    }
    out
}

/// The `Records` array starting at `pos` (its `[`): the records and the offset after `]`.
fn records_fast(
    text: &str,
    mut pos: usize,
    stop_on_error: bool,
    record: &mut RecordFn<'_>,
) -> Option<(Vec<DecodedRecord>, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(pos) != Some(&b'[') {
        return None;
    }
    pos = skip_ws(bytes, pos + 1);
    let mut out = Vec::with_capacity(text.len() / 1024 + 1);
    if bytes.get(pos) == Some(&b']') {
        return Some((out, pos + 1));
    }
    let mut stopped = false;
    loop {
        let start = pos;
        let index = out.len();
        if stopped {
            // Records after a failure are not decoded, only checked to be JSON.
            let (_, end) = value_at::<IgnoredAny>(text, start)?;
            pos = end;
        } else {
            let (result, end) = match record(text, start) {
                Some((data, end)) => (Ok(data), end),
                None => {
                    // The reference decoder gives the exact error (or success).
                    let (_, end) = value_at::<IgnoredAny>(text, start)?;
                    let slice = text.get(start..end)?;
                    let result = decode_record_json(slice).map_err(|error| {
                        let (event_id, sequence_number) = salvage_ids(slice);
                        RecordFailure {
                            error: error.within_index(index).within_key("Records"),
                            event_id,
                            sequence_number,
                        }
                    });
                    (result, end)
                }
            };
            stopped = result.is_err() && stop_on_error;
            out.push(DecodedRecord {
                raw: start..end,
                result,
            });
            pos = end;
        }
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos = skip_ws(bytes, pos + 1),
            Some(b']') => return Some((out, pos + 1)),
            _ => return None,
        }
    }
}

/// The reference path: the envelope first (records as raw slices), then each
/// record through the serde visitors. [`decode_event_str`] gives the same
/// result; public so that the fuzz tests can check that.
pub fn decode_event_two_pass(
    text: &str,
    stop_on_error: bool,
) -> Result<Vec<DecodedRecord>, DecodeErr> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        DecodeErr::new(format!(
            "not a DynamoDB stream event (expected {{\"Records\": [...]}}): {}",
            redact_serde(&e.to_string())
        ))
    })?;
    let base = text.as_ptr() as usize;
    let mut out = Vec::with_capacity(envelope.records.len());
    for (index, raw) in envelope.records.iter().enumerate() {
        let slice = raw.get();
        let start = (slice.as_ptr() as usize).saturating_sub(base);
        let result = decode_record_json(slice).map_err(|error| {
            let (event_id, sequence_number) = salvage_ids(slice);
            RecordFailure {
                error: error.within_index(index).within_key("Records"),
                event_id,
                sequence_number,
            }
        });
        let failed = result.is_err();
        out.push(DecodedRecord {
            raw: start..start + slice.len(),
            result,
        });
        if failed && stop_on_error {
            break;
        }
    }
    Ok(out)
}

/// Best effort: the identifiers of a record that failed to decode.
fn salvage_ids(raw: &str) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) else {
        return (None, None);
    };
    let event_id = v.get("eventID").and_then(|x| x.as_str()).map(str::to_owned);
    let seq = v
        .get("dynamodb")
        .and_then(|d| d.get("SequenceNumber"))
        .and_then(|x| x.as_str())
        .map(str::to_owned);
    (event_id, seq)
}

/// Decode one record's JSON text. The error path is relative to the record.
pub fn decode_record_json(raw: &str) -> Result<RecordData, DecodeErr> {
    decode_record_json_with(raw, None)
}

/// [`decode_record_json`] with `sequence` in place of `dynamodb.SequenceNumber`
/// (see [`Partial::finish_with`]).
pub fn decode_record_json_with(
    raw: &str,
    sequence: Option<String>,
) -> Result<RecordData, DecodeErr> {
    let mut ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_str(raw);
    let parsed = RecordSeed { ctx: &mut ctx }.deserialize(&mut de);
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return Err(ctx.take(&e)),
    };
    de.end()
        .map_err(|e| DecodeErr::new(redact_serde(&e.to_string())))?;
    parsed.finish_with(sequence)
}

/// Decode a single AttributeValue from JSON text (`{"S": "x"}`).
pub fn decode_value_json(text: &str) -> Result<AttrValue, DecodeErr> {
    let mut ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_str(text);
    match (AvSeed {
        ctx: &mut ctx,
        depth: 0,
    })
    .deserialize(&mut de)
    {
        Ok(v) => de.end().map(|()| v).map_err(|e| ctx.take(&e)),
        Err(e) => Err(ctx.take(&e)),
    }
}

/// Decode an image (`{"name": {"S": "x"}, ...}`) from JSON text.
pub fn decode_image_json(text: &str) -> Result<Map, DecodeErr> {
    let mut ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_str(text);
    match (MapSeed {
        ctx: &mut ctx,
        depth: 0,
    })
    .deserialize(&mut de)
    {
        Ok(v) => de.end().map(|()| v).map_err(|e| ctx.take(&e)),
        Err(e) => Err(ctx.take(&e)),
    }
}

/// Fields as read, before the required ones are checked.
#[derive(Default)]
pub(crate) struct Partial {
    pub(crate) event_id: Option<String>,
    pub(crate) event_name: Option<String>,
    pub(crate) aws_region: Option<String>,
    pub(crate) event_source_arn: Option<String>,
    pub(crate) dynamodb: Option<PartialDdb>,
}

#[derive(Default)]
pub(crate) struct PartialDdb {
    pub(crate) sequence_number: Option<String>,
    pub(crate) keys: Option<Map>,
    pub(crate) new_image: Option<Map>,
    pub(crate) old_image: Option<Map>,
    pub(crate) new_image_span: Option<Range<usize>>,
    pub(crate) old_image_span: Option<Range<usize>>,
    pub(crate) approximate_creation_time: Option<f64>,
    pub(crate) size_bytes: Option<u64>,
    pub(crate) stream_view_type: Option<String>,
}

/// The error for an `eventName` other than the three: its length, not its
/// text (a malformed record may hold anything there).
pub(crate) fn unknown_event_name(name: &str) -> String {
    format!(
        "unknown event name (expected INSERT, MODIFY or REMOVE, found {})",
        super::error::length_of(name)
    )
}

impl Partial {
    /// The record's data, once its required fields are checked; `sequence`
    /// (a Kinesis record's sequence number) stands for `dynamodb.SequenceNumber`,
    /// which a change record delivered through Kinesis does not have.
    pub(crate) fn finish_with(mut self, sequence: Option<String>) -> Result<RecordData, DecodeErr> {
        if let Some(seq) = sequence {
            if let Some(ddb) = self.dynamodb.as_mut() {
                ddb.sequence_number = Some(seq);
            }
        }
        let missing = |name: &str| DecodeErr::new(format!("missing required field {name:?}"));
        let event_id = self.event_id.ok_or_else(|| missing("eventID"))?;
        let event_name = self.event_name.ok_or_else(|| missing("eventName"))?;
        if !EVENT_NAMES.contains(&event_name.as_str()) {
            return Err(DecodeErr::new(unknown_event_name(&event_name)).within_key("eventName"));
        }
        let ddb = self.dynamodb.ok_or_else(|| missing("dynamodb"))?;
        let sequence_number = ddb
            .sequence_number
            .ok_or_else(|| missing("SequenceNumber").within_key("dynamodb"))?;
        let keys = ddb
            .keys
            .ok_or_else(|| missing("Keys").within_key("dynamodb"))?;
        Ok(RecordData {
            event_id,
            event_name,
            sequence_number,
            keys,
            new_image: ddb.new_image,
            old_image: ddb.old_image,
            new_image_span: ddb.new_image_span,
            old_image_span: ddb.old_image_span,
            approximate_creation_time: ddb.approximate_creation_time,
            size_bytes: ddb.size_bytes,
            stream_view_type: ddb.stream_view_type,
            event_source_arn: self.event_source_arn,
            aws_region: self.aws_region,
        })
    }
}

/// Reads a field name into one of the known fields (or `None` for the rest).
struct FieldSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Option<&'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed {
    type Value = Option<&'static str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|&&name| name == v).copied())
    }
}

const RECORD_FIELDS: &[&str] = &[
    "eventID",
    "eventName",
    "awsRegion",
    "eventSourceARN",
    "dynamodb",
];
const DDB_FIELDS: &[&str] = &[
    "SequenceNumber",
    "Keys",
    "NewImage",
    "OldImage",
    "ApproximateCreationDateTime",
    "SizeBytes",
    "StreamViewType",
];

/// Read the value of `field` with `read`, adding the field to the error path.
fn field<'de, A, T>(
    ctx: &mut Ctx,
    map: &mut A,
    name: &str,
    read: impl FnOnce(&mut Ctx, &mut A) -> Result<T, A::Error>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
{
    read(ctx, map).map_err(|e| ctx.wrap(e, PathSeg::Key(name.to_owned())))
}

struct RecordSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Partial;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Partial, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Partial;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stream record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Partial, A::Error> {
        let ctx = self.ctx;
        let mut p = Partial::default();
        while let Some(name) = map.next_key_seed(FieldSeed(RECORD_FIELDS))? {
            let Some(name) = name else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match name {
                "dynamodb" => {
                    p.dynamodb = field(ctx, &mut map, name, |c, m| {
                        m.next_value_seed(OptSeed(DdbSeed { ctx: c }))
                    })?;
                }
                _ => {
                    let v = field(ctx, &mut map, name, |_, m| m.next_value::<Option<String>>())?;
                    match name {
                        "eventID" => p.event_id = v,
                        "eventName" => p.event_name = v,
                        "awsRegion" => p.aws_region = v,
                        _ => p.event_source_arn = v,
                    }
                }
            }
        }
        Ok(p)
    }
}

/// `null` as absent, anything else through the inner seed.
struct OptSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OptSeed<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OptSeed<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

struct DdbSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for DdbSeed<'_> {
    type Value = PartialDdb;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PartialDdb, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DdbSeed<'_> {
    type Value = PartialDdb;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the record's dynamodb object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PartialDdb, A::Error> {
        let ctx = self.ctx;
        let mut p = PartialDdb::default();
        while let Some(name) = map.next_key_seed(FieldSeed(DDB_FIELDS))? {
            let Some(name) = name else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let image =
                |c: &mut Ctx, m: &mut A| m.next_value_seed(OptSeed(MapSeed { ctx: c, depth: 0 }));
            match name {
                "Keys" => p.keys = field(ctx, &mut map, name, image)?,
                "NewImage" => p.new_image = field(ctx, &mut map, name, image)?,
                "OldImage" => p.old_image = field(ctx, &mut map, name, image)?,
                "ApproximateCreationDateTime" => {
                    p.approximate_creation_time =
                        field(ctx, &mut map, name, |_, m| m.next_value::<Option<f64>>())?;
                }
                "SizeBytes" => {
                    p.size_bytes =
                        field(ctx, &mut map, name, |_, m| m.next_value::<Option<u64>>())?;
                }
                _ => {
                    let v = field(ctx, &mut map, name, |_, m| m.next_value::<Option<String>>())?;
                    if name == "SequenceNumber" {
                        p.sequence_number = v;
                    } else {
                        p.stream_view_type = v;
                    }
                }
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventID":"1","eventName":"INSERT","eventVersion":"1.0",
        "eventSource":"aws:dynamodb","awsRegion":"us-west-2",
        "dynamodb":{"Keys":{"Id":{"N":"101"}},
          "NewImage":{"Message":{"S":"New item!"},"Id":{"N":"101"}},
          "SequenceNumber":"111","SizeBytes":26,"StreamViewType":"NEW_AND_OLD_IMAGES"},
        "eventSourceARN":"stream-ARN"}"#;

    fn event(records: &[&str]) -> String {
        format!("{{\"Records\":[{}]}}", records.join(","))
    }

    #[test]
    fn decodes_a_documented_record() {
        // GIVEN the Lambda guide's INSERT record WHEN decoded THEN every field is read
        let rec = decode_record_json(RECORD).expect("valid record");
        assert_eq!(rec.event_id, "1");
        assert_eq!(rec.event_name, "INSERT");
        assert_eq!(rec.sequence_number, "111");
        assert_eq!(rec.size_bytes, Some(26));
        assert_eq!(rec.aws_region.as_deref(), Some("us-west-2"));
        assert_eq!(rec.event_source_arn.as_deref(), Some("stream-ARN"));
        assert_eq!(rec.approximate_creation_time, None);
        let img = rec.new_image.expect("new image");
        assert_eq!(
            AttrValue::get_path(&img, "Message"),
            Some(&AttrValue::S("New item!".into()))
        );
        assert_eq!(rec.old_image, None);
    }

    #[test]
    fn a_bad_record_fails_alone_with_its_path_and_ids() {
        let bad = RECORD.replace(r#"{"S":"New item!"}"#, r#"{"X":"New item!"}"#);
        let text = event(&[RECORD, &bad, RECORD]);
        let out = decode_event_str(&text, false).expect("envelope is fine");
        assert_eq!(out.len(), 3);
        assert!(out.first().is_some_and(|r| r.result.is_ok()));
        assert!(out.get(2).is_some_and(|r| r.result.is_ok()));
        let failed = out.get(1).expect("second record");
        let Err(f) = &failed.result else {
            panic!("expected a failure")
        };
        assert_eq!(
            f.error.to_string(),
            "Records[1].dynamodb.NewImage.Message: unknown type tag \"X\""
        );
        assert_eq!(f.event_id.as_deref(), Some("1"));
        assert_eq!(f.sequence_number.as_deref(), Some("111"));
        assert_eq!(text.get(failed.raw.clone()), Some(bad.as_str()));
        let stopped = decode_event_str(&text, true).expect("envelope is fine");
        assert_eq!(stopped.len(), 2);
    }

    #[test]
    fn the_single_pass_matches_the_two_pass_decoder() {
        // GIVEN events with odd spacing, extra fields, bad and good records
        let bad = RECORD.replace(r#"{"S":"New item!"}"#, r#"{"X":"New item!"}"#);
        let no_keys = RECORD.replace(r#""Keys":{"Id":{"N":"101"}},"#, "");
        let cases = [
            event(&[RECORD, RECORD]),
            event(&[]),
            event(&[RECORD, &bad, RECORD]),
            event(&[&no_keys, RECORD]),
            format!(
                " {{ \"x\" : [1, {{}}] ,\n \"Records\" : [ {RECORD} ,\t{bad} ] , \"y\": null }} "
            ),
            format!("{{\"Records\":[{RECORD}],\"Records\":[]}}"),
            format!("{{\"Records\":[{RECORD},]}}"),
            format!("{{\"Records\":[{bad}, {{]}}"),
            format!("{{\"Re\\u0063ords\":[{RECORD}]}}"),
            format!("[[{RECORD}]]"),
            format!("{{\"Records\":[{RECORD}]}} x"),
        ];
        for text in &cases {
            for stop in [false, true] {
                // WHEN decoded both ways THEN the outcomes are identical
                assert_eq!(
                    decode_event_str(text, stop),
                    decode_event_two_pass(text, stop),
                    "{text}"
                );
            }
        }
        assert!(
            decode_event_fast(&event(&[RECORD, RECORD]), false, &mut |t, p| fast::record(
                t,
                p,
                Want::Trees
            ))
            .is_some()
        );
    }

    #[test]
    fn envelope_errors_are_whole_event_errors() {
        for bad in [
            "",
            "[]",
            "{}",
            "{\"Records\": 5}",
            "{\"Records\": [",
            "nope",
        ] {
            assert!(decode_event_str(bad, false).is_err(), "{bad:?}");
        }
        assert!(decode_event_bytes(b"{\"Records\": [\xff]}", false).is_err());
    }

    #[test]
    fn missing_and_invalid_fields_name_their_place() {
        let no_seq = RECORD.replace(r#""SequenceNumber":"111","#, "");
        let e = decode_record_json(&no_seq).expect_err("no sequence number");
        assert_eq!(
            e.to_string(),
            "dynamodb: missing required field \"SequenceNumber\""
        );
        let bad_name = RECORD.replace("INSERT", "UPSERT");
        let e = decode_record_json(&bad_name).expect_err("bad event name");
        assert!(e.to_string().starts_with("eventName: unknown event name"));
        let bad_size = RECORD.replace("26", "-1");
        let e = decode_record_json(&bad_size).expect_err("negative size");
        assert!(e.to_string().starts_with("dynamodb.SizeBytes: "), "{e}");
    }

    #[test]
    fn value_errors_carry_paths_and_tags() {
        let cases = [
            (r#"{"S": 5}"#, "S: invalid type: integer, expected a string"),
            (
                r#"{"N": "1e999"}"#,
                "number out of range (magnitude must be below 1E+127",
            ),
            (
                r#"{"L": [{"S": "a"}, {"Q": 1}]}"#,
                "[1]: unknown type tag \"Q\"",
            ),
            (
                r#"{"M": {"a": {"S": "x", "N": "1"}}}"#,
                "a: expected exactly one type tag",
            ),
            (
                r#"{"M": {"a": {}}}"#,
                "a: expected exactly one type tag, found none",
            ),
            (r#"{"B": "!!"}"#, "invalid base64"),
            (
                r#"{"NS": ["1", "x"]}"#,
                "[1]: invalid number (not a decimal literal, 1 character)",
            ),
            (r#"{"NULL": false}"#, "NULL: expected true, found false"),
        ];
        for (text, want) in cases {
            let e = decode_value_json(text).expect_err(text);
            assert!(e.to_string().starts_with(want), "{text}: {e}");
        }
    }

    /// A string AttributeValue inside `levels` nested lists.
    pub(crate) fn nested_lists(levels: usize) -> String {
        let mut s = String::from(r#"{"S":"leaf"}"#);
        for _ in 0..levels {
            s = format!(r#"{{"L":[{s}]}}"#);
        }
        s
    }

    #[test]
    fn nesting_is_limited_to_32_levels() {
        let nest = nested_lists;
        assert!(decode_value_json(&nest(32)).is_ok());
        let e = decode_value_json(&nest(33)).expect_err("too deep");
        assert!(e.msg.contains("nesting deeper"), "{e}");
        assert!(decode_value_json(&nest(500)).is_err());
    }

    #[test]
    fn duplicates_behave_like_json_loads() {
        let v = decode_image_json(r#"{"a":{"S":"1"},"b":{"S":"2"},"a":{"S":"3"}}"#).expect("ok");
        assert_eq!(
            v,
            vec![
                ("a".into(), AttrValue::S("3".into())),
                ("b".into(), AttrValue::S("2".into()))
            ]
        );
        let v = decode_value_json(r#"{"S":"1","S":"2"}"#).expect("ok");
        assert_eq!(v, AttrValue::S("2".into()));
    }
}
