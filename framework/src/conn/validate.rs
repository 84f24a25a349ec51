//! Validation rules on params structs, with the `validator` crate's derive, reported in
//! Phoenix's words.
//!
//! Rules are declared with `#[derive(validator::Validate)]` and `#[validate(...)]` attributes
//! (`required`, `length`, `range`, `email`, `url`, `regex`, `contains`, `must_match`,
//! `custom`, `nested`); [`Conn::cast`](crate::Conn::cast) decodes and validates in one call.
//! The messages are Ecto's, so a Fawkes API answers what a Phoenix one would:
//!
//! | rule | message |
//! |---|---|
//! | `required`, a missing field | `can't be blank` |
//! | `length(min = 3)` | `should be at least 3 character(s)` (`item(s)` for lists) |
//! | `length(max = 9)` | `should be at most 9 character(s)` |
//! | `length(equal = 4)` | `should be 4 character(s)` |
//! | `range(min = 1)` | `must be greater than or equal to 1` |
//! | `range(max = 9)` | `must be less than or equal to 9` |
//! | `range(exclusive_min = 0)` | `must be greater than 0` |
//! | `range(exclusive_max = 9)` | `must be less than 9` |
//! | `email`, `url`, `regex`, `contains` | `has invalid format` |
//! | `must_match` | `does not match confirmation` |
//! | a value that does not decode, `custom` and the rest | `is invalid` |
//!
//! A rule's own `message = "..."` wins over these.

use serde_json::Value;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use super::field_errors::{FieldErrors, PathSegment};

impl From<ValidationErrors> for FieldErrors {
    fn from(errors: ValidationErrors) -> Self {
        let mut out = FieldErrors::new();
        collect(&errors, &mut Vec::new(), &mut out);
        out
    }
}

fn collect(errors: &ValidationErrors, path: &mut Vec<PathSegment>, out: &mut FieldErrors) {
    // Sorted, so the first error reported is the same from run to run.
    let mut fields: Vec<_> = errors.errors().iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (field, kind) in fields {
        // `__all__` is where struct-level (`#[validate(schema(...))]`) errors go.
        let name = if field == "__all__" { "params" } else { field.as_ref() };
        path.push(PathSegment::Field(name.to_owned()));
        match kind {
            ValidationErrorsKind::Field(list) => {
                for err in list {
                    out.add_at(path, message(err));
                }
            }
            ValidationErrorsKind::Struct(nested) => collect(nested, path, out),
            ValidationErrorsKind::List(entries) => {
                for (index, nested) in entries {
                    path.push(PathSegment::Index(*index));
                    collect(nested, path, out);
                    path.pop();
                }
            }
        }
        path.pop();
    }
}

/// Ecto's message for a failed rule.
pub(crate) fn message(err: &ValidationError) -> String {
    if let Some(message) = &err.message {
        return message.to_string();
    }
    let param = |name: &str| err.params.get(name).filter(|v| !v.is_null());
    match err.code.as_ref() {
        "required" => "can't be blank".to_owned(),
        "length" => length_message(err, param("value")),
        "range" => range_message(
            param("value"),
            param("min"),
            param("max"),
            param("exclusive_min"),
            param("exclusive_max"),
        ),
        "email"
        | "url"
        | "regex"
        | "contains"
        | "does_not_contain"
        | "non_control_character"
        | "credit_card" => "has invalid format".to_owned(),
        "must_match" => "does not match confirmation".to_owned(),
        _ => "is invalid".to_owned(),
    }
}

fn length_message(err: &ValidationError, value: Option<&Value>) -> String {
    let (count, unit) = match value {
        Some(Value::Array(items)) => (items.len(), "item(s)"),
        Some(Value::Object(map)) => (map.len(), "item(s)"),
        Some(Value::String(s)) => (s.chars().count(), "character(s)"),
        _ => (0, "character(s)"),
    };
    let bound = |name: &str| err.params.get(name).and_then(Value::as_u64);
    let verb = if unit == "item(s)" { "have" } else { "be" };
    if let Some(equal) = bound("equal") {
        return format!("should {verb} {equal} {unit}");
    }
    match (bound("min"), bound("max")) {
        (Some(min), _) if (count as u64) < min => format!("should {verb} at least {min} {unit}"),
        (_, Some(max)) => format!("should {verb} at most {max} {unit}"),
        (Some(min), None) => format!("should {verb} at least {min} {unit}"),
        (None, None) => "is invalid".to_owned(),
    }
}

fn range_message(
    value: Option<&Value>,
    min: Option<&Value>,
    max: Option<&Value>,
    exclusive_min: Option<&Value>,
    exclusive_max: Option<&Value>,
) -> String {
    let number = |v: &Value| v.as_f64();
    let value = value.and_then(number);
    let below = |bound: Option<&Value>, inclusive: bool| match (value, bound.and_then(number)) {
        (Some(v), Some(b)) => {
            if inclusive {
                v < b
            } else {
                v <= b
            }
        }
        _ => false,
    };
    let above = |bound: Option<&Value>, inclusive: bool| match (value, bound.and_then(number)) {
        (Some(v), Some(b)) => {
            if inclusive {
                v > b
            } else {
                v >= b
            }
        }
        _ => false,
    };
    let shown = |v: &Value| v.to_string();
    if let Some(min) = min.filter(|_| below(min, true)) {
        format!("must be greater than or equal to {}", shown(min))
    } else if let Some(min) = exclusive_min.filter(|_| below(exclusive_min, false)) {
        format!("must be greater than {}", shown(min))
    } else if let Some(max) = max.filter(|_| above(max, true)) {
        format!("must be less than or equal to {}", shown(max))
    } else if let Some(max) = exclusive_max.filter(|_| above(exclusive_max, false)) {
        format!("must be less than {}", shown(max))
    } else {
        "is invalid".to_owned()
    }
}
