//! Small JSON validators that fail the way OpenAI does (codes `invalid_type`, `invalid_value`,
//! `unknown_parameter`, `missing_required_parameter`, `integer_below_min_value`, …).

use crate::errors::FieldError;
use serde_json::{Map, Value};

pub type Obj = Map<String, Value>;

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid_type(path: &str, expected: &str, v: &Value) -> FieldError {
    FieldError::new(
        "invalid_type",
        format!(
            "Invalid type for '{path}': expected {expected}, but got {} instead.",
            kind(v)
        ),
        Some(path),
    )
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, FieldError> {
    v.as_object()
        .ok_or_else(|| invalid_type(path, "an object", v))
}

/// Refuses keys not in `allowed` (`unknown_parameter`).
pub fn known_keys(obj: &Obj, allowed: &[&str], path: &str) -> Result<(), FieldError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            let full = join(path, key);
            return Err(FieldError::new(
                "unknown_parameter",
                format!("Unknown parameter: '{full}'."),
                Some(&full),
            ));
        }
    }
    Ok(())
}

pub fn missing(path: &str) -> FieldError {
    FieldError::new(
        "missing_required_parameter",
        format!("Missing required parameter: '{path}'."),
        Some(path),
    )
}

pub fn required<'a>(obj: &'a Obj, key: &str, path: &str) -> Result<&'a Value, FieldError> {
    obj.get(key).ok_or_else(|| missing(&join(path, key)))
}

pub fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, FieldError> {
    v.as_str().ok_or_else(|| invalid_type(path, "a string", v))
}

pub fn boolean(v: &Value, path: &str) -> Result<bool, FieldError> {
    v.as_bool()
        .ok_or_else(|| invalid_type(path, "a boolean", v))
}

pub fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, FieldError> {
    v.as_array()
        .ok_or_else(|| invalid_type(path, "an array", v))
}

pub fn invalid_value(path: &str, got: &str, allowed: &[&str]) -> FieldError {
    let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    FieldError::new(
        "invalid_value",
        format!(
            "Invalid value: '{got}'. Supported values are: {}.",
            list.join(", ")
        ),
        Some(path),
    )
}

pub fn one_of(v: &Value, path: &str, allowed: &[&str]) -> Result<String, FieldError> {
    let s = string(v, path)?;
    if allowed.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(invalid_value(path, s, allowed))
    }
}

pub fn integer(v: &Value, path: &str, min: i64, max: i64) -> Result<i64, FieldError> {
    let n = v
        .as_i64()
        .ok_or_else(|| invalid_type(path, "an integer", v))?;
    if n < min {
        return Err(FieldError::new(
            "integer_below_min_value",
            format!("Invalid '{path}': integer below minimum value. Expected a value >= {min}, but got {n} instead."),
            Some(path),
        ));
    }
    if n > max {
        return Err(FieldError::new(
            "integer_above_max_value",
            format!("Invalid '{path}': integer above maximum value. Expected a value <= {max}, but got {n} instead."),
            Some(path),
        ));
    }
    Ok(n)
}

pub fn number(v: &Value, path: &str, min: f64, max: f64) -> Result<f64, FieldError> {
    let n = v
        .as_f64()
        .ok_or_else(|| invalid_type(path, "a number", v))?;
    if n < min {
        return Err(FieldError::new(
            "decimal_below_min_value",
            format!("Invalid '{path}': decimal below minimum value. Expected a value >= {min}, but got {n} instead."),
            Some(path),
        ));
    }
    if n > max {
        return Err(FieldError::new(
            "decimal_above_max_value",
            format!("Invalid '{path}': decimal above maximum value. Expected a value <= {max}, but got {n} instead."),
            Some(path),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validators_report_openai_codes() {
        let o = json!({"a": 1, "zz": 2});
        let e = known_keys(o.as_object().unwrap(), &["a"], "session").unwrap_err();
        assert_eq!(e.code, "unknown_parameter");
        assert_eq!(e.message, "Unknown parameter: 'session.zz'.");
        assert_eq!(
            integer(&json!(5), "x", 10, 20).unwrap_err().code,
            "integer_below_min_value"
        );
        assert_eq!(
            integer(&json!(50), "x", 10, 20).unwrap_err().code,
            "integer_above_max_value"
        );
        assert_eq!(
            integer(&json!("5"), "x", 10, 20).unwrap_err().code,
            "invalid_type"
        );
        assert_eq!(
            one_of(&json!("b"), "t", &["a"]).unwrap_err().code,
            "invalid_value"
        );
    }
}
