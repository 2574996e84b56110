//! No-panic property tests for the pure-Rust decoder: arbitrary bytes and
//! structurally mutated valid events must decode or fail with a `DecodeErr`.
use _core::ddb::event::{
    decode_event_bytes, decode_event_lazy, decode_event_str, decode_event_two_pass,
    decode_image_json, decode_value_json, image_from_span, DecodedRecord,
};
use proptest::prelude::*;

const VALID: &str = r#"{"Records":[
 {"eventID":"1","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",
  "dynamodb":{"ApproximateCreationDateTime":1767225600.5,"Keys":{"pk":{"S":"USER#1"}},
   "NewImage":{"pk":{"S":"USER#1"},"n":{"N":"-12.50E+3"},"b":{"B":"bm90aWZpZXI="},"ok":{"BOOL":true},
     "none":{"NULL":true},"l":{"L":[{"S":"a"},{"M":{"x":{"N":"1"}}},{"L":[]}]},
     "ss":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AA=="]},
     "user":{"M":{"email":{"S":"u@example.com"},"emoji":{"S":"\ud83d\ude00"}}}},
   "SequenceNumber":"100","SizeBytes":120,"StreamViewType":"NEW_AND_OLD_IMAGES"},
  "eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/t/stream/x"},
 {"eventID":"2","eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"S":"USER#2"}},
   "OldImage":{"pk":{"S":"USER#2"}},"SequenceNumber":"200"}}]}"#;

/// Bytes that matter to the grammar, so mutations hit structure, not just text.
const ALPHABET: &[u8] = b"{}[]\":,0123456789eE.-+ \\NSLMBx\xff\x00";

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// Duplicate a span (repeats keys, tags, whole values).
    Dup(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(ALPHABET.to_vec());
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Edit::Replace(p, b)),
        (any::<usize>(), byte).prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1usize..40).prop_map(|(p, n)| Edit::Dup(p, n)),
    ]
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = base.to_vec();
    for e in edits {
        if v.is_empty() {
            break;
        }
        let len = v.len();
        match *e {
            Edit::Replace(p, b) => {
                if let Some(x) = v.get_mut(p % len) {
                    *x = b;
                }
            }
            Edit::Insert(p, b) => v.insert(p % (len + 1), b),
            Edit::Delete(p) => {
                v.remove(p % len);
            }
            Edit::Dup(p, n) => {
                let start = p % len;
                let end = (start + n).min(len);
                let span: Vec<u8> = v.get(start..end).map(<[u8]>::to_vec).unwrap_or_default();
                for (i, b) in span.into_iter().enumerate() {
                    v.insert(end + i, b);
                }
            }
        }
    }
    v
}

fn decode_everything(data: &[u8]) {
    for stop in [false, true] {
        if let Ok(records) = decode_event_bytes(data, stop) {
            for r in records {
                // A record's raw range always lies inside the input.
                assert!(r.raw.end <= data.len());
                if let Err(f) = r.result {
                    assert!(f.error.to_string().starts_with("Records["));
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_value_json(text);
        let _ = decode_image_json(text);
    }
}

#[test]
fn the_valid_event_decodes() {
    let records = decode_event_bytes(VALID.as_bytes(), false).expect("valid envelope");
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.result.is_ok()));
}

/// A lazily decoded record with its images built from their spans.
fn fill(text: &str, mut r: DecodedRecord) -> DecodedRecord {
    if let Ok(data) = &mut r.result {
        if let Some(span) = data.new_image_span.take() {
            data.new_image = Some(image_from_span(&text[span]).expect("skimmed image builds"));
        }
        if let Some(span) = data.old_image_span.take() {
            data.old_image = Some(image_from_span(&text[span]).expect("skimmed image builds"));
        }
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_everything(&data);
    }

    #[test]
    fn mutated_events_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let data = apply(VALID.as_bytes(), &edits);
        decode_everything(&data);
    }

    #[test]
    fn the_single_pass_equals_the_reference_on_mutated_events(edits in prop::collection::vec(edit(), 1..6)) {
        // GIVEN a mutated event WHEN decoded by the hand-written single pass and by the
        // serde reference THEN records, spans, values and errors are identical
        let data = apply(VALID.as_bytes(), &edits);
        if let Ok(text) = std::str::from_utf8(&data) {
            for stop in [false, true] {
                prop_assert_eq!(decode_event_str(text, stop), decode_event_two_pass(text, stop));
            }
        }
    }

    #[test]
    fn skimmed_images_equal_built_ones_on_mutated_events(edits in prop::collection::vec(edit(), 1..6)) {
        // GIVEN a mutated event WHEN decoded with images skimmed and with images built
        // THEN the same records succeed and fail alike, and each skimmed span builds the image
        let data = apply(VALID.as_bytes(), &edits);
        if let Ok(text) = std::str::from_utf8(&data) {
            for stop in [false, true] {
                let built = decode_event_str(text, stop);
                let lazy = decode_event_lazy(text, stop).map(|records| {
                    records.into_iter().map(|r| fill(text, r)).collect::<Vec<_>>()
                });
                prop_assert_eq!(built, lazy);
            }
        }
    }

    #[test]
    fn grammar_soup_never_panics(data in prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), 0..200)) {
        decode_everything(&data);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed(depth in 0usize..3000, list in any::<bool>()) {
        let mut s = String::from(r#"{"S":"x"}"#);
        for _ in 0..depth {
            s = if list { format!(r#"{{"L":[{s}]}}"#) } else { format!(r#"{{"M":{{"k":{s}}}}}"#) };
        }
        let r = decode_value_json(&s);
        prop_assert_eq!(r.is_ok(), depth <= 32);
    }
}
