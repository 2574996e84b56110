//! HTML autoescaping with the character set Jinja2 (markupsafe) uses.
//!
//! MiniJinja's own HTML escaping also escapes `/` (as `&#x2f;`), which turns
//! every URL in an e-mail into `https:&#x2f;&#x2f;...`: valid, but bulky and
//! hard to read in the source. This formatter escapes exactly `& < > " '`
//! (spelled like markupsafe: `&amp; &lt; &gt; &#34; &#39;`), so rendered HTML
//! matches what Jinja2 produces. Safe strings (`|safe`, macro output) pass
//! through; text templates are not escaped at all.
use minijinja::value::{Value, ValueKind};
use minijinja::{escape_formatter, AutoEscape, Error, Output, State};

use crate::swar;

/// The environment's output formatter (see the module docs).
///
/// Strings (most of what a notification prints) are written directly: in text
/// templates and for safe strings as they are, in HTML through `write_escaped`.
/// MiniJinja's default formatter goes through `Display` and `fmt::write` for
/// every value, which cost more than the copy itself.
pub fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let mode = state.auto_escape();
    if let Some(s) = value.as_str() {
        match mode {
            AutoEscape::None => return out.write_str(s).map_err(Error::from),
            AutoEscape::Html if value.is_safe() => return out.write_str(s).map_err(Error::from),
            AutoEscape::Html => return write_escaped(out, s),
            _ => return escape_formatter(out, state, value),
        }
    }
    if mode != AutoEscape::Html || value.is_safe() {
        return escape_formatter(out, state, value);
    }
    match value.kind() {
        // Numbers, booleans and none render without special characters.
        ValueKind::Number | ValueKind::Bool | ValueKind::None => {
            escape_formatter(out, state, value)
        }
        _ => write_escaped(out, &value.to_string()),
    }
}

/// Offset of the first 8-byte word of `b` that may hold one of `& < > " '`:
/// the bytes before it need no escaping, so most printed values are checked
/// a word at a time.
fn clean_prefix(b: &[u8]) -> usize {
    swar::scan(b, |w| {
        [b'&', b'<', b'>', b'"', b'\'']
            .iter()
            .fold(0, |acc, &c| acc | swar::zero_bytes(w ^ swar::splat(c)))
    })
    .0
}

fn write_escaped(out: &mut Output, s: &str) -> Result<(), Error> {
    let bytes = s.as_bytes();
    let clean = clean_prefix(bytes);
    if clean == bytes.len() {
        return out.write_str(s).map_err(Error::from);
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&#34;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        if let Some(chunk) = s.get(start..i) {
            out.write_str(chunk).map_err(Error::from)?;
        }
        out.write_str(rep).map_err(Error::from)?;
        start = i + 1;
    }
    if let Some(rest) = s.get(start..) {
        out.write_str(rest).map_err(Error::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{context, Environment};

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_formatter(formatter);
        env.add_template(
            "t.html",
            "<a href=\"{{ url }}\">{{ s }}</a>{{ n }}{{ safe|safe }}{{ seq }}",
        )
        .unwrap();
        env.add_template("t.txt", "{{ s }}").unwrap();
        env
    }

    #[test]
    fn every_position_of_a_special_character_is_escaped() {
        // GIVEN texts with one special character at each offset around the word size
        let env = env();
        for c in ['&', '<', '>', '"', '\'', 'x'] {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrstu".chars().take(20).collect();
                s.insert(at, c);
                let want = s
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&#34;")
                    .replace('\'', "&#39;");
                // WHEN rendered into HTML THEN exactly that character is escaped
                let got = env
                    .get_template("t.html")
                    .unwrap()
                    .render(context! { url => "", s => s.clone(), n => 1, safe => "", seq => Vec::<String>::new() })
                    .unwrap();
                assert_eq!(got, format!("<a href=\"\">{want}</a>1[]"), "{s:?}");
            }
        }
    }

    #[test]
    fn html_escapes_like_markupsafe() {
        let env = env();
        let ctx = context! {
            url => "https://example.com/?a=1&b='x'",
            s => "<b>\"Tom\" & Jürgen's</b>",
            n => 42,
            safe => "<i>ok</i>",
            seq => vec!["<"],
        };
        assert_eq!(
            env.get_template("t.html").unwrap().render(ctx.clone()).unwrap(),
            "<a href=\"https://example.com/?a=1&amp;b=&#39;x&#39;\">&lt;b&gt;&#34;Tom&#34; &amp; Jürgen&#39;s&lt;/b&gt;</a>42<i>ok</i>[&#34;&lt;&#34;]"
        );
        assert_eq!(
            env.get_template("t.txt").unwrap().render(ctx).unwrap(),
            "<b>\"Tom\" & Jürgen's</b>"
        );
    }
}
