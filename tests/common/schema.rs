//! A small JSON Schema checker for the keywords our schemas use: type,
//! const, enum, required, properties, additionalProperties, items, $ref
//! (a JSON Pointer into the same schema), anyOf. Enough to hold the output to its documented
//! contract without pulling a validator and its dependencies into the build.

use serde_json::Value;

/// `schema/<name>.schema.json` from the source tree.
pub fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(format!("{name}.schema.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Panics, listing every violation, unless `value` follows `schema/<name>.schema.json`.
pub fn assert_valid(name: &str, value: &Value) {
    let errors = validate(&load(name), value);
    assert!(
        errors.is_empty(),
        "JSON breaks schema/{name}.schema.json: {errors:#?}"
    );
}

pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors);
    errors
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn check(root: &Value, s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        // A JSON Pointer into this schema: #/$defs/pair, #/$defs/path/properties/map_type.
        let target = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or_else(|| panic!("schema: unresolved $ref {r}"));
        check(root, target, v, at, errors);
        return;
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(|alt| {
            let mut e = Vec::new();
            check(root, alt, v, at, &mut e);
            e.is_empty()
        }) {
            errors.push(format!("{at}: matches none of anyOf: {v}"));
        }
        return;
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: expected {c}, found {v}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!(
            "{at}: {v} is not one of {}",
            Value::Array(e.clone())
        ));
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => {
            errors.push(format!("{at}: expected {t}, found {v}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))) => {
            errors.push(format!(
                "{at}: expected one of {}, found {v}",
                Value::Array(ts.clone())
            ));
            return;
        }
        _ => {}
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for k in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(k) {
                    errors.push(format!("{at}: missing required field `{k}`"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in obj {
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                check(root, ps, child, &format!("{at}.{k}"), errors);
            } else if let Some(extra) = s.get("additionalProperties")
                && extra.is_object()
            {
                check(root, extra, child, &format!("{at}.{k}"), errors);
            } else if s.get("additionalProperties") == Some(&Value::Bool(false)) {
                errors.push(format!("{at}: field `{k}` is not in the schema"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, child) in arr.iter().enumerate() {
            check(root, items, child, &format!("{at}[{i}]"), errors);
        }
    }
}
