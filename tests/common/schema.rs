//! A small JSON Schema checker for the keywords our schemas use: type,
//! const, enum, required, properties, additionalProperties, items, $ref
//! (a JSON Pointer into the same schema), anyOf. Enough to hold the output to its documented
//! contract without pulling a validator and its dependencies into the build.
//!
//! The contract is closed: every object schema (one with `properties`, or
//! of type object) must say `additionalProperties` (false, or a schema for
//! a map's values), or [`lint`] reports it and [`validate`] fails, so a
//! field the program writes and the schema does not name is an error.

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

/// Every violation of `schema` by `value`, after every place where the
/// schema itself leaves an object open ([`lint`]).
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = lint(schema);
    check(schema, schema, value, "$", &mut errors);
    errors
}

/// The object schemas in `schema` (at any depth: properties, items,
/// anyOf, $defs) that do not declare `additionalProperties`: an object
/// schema that lists `properties` or has type object must close itself
/// (false) or type its extra members (a schema, for a map).
pub fn lint(schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    lint_at(schema, "#", &mut errors);
    errors
}

fn lint_at(s: &Value, at: &str, errors: &mut Vec<String>) {
    match s {
        Value::Object(o) => {
            let typed_object = match o.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            if (typed_object || o.contains_key("properties"))
                && !matches!(
                    o.get("additionalProperties"),
                    Some(Value::Bool(false) | Value::Object(_))
                )
            {
                errors.push(format!(
                    "schema {at}: an object schema must say additionalProperties: false (or a schema for a map's values)"
                ));
            }
            for (k, child) in o {
                // Property names and descriptions are not schemas.
                match k.as_str() {
                    "properties" | "$defs" => {
                        for (name, sub) in child.as_object().into_iter().flatten() {
                            lint_at(sub, &format!("{at}/{k}/{name}"), errors);
                        }
                    }
                    "items" | "additionalProperties" => {
                        lint_at(child, &format!("{at}/{k}"), errors)
                    }
                    "anyOf" => {
                        for (i, sub) in child.as_array().into_iter().flatten().enumerate() {
                            lint_at(sub, &format!("{at}/{k}/{i}"), errors);
                        }
                    }
                    _ => {}
                }
            }
        }
        Value::Bool(_) => {}
        _ => errors.push(format!("schema {at}: not a schema: {s}")),
    }
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
        let tried: Vec<Vec<String>> = any
            .iter()
            .map(|alt| {
                let mut e = Vec::new();
                check(root, alt, v, at, &mut e);
                e
            })
            .collect();
        if tried.iter().all(|e| !e.is_empty()) {
            errors.push(format!("{at}: matches none of anyOf: {v}"));
            // Why, from the alternatives of the value's own type (an
            // object with a field too many, not the null beside it).
            let wrong_type = format!("{at}: expected");
            errors.extend(
                tried
                    .into_iter()
                    .filter(|e| !e.iter().any(|m| m.starts_with(&wrong_type)))
                    .flatten(),
            );
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
