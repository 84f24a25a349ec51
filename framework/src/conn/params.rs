//! Query-string and form decoding into Phoenix-style nested params.

use serde_json::{Map, Value};

/// Decodes `a=1&b[c]=2&d[]=3&d[]=4` into `{"a":"1","b":{"c":"2"},"d":["3","4"]}`, as
/// Plug.Conn.Query does: later keys win, malformed brackets fall back to the literal key.
pub(crate) fn decode(input: &str) -> Result<Map<String, Value>, serde_urlencoded::de::Error> {
    let mut map = Map::new();
    if input.is_empty() {
        return Ok(map);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(input)?;
    for (key, value) in pairs {
        insert(&mut map, &key, value);
    }
    Ok(map)
}

fn insert(map: &mut Map<String, Value>, key: &str, value: String) {
    let Some(open) = key.find('[').filter(|&i| i > 0 && key.ends_with(']')) else {
        map.insert(key.to_owned(), Value::String(value));
        return;
    };
    let head = &key[..open];
    let mut segments = Vec::new();
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else { break };
        segments.push(&stripped[..close]);
        rest = &stripped[close + 1..];
    }
    if !rest.is_empty() {
        map.insert(key.to_owned(), Value::String(value));
        return;
    }
    let slot = map.entry(head.to_owned()).or_insert(Value::Null);
    put(slot, &segments, value);
}

fn put(slot: &mut Value, segments: &[&str], value: String) {
    let Some((first, rest)) = segments.split_first() else {
        *slot = Value::String(value);
        return;
    };
    if first.is_empty() {
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        let Value::Array(items) = slot else { unreachable!("made an array above") };
        if rest.is_empty() {
            items.push(Value::String(value));
        } else {
            // `a[][b]=1&a[][c]=2` builds one object until a key repeats, as Plug does.
            let starts_new = match items.last() {
                Some(Value::Object(last)) => rest.first().is_some_and(|k| last.contains_key(*k)),
                _ => true,
            };
            if starts_new {
                items.push(Value::Object(Map::new()));
            }
            let last = items.last_mut().expect("pushed above");
            put(last, rest, value);
        }
        return;
    }
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(map) = slot else { unreachable!("made an object above") };
    let child = map.entry((*first).to_owned()).or_insert(Value::Null);
    put(child, rest, value);
}

#[cfg(test)]
mod tests {
    use super::decode;
    use serde_json::json;

    fn check(input: &str, expected: serde_json::Value) {
        assert_eq!(serde_json::Value::Object(decode(input).unwrap()), expected, "input: {input}");
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
        check("q=a%20b+c&e=%E2%9C%93", json!({"q":"a b c","e":"✓"}));
        check("bad[=1&[x]=2&c[d]e=3", json!({"bad[":"1","[x]":"2","c[d]e":"3"}));
        check("flag", json!({"flag":""}));
    }
}
