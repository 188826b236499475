//! The MongoDB-style filters of the registry searches (`api.registries(filter=…)`, `.collections(filter=…)`,
//! `.versions(filter=…)`): field values compared with `$eq`, `$ne`, `$in`, `$nin`, `$regex`, `$gt(e)`, `$lt(e)`,
//! combined with `$and`, `$or` and `$nor`. A field holding several values (a version's aliases, its tags)
//! matches when any of them does, as in MongoDB.

use regex::Regex;
use serde_json::Value;

use super::graphql::GqlError;

/// Whether `filter` (a JSON object, or absent) accepts the record whose field values `field` gives.
pub(crate) fn matches(filter: Option<&Value>, field: &dyn Fn(&str) -> Vec<Value>) -> Result<bool, GqlError> {
    let Some(filter) = filter else { return Ok(true) };
    let Value::Object(conditions) = filter else {
        return Err(GqlError(format!("a filter is a JSON object, not {filter}")));
    };
    for (key, condition) in conditions {
        let accepted = match key.as_str() {
            "$and" => {
                each(condition)?.iter().try_fold(true, |all, f| Ok::<_, GqlError>(all && matches(Some(f), field)?))?
            }
            "$or" => {
                each(condition)?.iter().try_fold(false, |any, f| Ok::<_, GqlError>(any || matches(Some(f), field)?))?
            }
            "$nor" => {
                !each(condition)?.iter().try_fold(false, |any, f| Ok::<_, GqlError>(any || matches(Some(f), field)?))?
            }
            op if op.starts_with('$') => return Err(GqlError(format!("unsupported filter operator {op:?}"))),
            name => compare(&field(name), condition)?,
        };
        if !accepted {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Parses a `JSONString` filter variable (absent or null is no filter).
pub(crate) fn parse(v: &Value, key: &str) -> Result<Option<Value>, GqlError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| GqlError(format!("variable {key} is not a JSON filter: {e}"))),
        Some(other) => Ok(Some(other.clone())),
    }
}

fn each(condition: &Value) -> Result<&Vec<Value>, GqlError> {
    condition.as_array().ok_or_else(|| GqlError(format!("$and, $or and $nor take a list, not {condition}")))
}

/// Whether any of `values` satisfies `condition` (a value, or an object of operators).
fn compare(values: &[Value], condition: &Value) -> Result<bool, GqlError> {
    let Value::Object(ops) = condition else { return Ok(values.iter().any(|v| same(v, condition))) };
    if !ops.keys().all(|k| k.starts_with('$')) {
        return Ok(values.iter().any(|v| same(v, condition)));
    }
    for (op, operand) in ops {
        let accepted = match op.as_str() {
            "$eq" => values.iter().any(|v| same(v, operand)),
            "$ne" => !values.iter().any(|v| same(v, operand)),
            "$in" => values.iter().any(|v| each(operand).is_ok_and(|list| list.iter().any(|o| same(v, o)))),
            "$nin" => !values.iter().any(|v| each(operand).is_ok_and(|list| list.iter().any(|o| same(v, o)))),
            "$regex" => {
                let pattern =
                    operand.as_str().ok_or_else(|| GqlError(format!("$regex takes a string, not {operand}")))?;
                let regex = Regex::new(pattern).map_err(|e| GqlError(format!("invalid $regex {pattern:?}: {e}")))?;
                values.iter().any(|v| v.as_str().is_some_and(|s| regex.is_match(s)))
            }
            "$gt" | "$gte" | "$lt" | "$lte" => values.iter().any(|v| ordered(v, operand, op)),
            "$exists" => operand.as_bool().unwrap_or(true) != values.is_empty(),
            other => return Err(GqlError(format!("unsupported filter operator {other:?}"))),
        };
        if !accepted {
            return Ok(false);
        }
    }
    Ok(true)
}

fn same(value: &Value, wanted: &Value) -> bool {
    match (value.as_f64(), wanted.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => value == wanted,
    }
}

/// Numbers compare as numbers, everything else as text (RFC 3339 times order as text).
fn ordered(value: &Value, bound: &Value, op: &str) -> bool {
    let ordering = match (value.as_f64(), bound.as_f64()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (value.as_str(), bound.as_str()) {
            (Some(a), Some(b)) => Some(a.cmp(b)),
            _ => None,
        },
    };
    matches!(
        (op, ordering),
        ("$gt", Some(std::cmp::Ordering::Greater))
            | ("$gte", Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal))
            | ("$lt", Some(std::cmp::Ordering::Less))
            | ("$lte", Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal))
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::matches;

    fn record(field: &str) -> Vec<Value> {
        match field {
            "name" => vec![json!("wandb-registry-model")],
            "alias" => vec![json!("best"), json!("latest")],
            "tag" => vec![],
            "size" => vec![json!(10)],
            _ => vec![],
        }
    }

    #[test]
    fn operators_combine_as_in_mongodb() {
        let accept = |f: Value| matches(Some(&f), &record).unwrap();
        assert!(accept(json!({"name": "wandb-registry-model"})));
        assert!(accept(json!({"name": {"$regex": "model"}, "alias": "best"})));
        assert!(!accept(json!({"name": {"$regex": "^dataset"}})));
        assert!(accept(json!({"$or": [{"tag": "prod"}, {"alias": "best"}]})));
        assert!(!accept(json!({"$and": [{"tag": "prod"}, {"alias": "best"}]})));
        assert!(accept(json!({"alias": {"$in": ["x", "latest"]}, "size": {"$gte": 10, "$lt": 11}})));
        assert!(accept(json!({"$nor": [{"alias": "worst"}]})));
        assert!(matches(Some(&json!({"name": {"$where": "1"}})), &record).is_err());
        assert!(matches(None, &record).unwrap());
    }
}
