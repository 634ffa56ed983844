//! The dotted key of the TOML value at a byte offset, so that a type error the TOML parser
//! reports by position alone ("invalid type: string \"eight\", expected i64") can name its
//! field (`gpu.count`) as every other scenario error does.
//!
//! The offset is where the parser's error span starts (the value). The key is the nearest
//! table header above it (`[gpu]`, `[[models]]`) joined with the keys that lead to the
//! value on its own line (`batch = { kind = "poisson" }` gives `batch.kind`). A value inside
//! a multi-line array or string is named by the key whose line opened it only when that is
//! on the same line; otherwise just the table is named.

/// The dotted key of the value starting at byte `at` of `text`, if one can be read.
pub fn key_at(text: &str, at: usize) -> Option<String> {
    let at = floor_char_boundary(text, at.min(text.len()));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let mut path = table_of(&text[..line_start]);
    path.extend(keys_on_line(&text[line_start..at]));
    (!path.is_empty()).then(|| path.join("."))
}

/// The largest char boundary at or below `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The keys of the last table header (`[a.b]` or `[[a]]`) in `before`.
fn table_of(before: &str) -> Vec<String> {
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| {
            let inner = h.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or("");
            inner
                .split('.')
                .map(|k| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The keys leading to the end of `prefix` (a line up to a value): the inline tables still
/// open (`a = { b = {`), then the key of the last `key =` at that depth.
fn keys_on_line(prefix: &str) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = prefix.chars();
    while let Some(c) = chars.next() {
        let ident = c.is_alphanumeric() || c == '_' || c == '-';
        if ident && !in_word {
            word.clear();
        }
        in_word = ident;
        match c {
            '"' | '\'' => {
                // A quoted key or a string value: read to its closing quote.
                word = chars.by_ref().take_while(|&q| q != c).collect();
            }
            '=' => pending = Some(std::mem::take(&mut word)),
            '{' => {
                open.extend(pending.take());
                word.clear();
            }
            '}' => {
                open.pop();
                pending = None;
            }
            ',' => pending = None,
            '#' => break,
            _ if ident => word.push(c),
            c if c.is_whitespace() => {}
            _ => word.clear(),
        }
    }
    open.extend(pending);
    open.into_iter().filter(|k| !k.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::key_at;

    fn key_of(text: &str, value: &str) -> Option<String> {
        key_at(text, text.find(value).unwrap())
    }

    #[test]
    fn a_value_is_named_by_its_table_and_keys() {
        let t = "name = \"x\"\n[gpu]\nkind = \"H100\"\ncount = \"eight\"\n";
        assert_eq!(key_of(t, "\"eight\""), Some("gpu.count".into()));
        assert_eq!(key_of(t, "\"x\""), Some("name".into()));
        let t = "[[models]]\nname = \"a\"\nbatch = { kind = \"poisson\", size = 3 }\n";
        assert_eq!(key_of(t, "\"poisson\""), Some("models.batch.kind".into()));
        assert_eq!(key_of(t, "3 }"), Some("models.batch.size".into()));
        let t = "[[models]]\nsla = { \"ms\" = \"slow\" }  # the SLA\n";
        assert_eq!(key_of(t, "\"slow\""), Some("models.sla.ms".into()));
        let t = "[[models]]\nx = { name = \"a\", batch = { kind = 7 } }\n";
        assert_eq!(key_of(t, "7 }"), Some("models.x.batch.kind".into()));
    }

    #[test]
    fn an_offset_past_the_end_or_inside_a_character_is_safe() {
        assert_eq!(key_at("[gpu]\ncount = é", 100), Some("gpu.count".into()));
        assert_eq!(key_at("a = \"é\"", 6), Some("a".into()));
        assert_eq!(key_at("", 0), None);
    }
}
