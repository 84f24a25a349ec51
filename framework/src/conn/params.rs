//! Query-string and form decoding into Phoenix-style nested params, within explicit limits.

use std::fmt;

use serde_json::{Map, Value};

/// Bounds on decoding a query string or a form body into nested params.
///
/// Nested keys (`a[b][c]=1`) build a tree, and a tree costs far more memory than the bytes that
/// describe it: each level is a map of its own. These limits bound the work and memory one
/// request can cause, whatever it sends. Past either limit, a form body is answered 400 and a
/// query string reads as empty (and [`Conn::params`](crate::Conn::params) reports it as a 400).
///
/// # Examples
///
/// ```
/// use fawkes::conn::ParamsLimits;
///
/// let limits = ParamsLimits::default().max_depth(8).max_params(500);
/// assert_eq!(limits.depth(), 8);
/// # let _router = fawkes::router::Builder::new().build().params_limits(limits);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamsLimits {
    max_depth: u32,
    max_params: u32,
    max_json_values: u32,
}

impl ParamsLimits {
    /// The default nesting limit: `a[b][c]` is two levels. Rack's default is the same.
    pub const DEFAULT_MAX_DEPTH: u32 = 32;
    /// The default limit on values and nested objects or arrays in one decoded string.
    pub const DEFAULT_MAX_PARAMS: u32 = 4096;
    /// The default limit on values (arrays and objects included) in a JSON body.
    pub const DEFAULT_MAX_JSON_VALUES: u32 = 100_000;

    /// Sets how many values (every array and object counts one too) a JSON body may hold.
    /// A JSON value costs its body's bytes many times over once decoded (an 8 MB `[0,0,…]`
    /// is four million values and a few hundred MB), so bodies past it answer `400` before
    /// they are decoded.
    #[must_use]
    pub fn max_json_values(mut self, count: u32) -> Self {
        self.max_json_values = count;
        self
    }

    /// The JSON values limit in force.
    pub fn json_values(&self) -> u32 {
        self.max_json_values
    }

    /// Sets how many bracket levels a key may have (`a[b][c]` has two).
    #[must_use]
    pub fn max_depth(mut self, levels: u32) -> Self {
        self.max_depth = levels;
        self
    }

    /// Sets how many params one string may decode into: every value counts one, and so does
    /// every nested object or array the keys create.
    #[must_use]
    pub fn max_params(mut self, count: u32) -> Self {
        self.max_params = count;
        self
    }

    /// The nesting limit in force.
    pub fn depth(&self) -> u32 {
        self.max_depth
    }

    /// The params limit in force.
    pub fn params(&self) -> u32 {
        self.max_params
    }
}

impl Default for ParamsLimits {
    fn default() -> Self {
        Self {
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_params: Self::DEFAULT_MAX_PARAMS,
            max_json_values: Self::DEFAULT_MAX_JSON_VALUES,
        }
    }
}

/// An upper bound on the values of the JSON text `bytes`, counted without decoding it: one,
/// plus one for every `,` `[` `{` outside strings. Stops counting past `limit`.
pub(crate) fn json_values_within(bytes: &[u8], limit: u32) -> bool {
    let (mut count, mut in_string, mut escaped) = (1u32, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => {
                count += 1;
                if count > limit {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// A string that does not decode within its [`ParamsLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    TooDeep(u32),
    TooMany(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooDeep(max) => write!(f, "a key is nested deeper than {max} levels"),
            Self::TooMany(max) => write!(f, "more than {max} params"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What is left of a decode's params allowance.
struct Budget(u32, u32);

impl Budget {
    fn take(&mut self) -> Result<(), DecodeError> {
        self.0 = self.0.checked_sub(1).ok_or(DecodeError::TooMany(self.1))?;
        Ok(())
    }
}

/// Decodes `a=1&b[c]=2&d[]=3&d[]=4` into `{"a":"1","b":{"c":"2"},"d":["3","4"]}`, as
/// Plug.Conn.Query does: later keys win, malformed brackets fall back to the literal key.
///
/// Pairs are read one at a time and the tree is built without recursion, so neither the input's
/// length nor its nesting reaches the stack; the limits bound the tree.
pub(crate) fn decode(input: &str, limits: ParamsLimits) -> Result<Map<String, Value>, DecodeError> {
    let mut map = Map::new();
    let mut budget = Budget(limits.max_params, limits.max_params);
    for (key, value) in form_urlencoded::parse(input.as_bytes()) {
        budget.take()?;
        insert(&mut map, &key, value.into_owned(), limits.max_depth, &mut budget)?;
    }
    Ok(map)
}

fn insert(
    map: &mut Map<String, Value>,
    key: &str,
    value: String,
    max_depth: u32,
    budget: &mut Budget,
) -> Result<(), DecodeError> {
    let Some(open) = key.find('[').filter(|&i| i > 0 && key.ends_with(']')) else {
        map.insert(key.to_owned(), Value::String(value));
        return Ok(());
    };
    let head = &key[..open];
    let mut segments = Vec::new();
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else { break };
        if segments.len() >= max_depth as usize {
            return Err(DecodeError::TooDeep(max_depth));
        }
        segments.push(&stripped[..close]);
        rest = &stripped[close + 1..];
    }
    if !rest.is_empty() {
        map.insert(key.to_owned(), Value::String(value));
        return Ok(());
    }
    let mut slot = map.entry(head.to_owned()).or_insert(Value::Null);
    for (i, segment) in segments.iter().enumerate() {
        let next = segments.get(i + 1);
        if segment.is_empty() {
            if !slot.is_array() {
                budget.take()?;
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else { unreachable!("made an array above") };
            let Some(next) = next else {
                items.push(Value::String(value));
                return Ok(());
            };
            // `a[][b]=1&a[][c]=2` builds one object until a key repeats, as Plug does.
            let starts_new = match items.last() {
                Some(Value::Object(last)) => last.contains_key(*next),
                _ => true,
            };
            if starts_new {
                budget.take()?;
                items.push(Value::Object(Map::new()));
            }
            slot = items.last_mut().expect("pushed above");
        } else {
            if !slot.is_object() {
                budget.take()?;
                *slot = Value::Object(Map::new());
            }
            let Value::Object(map) = slot else { unreachable!("made an object above") };
            slot = map.entry((*segment).to_owned()).or_insert(Value::Null);
        }
    }
    *slot = Value::String(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{decode, json_values_within, DecodeError, ParamsLimits};
    use serde_json::json;

    #[test]
    fn json_values_are_counted_outside_strings_only() {
        assert!(json_values_within(br#"{"a": [1, 2, 3]}"#, 5));
        assert!(!json_values_within(br#"{"a": [1, 2, 3]}"#, 4));
        // Commas, brackets and escaped quotes inside strings are text.
        assert!(json_values_within(br#"{"a": "x, y, [z], \", {"}"#, 2));
        assert!(!json_values_within("[0,".repeat(100).as_bytes(), 150));
    }

    fn check(input: &str, expected: serde_json::Value) {
        let decoded = decode(input, ParamsLimits::default()).unwrap();
        assert_eq!(serde_json::Value::Object(decoded), expected, "input: {input}");
    }

    #[test]
    fn decodes_like_plug() {
        check("", json!({}));
        check("a=1&b=2", json!({"a":"1","b":"2"}));
        check("a=1&a=2", json!({"a":"2"}));
        check("user[name]=jo&user[age]=3", json!({"user":{"name":"jo","age":"3"}}));
        check("ids[]=1&ids[]=2", json!({"ids":["1","2"]}));
        check("a[b][c]=x", json!({"a":{"b":{"c":"x"}}}));
        check("l[][x]=1&l[][y]=2&l[][x]=3", json!({"l":[{"x":"1","y":"2"},{"x":"3"}]}));
        check("m[][]=1&m[][]=2", json!({"m":[["1"],["2"]]}));
        check("a=1&a[b]=2&a[]=3", json!({"a":["3"]}));
        check("q=a%20b+c&e=%E2%9C%93", json!({"q":"a b c","e":"✓"}));
        check("bad[=1&[x]=2&c[d]e=3", json!({"bad[":"1","[x]":"2","c[d]e":"3"}));
        check("flag", json!({"flag":""}));
        check("&&a=1&&", json!({"a":"1"}));
    }

    #[test]
    fn nesting_is_bounded() {
        let limits = ParamsLimits::default().max_depth(3);
        assert!(decode("a[b][c][d]=1", limits).is_ok());
        assert_eq!(decode("a[b][c][d][e]=1", limits), Err(DecodeError::TooDeep(3)));
        assert_eq!(decode("a[][][][]=1", limits), Err(DecodeError::TooDeep(3)));
        // Far past any stack: refused without recursing.
        let deep = format!("a{}=1", "[b]".repeat(200_000));
        assert_eq!(decode(&deep, ParamsLimits::default()), Err(DecodeError::TooDeep(32)));
    }

    #[test]
    fn params_are_counted_with_the_containers_they_create() {
        let limits = ParamsLimits::default().max_params(4);
        assert!(decode("a=1&b=2&c=3&d=4", limits).is_ok());
        assert_eq!(decode("a=1&b=2&c=3&d=4&e=5", limits), Err(DecodeError::TooMany(4)));
        // One value and three objects (under `a`, `b` and `c`).
        assert!(decode("a[b][c][d]=1", limits).is_ok());
        assert_eq!(decode("a[b][c][d][e]=1", limits), Err(DecodeError::TooMany(4)));
        // Repeats count too: the work is bounded, not only what is kept.
        assert_eq!(decode(&"a=1&".repeat(5), limits), Err(DecodeError::TooMany(4)));
        let many = "x=1&".repeat(1_000_000);
        assert_eq!(
            decode(&many, ParamsLimits::default()),
            Err(DecodeError::TooMany(ParamsLimits::DEFAULT_MAX_PARAMS))
        );
    }
}
