//! Deserialising params the way Phoenix casts them: values that arrive as strings (every path,
//! query and form value) parse into the type the field asks for, so `id: u64` reads `"42"` from
//! a path as it reads `42` from a JSON body.
//!
//! The rules, those of Ecto's casts:
//! - integers and floats parse from strings (`"42"`, `"-1"`, `"2.5"`), and read JSON numbers;
//! - booleans parse from `"true"`, `"false"`, `"1"` and `"0"`, and read JSON booleans;
//! - an `Option` is `None` for a missing field, `null` and the empty string (a form's empty
//!   input), `Some` otherwise;
//! - a string field does not take a number or a boolean: a JSON `{"name": 5}` is invalid;
//! - enums read unit variants from strings and other variants from one-key objects.
//!
//! What serde buffers before it knows the type (`#[serde(flatten)]`, untagged enums) sees the
//! values as they are on the wire: strings stay strings there.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// Decodes `T` from params, naming the field that failed. With `blank_is_none`, an empty
/// string reads as `None` for an `Option` (for params from forms and query strings, which
/// cannot send a null).
pub(crate) fn from_map<T: serde::de::DeserializeOwned>(
    map: &Map<String, Value>,
    blank_is_none: bool,
) -> Result<T, super::ParamsError> {
    serde_path_to_error::deserialize(Root(map, blank_is_none))
        .map_err(super::ParamsError::from_path_error)
}

/// The params object itself.
struct Root<'a>(&'a Map<String, Value>, bool);

impl<'de, 'a: 'de> de::Deserializer<'de> for Root<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(MapAccess::new(self.0, self.1))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Deserialises one params value, parsing strings into the types asked for; the flag says
/// whether an empty string is `None` for an `Option`.
#[derive(Clone, Copy)]
pub(crate) struct ParamsDeserializer<'a>(pub(crate) &'a Value, pub(crate) bool);

impl<'a> ParamsDeserializer<'a> {
    fn invalid(self, exp: &dyn de::Expected) -> Error {
        let unexpected = match self.0 {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => de::Unexpected::Unsigned(u),
                (_, Some(i), _) => de::Unexpected::Signed(i),
                (_, _, Some(f)) => de::Unexpected::Float(f),
                _ => de::Unexpected::Other("number"),
            },
            Value::String(s) => de::Unexpected::Str(s),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        };
        de::Error::invalid_type(unexpected, exp)
    }

    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    Err(self.invalid(&visitor))
                }
            }
            Value::String(s) => int_from_str(s, visitor),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => match n.as_f64() {
                Some(f) => visitor.visit_f64(f),
                None => Err(self.invalid(&visitor)),
            },
            Value::String(s) => float_from_str(s, visitor),
            _ => Err(self.invalid(&visitor)),
        }
    }
}

fn int_from_str<'de, V: Visitor<'de>>(s: &str, visitor: V) -> Result<V::Value, Error> {
    if let Ok(u) = s.parse::<u64>() {
        visitor.visit_u64(u)
    } else if let Ok(i) = s.parse::<i64>() {
        visitor.visit_i64(i)
    } else if let Ok(u) = s.parse::<u128>() {
        visitor.visit_u128(u)
    } else if let Ok(i) = s.parse::<i128>() {
        visitor.visit_i128(i)
    } else {
        Err(de::Error::invalid_type(de::Unexpected::Str(s), &visitor))
    }
}

fn float_from_str<'de, V: Visitor<'de>>(s: &str, visitor: V) -> Result<V::Value, Error> {
    match s.parse::<f64>() {
        // "NaN" and "inf" parse, but no form means them.
        Ok(f) if f.is_finite() => visitor.visit_f64(f),
        _ => Err(de::Error::invalid_type(de::Unexpected::Str(s), &visitor)),
    }
}

fn bool_from_str<'de, V: Visitor<'de>>(s: &str, visitor: V) -> Result<V::Value, Error> {
    match s {
        "true" | "1" => visitor.visit_bool(true),
        "false" | "0" => visitor.visit_bool(false),
        _ => Err(de::Error::invalid_type(de::Unexpected::Str(s), &visitor)),
    }
}

macro_rules! integers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.integer(visitor)
        })*
    };
}

impl<'de, 'a: 'de> de::Deserializer<'de> for ParamsDeserializer<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(_) => self.0.deserialize_any(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Seq(items.iter(), self.1)),
            Value::Object(map) => visitor.visit_map(MapAccess::new(map, self.1)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::String(s) => bool_from_str(s, visitor),
            _ => Err(self.invalid(&visitor)),
        }
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            Value::Array(items) => visitor.visit_seq(Seq(items.iter(), self.1)),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::String(s) if s.is_empty() && self.1 => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.iter(), self.1)),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(MapAccess::new(map, self.1)),
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = map.iter().next().expect("one entry");
                visitor.visit_enum(Enum { variant, value, blank_is_none: self.1 })
            }
            _ => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>, bool);

impl<'de, 'a: 'de> de::SeqAccess<'de> for Seq<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let blank_is_none = self.1;
        self.0.next().map(|v| seed.deserialize(ParamsDeserializer(v, blank_is_none))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    blank_is_none: bool,
}

impl<'a> MapAccess<'a> {
    fn new(map: &'a Map<String, Value>, blank_is_none: bool) -> Self {
        Self { entries: map.iter(), value: None, blank_is_none }
    }
}

impl<'de, 'a: 'de> de::MapAccess<'de> for MapAccess<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ParamsDeserializer(value, self.blank_is_none)),
            None => Err(de::Error::custom("a map value asked for before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A map key: a string, parsed like a value when the key type asks for a number
/// (`HashMap<u32, _>`).
pub(crate) struct Key<'a>(pub(crate) &'a str);

impl<'de, 'a: 'de> de::Deserializer<'de> for Key<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        bool_from_str(self.0, visitor)
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        float_from_str(self.0, visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f32(visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl Key<'_> {
    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        int_from_str(self.0, visitor)
    }
}

/// Decodes `T` from one string param (a path param): `"42"` into a `u64`.
pub(crate) fn from_str<'a, T: serde::Deserialize<'a>>(raw: &'a str) -> Result<T, Error> {
    T::deserialize(Key(raw))
}

/// Decodes `T` from one params value; see [`from_map`] for `blank_is_none`.
pub(crate) fn from_value<'a, T: serde::Deserialize<'a>>(
    value: &'a Value,
    blank_is_none: bool,
) -> Result<T, Error> {
    T::deserialize(ParamsDeserializer(value, blank_is_none))
}

struct Enum<'a> {
    variant: &'a str,
    value: &'a Value,
    blank_is_none: bool,
}

impl<'de, 'a: 'de> de::EnumAccess<'de> for Enum<'a> {
    type Error = Error;
    type Variant = ParamsDeserializer<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(Key(self.variant))?;
        Ok((variant, ParamsDeserializer(self.value, self.blank_is_none)))
    }
}

impl<'de, 'a: 'de> de::VariantAccess<'de> for ParamsDeserializer<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            Value::Null => Ok(()),
            _ => Err(self.invalid(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn de<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, String> {
        T::deserialize(ParamsDeserializer(&value, true)).map_err(|e| e.to_string())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        id: u64,
        qty: i32,
        price: f64,
        gift: bool,
        note: Option<String>,
        size: Option<u8>,
        tags: Vec<u16>,
        kind: Kind,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Small,
        Big,
        Custom { side: u32 },
    }

    #[test]
    fn strings_parse_into_the_types_asked_for() {
        let item: Item = de(json!({
            "id": "42", "qty": "-3", "price": "2.5", "gift": "1", "note": "", "size": "7",
            "tags": ["1", "2"], "kind": "big"
        }))
        .unwrap();
        assert_eq!(
            item,
            Item {
                id: 42,
                qty: -3,
                price: 2.5,
                gift: true,
                note: None,
                size: Some(7),
                tags: vec![1, 2],
                kind: Kind::Big
            }
        );
        // JSON's own types read as before.
        let item: Item = de(json!({
            "id": 42, "qty": -3, "price": 2.5, "gift": false, "note": "hi", "size": null,
            "tags": [], "kind": {"custom": {"side": "9"}}
        }))
        .unwrap();
        assert_eq!((item.gift, item.note.as_deref(), item.size), (false, Some("hi"), None));
        assert_eq!(item.kind, Kind::Custom { side: 9 });
    }

    #[test]
    fn what_does_not_parse_is_an_error_not_a_guess() {
        for (field, value) in [
            ("id", json!("4x")),
            ("id", json!("-1")),
            ("id", json!("")),
            ("qty", json!("99999999999")),
            ("price", json!("NaN")),
            ("gift", json!("yes")),
            ("size", json!("300")),
            ("kind", json!("huge")),
            ("tags", json!("1")),
        ] {
            let mut item = json!({
                "id": "1", "qty": "1", "price": "1", "gift": "0", "tags": [], "kind": "small"
            });
            item[field] = value.clone();
            assert!(de::<Item>(item).is_err(), "{field} = {value}");
        }
        assert!(de::<String>(json!(5)).is_err(), "a string field takes no number");
    }

    #[test]
    fn an_empty_string_is_none_only_where_there_is_no_null() {
        let value = json!({"note": ""});
        let from_form: HashMap<String, Option<String>> =
            HashMap::deserialize(ParamsDeserializer(&value, true)).unwrap();
        assert_eq!(from_form["note"], None);
        let from_json: HashMap<String, Option<String>> =
            HashMap::deserialize(ParamsDeserializer(&value, false)).unwrap();
        assert_eq!(from_json["note"].as_deref(), Some(""));
    }

    #[test]
    fn map_keys_parse_too() {
        let map: HashMap<u32, bool> = de(json!({"1": "true", "2": "0"})).unwrap();
        assert_eq!(map, HashMap::from([(1, true), (2, false)]));
    }
}
