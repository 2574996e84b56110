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
                    out.push_str(k);
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
}
