//! A JSON validator for the decoding hot path.
//!
//! Every text packet's payload must be checked to be well-formed JSON (RFC 8259, as
//! `JSON.parse` reads it) before anything else looks at it, but the payload itself stays as text:
//! nothing is built. `serde_json`'s skipping deserializer does this job at about a third of the
//! speed of this single, allocation-free pass (see `benches/codec.rs`), and the decode of a
//! typical event is dominated by it; hence this small scanner. `serde_json` still parses
//! everything the application deserializes, and a property test and the `socketio_packet` fuzz
//! target check that both accept exactly the same documents.

/// Deepest nesting of arrays and objects accepted, as `serde_json`'s default recursion limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// Where and why a document is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Byte offset of the first offending byte (or the end of input).
    pub(crate) offset: usize,
    /// What was expected there.
    pub(crate) reason: &'static str,
}

/// Checks that `b` is exactly one JSON value, surrounded by optional whitespace. The caller
/// guarantees `b` is UTF-8 (it comes from a `&str`), so only the JSON grammar is checked.
pub(crate) fn validate(b: &[u8]) -> Result<(), JsonError> {
    let err = |offset, reason| Err(JsonError { offset, reason });
    // One bit per open container: set for an object, clear for an array.
    let mut stack = [0u64; MAX_DEPTH / 64];
    let mut depth = 0usize;
    let mut i = 0;
    loop {
        // Expecting a value.
        i = skip_ws(b, i);
        match b.get(i) {
            Some(&open @ (b'{' | b'[')) => {
                if depth == MAX_DEPTH {
                    return err(i, "nesting deeper than 128 levels");
                }
                let is_obj = open == b'{';
                if is_obj {
                    stack[depth / 64] |= 1 << (depth % 64);
                } else {
                    stack[depth / 64] &= !(1 << (depth % 64));
                }
                depth += 1;
                i = skip_ws(b, i + 1);
                let close = if is_obj { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    depth -= 1;
                    i += 1;
                } else if is_obj {
                    i = key(b, i)?;
                    continue;
                } else {
                    continue;
                }
            }
            Some(b'"') => i = string(b, i)?,
            Some(b'-' | b'0'..=b'9') => i = number(b, i)?,
            Some(b't') => i = literal(b, i, b"true")?,
            Some(b'f') => i = literal(b, i, b"false")?,
            Some(b'n') => i = literal(b, i, b"null")?,
            _ => return err(i, "expected a value"),
        }
        // After a value: close containers until one takes another element.
        loop {
            i = skip_ws(b, i);
            if depth == 0 {
                return if i == b.len() {
                    Ok(())
                } else {
                    err(i, "trailing characters")
                };
            }
            let top = depth - 1;
            let in_obj = stack[top / 64] & (1 << (top % 64)) != 0;
            match (in_obj, b.get(i)) {
                (_, Some(b',')) => {
                    i += 1;
                    if in_obj {
                        i = key(b, skip_ws(b, i))?;
                    }
                    break;
                }
                (false, Some(b']')) | (true, Some(b'}')) => {
                    depth -= 1;
                    i += 1;
                }
                (false, _) => return err(i, "expected ',' or ']'"),
                (true, _) => return err(i, "expected ',' or '}'"),
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An object key and its colon, starting at the key's opening quote.
fn key(b: &[u8], i: usize) -> Result<usize, JsonError> {
    if b.get(i) != Some(&b'"') {
        return Err(JsonError {
            offset: i,
            reason: "expected a string key",
        });
    }
    let i = skip_ws(b, string(b, i)?);
    if b.get(i) != Some(&b':') {
        return Err(JsonError {
            offset: i,
            reason: "expected ':'",
        });
    }
    Ok(i + 1)
}

/// A string starting at its opening quote; returns the offset after the closing quote.
fn string(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let err = |offset, reason| Err(JsonError { offset, reason });
    i += 1;
    loop {
        // Plain characters are the bulk of any string: skip them in one tight scan.
        let rest = b.get(i..).unwrap_or_default();
        let Some(n) = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        else {
            return err(b.len(), "unterminated string");
        };
        i += n;
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => match b.get(i + 2..i + 6) {
                    Some(h) if h.iter().all(u8::is_ascii_hexdigit) => i += 6,
                    _ => return err(i + 1, "invalid \\u escape"),
                },
                _ => return err(i + 1, "invalid escape"),
            },
            _ => return err(i, "control character in string"),
        }
    }
}

/// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let digits = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let bad = |offset| {
        Err(JsonError {
            offset,
            reason: "invalid number",
        })
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(i),
        _ => return bad(i),
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return bad(i + 1);
        }
        i += 1 + n;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return bad(i);
        }
        i += n;
    }
    Ok(i)
}

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, JsonError> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(JsonError {
            offset: i,
            reason: "invalid literal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_like_json_parse() {
        for ok in [
            "0",
            "-0",
            "1.5e+3",
            "-12.25E-2",
            "\"\"",
            "\"\\u00e9\\n\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            " [ 1 , {\"a\" : [ null ] } ] ",
            "{\"a\":{},\"b\":[[]]}",
            "\"é\"",
        ] {
            assert_eq!(validate(ok.as_bytes()), Ok(()), "{ok}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "",
            " ",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "{\"a\":1,}",
            "[1 2]",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\u{1}\"",
            "tru",
            "nul",
            "[1]]",
            "[1}",
            "{\"a\":1]",
            "1 2",
            "NaN",
            "[",
            "{",
            "\"abc",
        ] {
            assert!(validate(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn depth_limit_is_exact() {
        let at = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(validate(at.as_bytes()), Ok(()));
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(validate(over.as_bytes()).unwrap_err().offset, MAX_DEPTH);
        let objs = format!("{}1{}", "{\"k\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(validate(objs.as_bytes()), Ok(()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Same verdict as serde_json on documents made of JSON's own characters.
        #[test]
        fn agrees_with_serde_json(doc in r#"[\[\]{}":,0-9eE.+\- \\/ntrufalsbu\u{1}\u{e9}]{0,40}"#) {
            let ours = validate(doc.as_bytes()).is_ok();
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&doc).is_ok();
            proptest::prop_assert_eq!(ours, theirs, "{:?}", doc);
        }

        /// Same verdict on valid documents and on each one-byte corruption of them.
        #[test]
        fn agrees_on_corrupted_documents(value in arb_json(), at in 0usize..1000, with in proptest::sample::select(b"[]{}\":,0-9.e-tnf \\".to_vec())) {
            let mut doc = value.to_string().into_bytes();
            proptest::prop_assert_eq!(validate(&doc), Ok(()));
            let at = at % doc.len();
            doc[at] = with;
            if let Ok(doc) = std::str::from_utf8(&doc) {
                let theirs = serde_json::from_str::<serde::de::IgnoredAny>(doc).is_ok();
                proptest::prop_assert_eq!(validate(doc.as_bytes()).is_ok(), theirs, "{:?}", doc);
            }
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
