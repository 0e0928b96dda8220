//! DynamoDB's request units, derived from the items a request carries
//! (writes) or a response returns (reads), by the published rules: a write
//! unit per 1 KB written, a read unit per 4 KB read strongly consistent (half
//! for an eventually consistent read), both doubled in a transaction, and a
//! request never below one unit's worth.
//!
//! What the wire does not show is a lower bound: an UpdateItem or a
//! DeleteItem is charged for the item's size before or after, which only the
//! table knows (our updates touch small items: counters, states, marks), and
//! a Query with a filter is charged for the items it read, not the ones it
//! returned (ours filter nothing).

use serde_json::Value;

const WRITE_UNIT_BYTES: f64 = 1024.0;
const READ_UNIT_BYTES: f64 = 4096.0;

/// The size DynamoDB bills for an item in its JSON wire form: each
/// attribute's name plus its value (numbers about a byte per two digits,
/// binaries as decoded, lists and maps three bytes plus a byte an element).
pub fn item_size(item: &Value) -> usize {
    item.as_object().map(|m| m.iter().map(|(name, value)| name.len() + value_size(value)).sum()).unwrap_or(0)
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    let text = |v: &Value| v.as_str().map(str::len).unwrap_or(0);
    let number = |v: &Value| v.as_str().map(|s| s.trim_start_matches('-').len().div_ceil(2) + 1).unwrap_or(0);
    let binary = |v: &Value| v.as_str().map(|s| s.trim_end_matches('=').len() * 3 / 4).unwrap_or(0);
    let each = |v: &Value, f: &dyn Fn(&Value) -> usize| v.as_array().map(|a| a.iter().map(f).sum()).unwrap_or(0);
    match kind.as_str() {
        "S" => text(inner),
        "N" => number(inner),
        "B" => binary(inner),
        "BOOL" | "NULL" => 1,
        "SS" => each(inner, &text),
        "NS" => each(inner, &number),
        "BS" => each(inner, &binary),
        "L" => 3 + each(inner, &|v| 1 + value_size(v)),
        "M" => 3 + inner.as_object().map(|m| m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum()).unwrap_or(0),
        _ => 0,
    }
}

fn units(bytes: usize, unit: f64) -> f64 {
    (bytes as f64 / unit).ceil().max(1.0)
}

/// The bytes an UpdateItem, DeleteItem or ConditionCheck is known to touch:
/// its key and the values it sets.
fn touched(op: &Value) -> usize {
    item_size(&op["Key"]) + item_size(&op["ExpressionAttributeValues"])
}

/// Write request units of one request (0 for a read).
pub fn write_units(operation: &str, body: &Value) -> f64 {
    match operation {
        "PutItem" => units(item_size(&body["Item"]), WRITE_UNIT_BYTES),
        "UpdateItem" | "DeleteItem" => units(touched(body), WRITE_UNIT_BYTES),
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|requests| requests.as_array().cloned().unwrap_or_default())
            .map(|request| match request.get("PutRequest") {
                Some(put) => units(item_size(&put["Item"]), WRITE_UNIT_BYTES),
                None => units(item_size(&request["DeleteRequest"]["Key"]), WRITE_UNIT_BYTES),
            })
            .sum(),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                let bytes = match (entry.get("Put"), entry.as_object().and_then(|m| m.values().next())) {
                    (Some(put), _) => item_size(&put["Item"]),
                    (None, Some(op)) => touched(op),
                    (None, None) => 0,
                };
                2.0 * units(bytes, WRITE_UNIT_BYTES)
            })
            .sum(),
        _ => 0.0,
    }
}

fn consistency(request: &Value) -> f64 {
    if request["ConsistentRead"].as_bool() == Some(true) { 1.0 } else { 0.5 }
}

/// Read request units of one answered request (0 for a write).
pub fn read_units(operation: &str, request: &Value, response: &Value) -> f64 {
    match operation {
        "GetItem" => consistency(request) * units(item_size(&response["Item"]), READ_UNIT_BYTES),
        "Query" | "Scan" => {
            let items = response["Items"].as_array().map(|a| a.iter().map(item_size).sum()).unwrap_or(0);
            consistency(request) * units(items, READ_UNIT_BYTES)
        }
        "BatchGetItem" => response["Responses"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.iter())
            .map(|(table, items)| {
                let factor = consistency(&request["RequestItems"][table]);
                let items = items.as_array().cloned().unwrap_or_default();
                items.iter().map(|item| factor * units(item_size(item), READ_UNIT_BYTES)).sum::<f64>()
            })
            .sum(),
        "TransactGetItems" => response["Responses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| 2.0 * units(item_size(&r["Item"]), READ_UNIT_BYTES))
            .sum(),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_of(bytes: usize) -> Value {
        json!({"S": "x".repeat(bytes)})
    }

    #[test]
    fn an_item_is_its_names_and_values() {
        let item = json!({"id": {"S": "abc"}, "n": {"N": "12345"}, "b": {"B": "AAAA"}, "ok": {"BOOL": true}});

        assert_eq!(item_size(&item), (2 + 3) + (1 + 4) + (1 + 3) + (2 + 1));
    }

    #[test]
    fn a_put_costs_a_write_unit_per_started_kilobyte() {
        let small = json!({"Item": {"k": text_of(100)}});
        let large = json!({"Item": {"k": text_of(1500)}});

        assert_eq!(write_units("PutItem", &small), 1.0);
        assert_eq!(write_units("PutItem", &large), 2.0);
    }

    #[test]
    fn a_transaction_costs_twice_each_item() {
        let body = json!({"TransactItems": [
            {"Put": {"Item": {"k": text_of(10)}}},
            {"Update": {"Key": {"k": text_of(10)}, "ExpressionAttributeValues": {":v": {"N": "1"}}}},
            {"ConditionCheck": {"Key": {"k": text_of(10)}}}
        ]});

        assert_eq!(write_units("TransactWriteItems", &body), 6.0);
    }

    #[test]
    fn a_batch_write_costs_each_request() {
        let body = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"k": text_of(2000)}}},
            {"DeleteRequest": {"Key": {"k": text_of(5)}}}
        ]}});

        assert_eq!(write_units("BatchWriteItem", &body), 3.0);
    }

    #[test]
    fn an_eventually_consistent_read_costs_half_and_a_miss_still_costs() {
        let found = json!({"Item": {"k": text_of(5000)}});

        assert_eq!(read_units("GetItem", &json!({}), &found), 1.0);
        assert_eq!(read_units("GetItem", &json!({"ConsistentRead": true}), &found), 2.0);
        assert_eq!(read_units("GetItem", &json!({"ConsistentRead": true}), &json!({})), 1.0);
    }

    #[test]
    fn a_query_costs_the_items_it_returns_together() {
        let three_small = json!({"Items": [{"k": text_of(1000)}, {"k": text_of(1000)}, {"k": text_of(1000)}]});

        assert_eq!(read_units("Query", &json!({}), &three_small), 0.5);
        assert_eq!(read_units("Query", &json!({"ConsistentRead": true}), &json!({"Items": []})), 1.0);
    }

    #[test]
    fn a_batch_read_costs_each_item_by_its_table_consistency() {
        let request = json!({"RequestItems": {"a": {"ConsistentRead": true}, "b": {}}});
        let response = json!({"Responses": {"a": [{"k": text_of(10)}], "b": [{"k": text_of(10)}, {"k": text_of(10)}]}});

        assert_eq!(read_units("BatchGetItem", &request, &response), 2.0);
    }

    #[test]
    fn writes_have_no_read_units_and_reads_no_write_units() {
        assert_eq!(read_units("PutItem", &json!({}), &json!({})), 0.0);
        assert_eq!(write_units("GetItem", &json!({"Key": {"k": text_of(1)}})), 0.0);
    }
}
