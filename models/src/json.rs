//! JSON input: finding a field's line in a file's text, and naming a key the file should
//! not have. Every JSON file migopt reads as input is read strictly: its structs refuse
//! unknown keys (`deny_unknown_fields`), and [`unknown_key`] turns serde's error (with the
//! path `serde_path_to_error` tracks) into one that names the file, the line and the key's
//! full path (`gpus[3].layout[0].proc`), with the nearest known key when one is close, so
//! that a misspelt key is never dropped.

use crate::error::{Error, LineIndex, Origin};
use std::path::Path;

/// The 1-based line of the value at `field` (such as `gpus[3].layout[0].model`) in a plan's
/// JSON text, so that checks made after parsing can still point at a line.
pub fn json_line(text: &str, field: &str) -> Option<usize> {
    let mut sc = JsonScan {
        b: text.as_bytes(),
        i: 0,
    };
    for seg in field.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, rest)) => (k, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (seg, None),
        };
        sc.key(key)?;
        if let Some(n) = index {
            sc.element(n)?;
        }
    }
    sc.ws();
    Some(LineIndex::new(text).line_of_byte(sc.i))
}

/// A cursor over JSON text that is known to parse: finds keys and array elements.
struct JsonScan<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonScan<'_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == 0xEF || *c == 0xBB || *c == 0xBF)
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn string(&mut self) -> Option<&[u8]> {
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(&self.b[start..self.i - 1]);
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips one value of any kind.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        let mut depth = 0usize;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    self.i += 1;
                }
                b',' | b'}' | b']' if depth == 0 => return Some(()),
                _ => self.i += 1,
            }
            if depth == 0 && matches!(self.b.get(self.i.wrapping_sub(1)), Some(b'"' | b'}' | b']'))
            {
                return Some(());
            }
        }
    }

    /// Moves into the object at the cursor, to the value of `key`.
    fn key(&mut self, key: &str) -> Option<()> {
        self.eat(b'{')?;
        loop {
            let k = self.string()?.to_vec();
            self.eat(b':')?;
            if k == key.as_bytes() {
                return Some(());
            }
            self.skip()?;
            self.eat(b',')?;
        }
    }

    /// Moves into the array at the cursor, to element `n`.
    fn element(&mut self, n: usize) -> Option<()> {
        self.eat(b'[')?;
        for _ in 0..n {
            self.skip()?;
            self.eat(b',')?;
        }
        Some(())
    }
}

/// Why JSON text did not parse as a value: serde's error and the path of the value it is
/// about (`gpus[3].layout[0].proc`; empty at the top level), as `serde_path_to_error`
/// tracks it.
#[derive(Debug)]
pub struct Refusal {
    /// serde's error (its line is the problem's).
    pub error: serde_json::Error,
    /// The path of the value or key the error is about.
    pub path: String,
}

/// Parses JSON `text` as a `T`, or says why not and where ([`Refusal`]).
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, Refusal> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| Refusal {
        path: e.path().to_string(),
        error: e.into_inner(),
    })?;
    de.end().map_err(|error| Refusal {
        error,
        path: String::new(),
    })?;
    Ok(value)
}

/// The error for a refusal `r` of the JSON of `file` when serde refused an unknown key
/// (`deny_unknown_fields`): a field error at the key's line, naming its path, with the
/// nearest known key (or the known keys). `None` for any other error.
pub fn unknown_key(r: &Refusal, file: &Path) -> Option<Error> {
    let e = &r.error;
    let msg = e.to_string();
    let msg = msg.strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))?;
    let (key, rest) = msg.strip_prefix("unknown field `")?.split_once('`')?;
    let known: Vec<&str> = match rest.strip_prefix(", expected ") {
        Some(list) => list.split('`').skip(1).step_by(2).collect(),
        None => Vec::new(),
    };
    let message = match nearest(key, &known) {
        Some(k) => format!("unknown key; did you mean `{k}`?"),
        None if known.is_empty() => "unknown key; nothing is expected here".to_string(),
        None => format!("unknown key (the keys here are `{}`)", known.join("`, `")),
    };
    Some(Error::field(
        Origin::at(file, e.line()),
        r.path.clone(),
        message,
    ))
}

/// The known key closest to `key` by edit distance (a swap of two neighbours is one edit),
/// if it is close: at most a third of `key`'s length away (at least one edit), or `key` is
/// its start (`rate` for `rate_qps`).
fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::osa_distance(key, k), *k))
        .filter(|(d, k)| *d <= limit || (key.len() >= 3 && k.starts_with(key)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        procs: u32,
        batch: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Vec<Inner>>,
    }

    fn refusal(text: &str) -> String {
        let r = parse::<Outer>(text).unwrap_err();
        unknown_key(&r, Path::new("f.json"))
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("not an unknown key: {}", r.error))
    }

    #[test]
    fn an_unknown_key_is_named_by_its_path_and_line() {
        let text = "{\n \"name\": \"a\",\n \"items\": [[{\"procs\": 1, \"batch\": 2}],\n  [{\"procs\": 2, \"batch\": 1}, {\"proc\": 3}]]\n}";
        assert_eq!(
            refusal(text),
            "f.json:4: field `items[1][1].proc`: unknown key; did you mean `procs`?"
        );
        let text = "{\"name\": \"a\", \"item\": []}";
        assert_eq!(
            refusal(text),
            "f.json:1: field `item`: unknown key; did you mean `items`?"
        );
        let text = "{\"name\": \"a\", \"items\": [[{\"zzzzzz\": 1}]]}";
        assert_eq!(
            refusal(text),
            "f.json:1: field `items[0][0].zzzzzz`: unknown key (the keys here are `procs`, `batch`)"
        );
    }

    #[test]
    fn keys_inside_strings_and_earlier_values_do_not_confuse_the_path() {
        let text = "{\"name\": \"x\\\"}, {\\\"k\", \"items\": [[{\"procs\": 1, \"batch\": 2, \"procz\": 1}]]}";
        assert_eq!(
            refusal(text),
            "f.json:1: field `items[0][0].procz`: unknown key; did you mean `procs`?"
        );
    }

    #[test]
    fn other_errors_are_left_to_the_caller() {
        let r = parse::<Outer>("{\"name\": 3}").unwrap_err();
        assert_eq!(r.path, "name");
        assert!(unknown_key(&r, Path::new("f.json")).is_none());
    }

    #[test]
    fn only_a_close_key_is_suggested() {
        assert_eq!(
            nearest("model_rate", &["model_rates", "routes"]),
            Some("model_rates")
        );
        assert_eq!(nearest("proc", &["procs", "batch"]), Some("procs"));
        assert_eq!(nearest("lable", &["env", "label"]), Some("label"));
        assert_eq!(nearest("gpuz", &["gpu", "gpus"]), Some("gpu"));
        assert_eq!(nearest("rate", &["model", "rate_qps"]), Some("rate_qps"));
        assert_eq!(nearest("colour", &["model", "batch"]), None);
        assert_eq!(nearest("ra", &["model", "rate_qps"]), None);
    }
}
