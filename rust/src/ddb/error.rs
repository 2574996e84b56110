//! The internal decode error: a message plus the attribute path where it happened.
use std::fmt;

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A decode failure. The path is collected while unwinding (innermost first)
/// and rendered outermost first: `Records[17].dynamodb.NewImage.user.email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeErr {
    rev_path: Vec<PathSeg>,
    pub msg: String,
}

impl DecodeErr {
    pub fn new(msg: impl Into<String>) -> Self {
        DecodeErr {
            rev_path: Vec::new(),
            msg: msg.into(),
        }
    }

    /// The same error, one level further out.
    pub fn within(mut self, seg: PathSeg) -> Self {
        self.rev_path.push(seg);
        self
    }

    pub fn within_key(self, key: &str) -> Self {
        self.within(PathSeg::Key(key.to_owned()))
    }

    pub fn within_index(self, i: usize) -> Self {
        self.within(PathSeg::Index(i))
    }

    /// The rendered path (empty at the root).
    pub fn path(&self) -> String {
        let mut out = String::new();
        for seg in self.rev_path.iter().rev() {
            match seg {
                PathSeg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    push_capped(&mut out, k, MAX_KEY_CHARS);
                }
                PathSeg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// "1 character" / "N characters": the size of a value, told instead of the value.
pub fn length_of(text: &str) -> String {
    match text.chars().count() {
        1 => "1 character".to_owned(),
        n => format!("{n} characters"),
    }
}

/// Attribute names in a path are shown up to this many characters: names are
/// schema, not data, but a name may be up to 64 KB long.
pub const MAX_KEY_CHARS: usize = 64;

/// Append `text`, cut after `max` characters with "..." marking the cut.
pub fn push_capped(out: &mut String, text: &str, max: usize) {
    match text.char_indices().nth(max) {
        Some((cut, _)) => {
            out.push_str(text.get(..cut).unwrap_or(""));
            out.push_str("...");
        }
        None => out.push_str(text),
    }
}

/// `text` quoted as a Rust/JSON-like string, cut after `max` characters: for
/// names (type tags, attribute names), never for values.
pub fn quote_capped(text: &str, max: usize) -> String {
    let mut cut = String::new();
    push_capped(&mut cut, text, max);
    format!("{cut:?}")
}

/// A serde / serde_json message with every quoted input value removed:
/// `invalid type: string "jane@x", expected a string` becomes `invalid type:
/// string, expected a string`; `unknown variant `x`` loses its text. Syntax
/// errors (`expected `,` or `}``, `EOF while parsing`, ...) quote no input and
/// pass unchanged; so does the position serde_json appends (`at line 1 column 9`).
pub fn redact_serde(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            // The expectation is ours (a visitor's `expecting`) and comes last.
            let (unexpected, tail) = match rest.rfind(", expected ") {
                Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
                None => (rest, ""),
            };
            let kind = match unexpected.find([' ', '`', '"']) {
                Some(i) => match unexpected.get(..i).unwrap_or("") {
                    "floating" => "floating point",
                    "unit" => "unit value",
                    "byte" => "byte array",
                    "newtype" => "newtype struct",
                    k => k,
                },
                None => unexpected,
            };
            let kind = match kind {
                "string" | "integer" | "floating point" | "boolean" | "character" | "null"
                | "map" | "sequence" | "unit value" | "byte array" | "newtype struct" | "enum"
                | "option" => kind,
                _ => "value",
            };
            return format!("{prefix}{kind}{tail}");
        }
    }
    for prefix in ["unknown variant ", "unknown field "] {
        if msg.starts_with(prefix) {
            // Names of variants/fields expected are ours; the one found is input.
            let tail = msg
                .find(", expected")
                .map_or("", |i| msg.get(i..).unwrap_or(""));
            return format!("{}{tail}", prefix.trim_end());
        }
    }
    msg.to_owned()
}

impl fmt::Display for DecodeErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{path}: {}", self.msg)
        }
    }
}

impl std::error::Error for DecodeErr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_and_indexes_outermost_first() {
        let e = DecodeErr::new("unknown type tag \"X\"")
            .within_key("email")
            .within_key("user")
            .within_key("NewImage")
            .within_key("dynamodb")
            .within_index(17)
            .within_key("Records");
        assert_eq!(
            e.to_string(),
            "Records[17].dynamodb.NewImage.user.email: unknown type tag \"X\""
        );
        let e = DecodeErr::new("m").within_index(2).within_key("steps");
        assert_eq!(e.to_string(), "steps[2]: m");
        assert_eq!(DecodeErr::new("m").to_string(), "m");
    }

    #[test]
    fn long_names_are_cut_in_paths() {
        let long = "n".repeat(100);
        let e = DecodeErr::new("m")
            .within_key(&long)
            .within_key("é".repeat(70).as_str());
        assert_eq!(
            e.to_string(),
            format!("{}....{}...: m", "é".repeat(64), "n".repeat(64))
        );
    }

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        let m = "jane.doe@corp.example";
        for (msg, want) in [
            (
                format!("invalid type: string \"{m}\", expected true or false"),
                "invalid type: string, expected true or false",
            ),
            (
                format!("invalid type: string \"x, expected {m}\", expected a map"),
                "invalid type: string, expected a map",
            ),
            (
                "invalid type: integer `42`, expected a string".to_owned(),
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: floating point `1.5`, expected a string".to_owned(),
                "invalid type: floating point, expected a string",
            ),
            (
                "invalid type: boolean `true`, expected a string".to_owned(),
                "invalid type: boolean, expected a string",
            ),
            (
                "invalid type: map, expected a string".to_owned(),
                "invalid type: map, expected a string",
            ),
            (
                format!("invalid value: string \"{m}\", expected x"),
                "invalid value: string, expected x",
            ),
            (
                format!("unknown variant `{m}`, expected `A` or `B`"),
                "unknown variant, expected `A` or `B`",
            ),
            (
                "expected `,` or `}` at line 1 column 9".to_owned(),
                "expected `,` or `}` at line 1 column 9",
            ),
        ] {
            assert_eq!(redact_serde(&msg), want);
        }
    }
}
