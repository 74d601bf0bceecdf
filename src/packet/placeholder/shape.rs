//! Telling a placeholder from any other object by the text of its first two members, without
//! reading anything else: the deserializer uses it at every object, so that maps which are not
//! placeholders are read in the one pass that gives them to the application.

/// What an object is, judged from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Any object that is not exactly a placeholder.
    Map,
    /// `{"_placeholder":true,"num":<n>}` in either order; `None` when `n` is not an integer that
    /// fits in a `u64`.
    Placeholder(Option<u64>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Flag,
    Num,
}

enum Scalar {
    True,
    Int(Option<u64>),
    Other,
}

/// Classifies the object whose first key starts (at its opening quote) at `text[0]`. The text
/// must be well-formed JSON; anything unexpected counts as [`Shape::Map`]. Only the two members
/// and their scalar values are looked at: a container value ends the scan at its first byte.
pub(crate) fn classify(text: &str) -> Shape {
    scan(text).unwrap_or(Shape::Map)
}

fn scan(text: &str) -> Option<Shape> {
    let b = text.as_bytes();
    let (first, i) = member(text, 0)?;
    let (v1, i) = scalar(b, colon(b, i)?)?;
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b',') {
        return None;
    }
    let (second, i) = member(text, skip_ws(b, i + 1))?;
    if second == first {
        return None;
    }
    let (v2, i) = scalar(b, colon(b, i)?)?;
    if b.get(skip_ws(b, i)) != Some(&b'}') {
        return None;
    }
    let (flag, num) = if first == Member::Flag {
        (v1, v2)
    } else {
        (v2, v1)
    };
    if !matches!(flag, Scalar::True) {
        return None;
    }
    Some(Shape::Placeholder(match num {
        Scalar::Int(n) => n,
        _ => None,
    }))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn colon(b: &[u8], i: usize) -> Option<usize> {
    let i = skip_ws(b, i);
    (b.get(i) == Some(&b':')).then(|| skip_ws(b, i + 1))
}

/// The end of the string literal starting at `b[i]` (just past its closing quote), and whether
/// it holds escapes.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// The key starting at `text[i]`, if it is one a placeholder has, and the offset after it.
fn member(text: &str, i: usize) -> Option<(Member, usize)> {
    let (end, escaped) = string_end(text.as_bytes(), i)?;
    let literal = text.get(i..end)?;
    // Keys are compared as JavaScript reads them: `"n\u0075m"` is `num`.
    let unescaped;
    let key = if escaped {
        unescaped = serde_json::from_str::<String>(literal).ok()?;
        unescaped.as_str()
    } else {
        &literal[1..literal.len() - 1]
    };
    match key {
        "_placeholder" => Some((Member::Flag, end)),
        "num" => Some((Member::Num, end)),
        _ => None,
    }
}

/// The scalar value starting at `b[i]`, and the offset after it; `None` for a container.
fn scalar(b: &[u8], i: usize) -> Option<(Scalar, usize)> {
    let literal = |word: &[u8], value| b[i..].starts_with(word).then(|| (value, i + word.len()));
    match b.get(i)? {
        b't' => literal(b"true", Scalar::True),
        b'f' => literal(b"false", Scalar::Other),
        b'n' => literal(b"null", Scalar::Other),
        b'"' => string_end(b, i).map(|(end, _)| (Scalar::Other, end)),
        b'-' | b'0'..=b'9' => {
            let len = b[i..]
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            let token = &b[i..i + len];
            let int = token.iter().all(u8::is_ascii_digit).then(|| {
                token.iter().try_fold(0u64, |n, d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
            });
            Some((Scalar::Int(int.flatten()), i + len))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, Shape};

    #[test]
    fn placeholders_in_either_order_with_any_spacing() {
        for text in [
            r#""_placeholder":true,"num":3}"#,
            r#""num":3,"_placeholder":true}"#,
            "\"num\" : 3 ,\n \"_placeholder\"\t:\ttrue }",
            r#""n\u0075m":3,"_placeholder":true}"#,
        ] {
            assert_eq!(classify(text), Shape::Placeholder(Some(3)), "{text}");
        }
    }

    #[test]
    fn placeholders_with_a_num_that_is_not_an_index() {
        for num in [
            "-1",
            "0.5",
            "1e0",
            "\"0\"",
            "null",
            "false",
            "99999999999999999999",
        ] {
            let text = format!(r#""_placeholder":true,"num":{num}}}"#);
            assert_eq!(classify(&text), Shape::Placeholder(None), "{text}");
        }
    }

    #[test]
    fn other_objects_are_maps() {
        for text in [
            r#""_placeholder":false,"num":0}"#,
            r#""_placeholder":1,"num":0}"#,
            r#""_placeholder":true}"#,
            r#""num":0}"#,
            r#""_placeholder":true,"num":0,"x":1}"#,
            r#""_placeholder":true,"_placeholder":true}"#,
            r#""num":0,"num":0}"#,
            r#""x":1,"_placeholder":true,"num":0}"#,
            r#""_placeholder":true,"num":[0]}"#,
            r#""_placeholder":{"a":1},"num":0}"#,
            r#""_placeholder":"true","num":0}"#,
            r#""_placeholder":true,"nums":0}"#,
        ] {
            assert_eq!(classify(text), Shape::Map, "{text}");
        }
    }
}
