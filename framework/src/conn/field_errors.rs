//! Errors per field, in the shape Phoenix renders a changeset's errors.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// What is wrong with each field of some params, nested like the params themselves.
///
/// Rendered as Phoenix renders `traverse_errors` of a changeset: a field's messages are a list,
/// a nested struct's errors an object, a list's errors an array with `{}` for the entries that
/// are fine:
///
/// ```json
/// {"title": ["can't be blank"], "address": {"city": ["is invalid"]},
///  "items": [{}, {"qty": ["must be greater than 0"]}]}
/// ```
///
/// Errors from decoding params and from validation rules land in the same tree under the same
/// names, so a client sees one shape whatever failed.
///
/// # Examples
///
/// ```
/// use fawkes::FieldErrors;
///
/// let mut errors = FieldErrors::new();
/// errors.add("title", "can't be blank");
/// errors.add_at(&["address".into(), "city".into()], "is invalid");
/// assert_eq!(
///     errors.to_json(),
///     serde_json::json!({"title": ["can't be blank"], "address": {"city": ["is invalid"]}})
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Node>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Messages(Vec<String>),
    Nested(FieldErrors),
    List(BTreeMap<usize, FieldErrors>),
}

/// One step of a path into nested params: a field's name or a list's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A field of an object.
    Field(String),
    /// An entry of a list.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(name: &str) -> Self {
        Self::Field(name.to_owned())
    }
}

impl From<String> for PathSegment {
    fn from(name: String) -> Self {
        Self::Field(name)
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a message to a top-level field.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) -> &mut Self {
        match self.0.entry(field.into()).or_insert_with(|| Node::Messages(Vec::new())) {
            Node::Messages(messages) => messages.push(message.into()),
            // A field with nested errors already says what is wrong inside it.
            Node::Nested(_) | Node::List(_) => {}
        }
        self
    }

    /// Adds a message at a path into nested params: `["address", "city"]`, `["items", 1, "qty"]`.
    /// An error inside a list of plain values (`["tags", 1]`) lands on the list's field; a path
    /// that is empty or starts with an index, on the field `params`.
    pub fn add_at(&mut self, path: &[PathSegment], message: impl Into<String>) -> &mut Self {
        self.insert(path, message.into());
        self
    }

    fn insert(&mut self, path: &[PathSegment], message: String) {
        use PathSegment::{Field, Index};
        match path {
            [] | [Index(_), ..] => {
                self.add("params", message);
            }
            [Field(name)] | [Field(name), Index(_)] => {
                self.add(name.clone(), message);
            }
            [Field(name), Index(i), rest @ ..] => {
                let node =
                    self.0.entry(name.clone()).or_insert_with(|| Node::List(BTreeMap::new()));
                if !matches!(node, Node::List(_)) {
                    *node = Node::List(BTreeMap::new());
                }
                if let Node::List(entries) = node {
                    entries.entry(*i).or_default().insert(rest, message);
                }
            }
            [Field(name), rest @ ..] => {
                let node =
                    self.0.entry(name.clone()).or_insert_with(|| Node::Nested(FieldErrors::new()));
                if !matches!(node, Node::Nested(_)) {
                    *node = Node::Nested(FieldErrors::new());
                }
                if let Node::Nested(nested) = node {
                    nested.insert(rest, message);
                }
            }
        }
    }

    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: FieldErrors) {
        for (name, node) in other.0 {
            match (self.0.get_mut(&name), node) {
                (None, node) => {
                    self.0.insert(name, node);
                }
                (Some(Node::Messages(mine)), Node::Messages(theirs)) => mine.extend(theirs),
                (Some(Node::Nested(mine)), Node::Nested(theirs)) => mine.merge(theirs),
                (Some(Node::List(mine)), Node::List(theirs)) => {
                    for (i, entry) in theirs {
                        mine.entry(i).or_default().merge(entry);
                    }
                }
                // Different shapes for one name: the first one stays.
                (Some(_), _) => {}
            }
        }
    }

    /// The messages of a top-level field.
    pub fn get(&self, field: &str) -> Option<&[String]> {
        match self.0.get(field) {
            Some(Node::Messages(messages)) => Some(messages),
            _ => None,
        }
    }

    /// The first error as a dotted path and its message (`address.city`, `items.1.qty`).
    pub fn first(&self) -> Option<(String, &str)> {
        let (name, node) = self.0.iter().next()?;
        match node {
            Node::Messages(messages) => Some((name.clone(), messages.first()?.as_str())),
            Node::Nested(nested) => {
                nested.first().map(|(path, message)| (format!("{name}.{path}"), message))
            }
            Node::List(entries) => {
                let (i, entry) = entries.iter().next()?;
                entry.first().map(|(path, message)| (format!("{name}.{i}.{path}"), message))
            }
        }
    }

    /// The errors as JSON, in Phoenix's shape (see the type's docs).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (name, node) in &self.0 {
            let value = match node {
                Node::Messages(messages) => Value::from(messages.clone()),
                Node::Nested(nested) => nested.to_json(),
                Node::List(entries) => {
                    let len = entries.keys().next_back().map_or(0, |last| last + 1);
                    let mut list = vec![Value::Object(Map::new()); len];
                    for (i, entry) in entries {
                        list[*i] = entry.to_json();
                    }
                    Value::Array(list)
                }
            };
            out.insert(name.clone(), value);
        }
        Value::Object(out)
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first() {
            Some((path, message)) => write!(f, "{path} {message}"),
            None => f.write_str("no errors"),
        }
    }
}

impl serde::Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_objects_and_lists_render_like_phoenix() {
        let mut errors = FieldErrors::new();
        errors.add("title", "can't be blank").add("title", "is too short");
        errors.add_at(&["items".into(), 2.into(), "qty".into()], "is invalid");
        errors.add_at(&["items".into(), 0.into(), "name".into()], "can't be blank");
        errors.add_at(&["address".into(), "geo".into(), "lat".into()], "is invalid");
        assert_eq!(
            errors.to_json(),
            json!({
                "title": ["can't be blank", "is too short"],
                "items": [{"name": ["can't be blank"]}, {}, {"qty": ["is invalid"]}],
                "address": {"geo": {"lat": ["is invalid"]}}
            })
        );
        assert_eq!(errors.first(), Some(("address.geo.lat".to_owned(), "is invalid")));
    }

    #[test]
    fn merging_keeps_every_message() {
        let mut a = FieldErrors::new();
        a.add("title", "can't be blank");
        let mut b = FieldErrors::new();
        b.add("title", "is reserved").add("qty", "is invalid");
        a.merge(b);
        assert_eq!(
            a.to_json(),
            json!({"title": ["can't be blank", "is reserved"], "qty": ["is invalid"]})
        );
    }
}
