//! The RPC's two dialects, read and written.
//!
//! Legacy (transmission-remote 3.00, Sonarr, Flood): `{"method": "torrent-get", "arguments": {...}, "tag": 7}`,
//! answered `{"result": "success", "arguments": {...}, "tag": 7}`, or with the error's text in `result`.
//! JSON-RPC 2.0 (Transmission 4.1): `{"jsonrpc": "2.0", "method": "torrent_get", "params": {...}, "id": 7}`,
//! answered `{"jsonrpc": "2.0", "result": {...}, "id": 7}` or `{"jsonrpc": "2.0", "error": {...}, "id": 7}`, with
//! every key in snake_case; a request without `id` is a notification and gets no answer.
//!
//! Keys are compared by [`canonical`], so `download-dir`, `download_dir` and `downloadDir` are one key.

use serde_json::{Map, Value};

/// How a call came, and so how it is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialect {
    Legacy {
        tag: Option<Value>,
    },
    /// `id`: `None` for a notification.
    JsonRpc {
        id: Option<Value>,
    },
}

/// One call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// In the legacy spelling (`torrent-get`), whatever the dialect.
    pub method: String,
    pub arguments: Map<String, Value>,
    pub dialect: Dialect,
}

/// JSON-RPC 2.0's error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
/// Transmission's code for an error of the method itself.
pub const METHOD_ERROR: i64 = 1;

/// Why a call failed: a JSON-RPC code and the text both dialects carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i64,
    pub message: String,
}

impl Failure {
    #[must_use]
    pub fn method(message: impl Into<String>) -> Failure {
        Failure { code: METHOD_ERROR, message: message.into() }
    }

    #[must_use]
    pub fn params(message: impl Into<String>) -> Failure {
        Failure { code: INVALID_PARAMS, message: message.into() }
    }
}

/// Reads a request body.
///
/// # Errors
///
/// Not JSON, not an object, no string `method`, or arguments that are not an object; the dialect to answer in
/// comes with the failure (legacy when the body says nothing of it).
pub fn parse(body: &[u8]) -> Result<Call, (Dialect, Failure)> {
    let legacy = Dialect::Legacy { tag: None };
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| (legacy.clone(), Failure { code: PARSE_ERROR, message: format!("not JSON: {err}") }))?;
    let Value::Object(mut request) = value else {
        let failure = Failure { code: INVALID_REQUEST, message: "the request is not a JSON object".to_owned() };
        return Err((legacy, failure));
    };
    let json_rpc = request.get("jsonrpc").is_some();
    let dialect = if json_rpc {
        Dialect::JsonRpc { id: request.remove("id") }
    } else {
        Dialect::Legacy { tag: request.remove("tag") }
    };
    if json_rpc && request.get("jsonrpc") != Some(&Value::String("2.0".to_owned())) {
        return Err((dialect, Failure { code: INVALID_REQUEST, message: "jsonrpc must be \"2.0\"".to_owned() }));
    }
    let Some(Value::String(method)) = request.remove("method") else {
        return Err((dialect, Failure { code: INVALID_REQUEST, message: "no method named".to_owned() }));
    };
    let arguments = match request.remove(if json_rpc { "params" } else { "arguments" }) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err((dialect, Failure::params("the arguments are not a JSON object"))),
    };
    Ok(Call { method: method.replace('_', "-"), arguments, dialect })
}

/// The answer to a call in its dialect; `None` for a JSON-RPC notification.
#[must_use]
pub fn answer(dialect: &Dialect, result: Result<Map<String, Value>, Failure>) -> Option<Value> {
    match dialect {
        Dialect::Legacy { tag } => {
            let (result, arguments) = match result {
                Ok(arguments) => ("success".to_owned(), arguments),
                Err(failure) => (failure.message, Map::new()),
            };
            let mut answer = serde_json::json!({ "result": result, "arguments": arguments });
            if let (Some(tag), Some(object)) = (tag, answer.as_object_mut()) {
                object.insert("tag".to_owned(), tag.clone());
            }
            Some(answer)
        }
        Dialect::JsonRpc { id: None } => None,
        Dialect::JsonRpc { id: Some(id) } => Some(match result {
            Ok(arguments) => {
                serde_json::json!({ "jsonrpc": "2.0", "result": snake_keys(Value::Object(arguments)), "id": id })
            }
            Err(failure) => serde_json::json!({
                "jsonrpc": "2.0",
                "error": { "code": failure.code, "message": failure.message },
                "id": id,
            }),
        }),
    }
}

/// A key as compared: lowercase, without `-` and `_` (`downloadDir`, `download-dir`, `download_dir` are one).
#[must_use]
pub fn canonical(key: &str) -> String {
    key.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect()
}

/// The value of `key` in `arguments`, by its [`canonical`] form.
#[must_use]
pub fn argument<'a>(arguments: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let wanted = canonical(key);
    arguments.iter().find(|(name, _)| canonical(name) == wanted).map(|(_, value)| value)
}

/// Every key of `value`, at every depth, in snake_case (`hashString` → `hash_string`, `peer-port` → `peer_port`).
fn snake_keys(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            Value::Object(object.into_iter().map(|(key, value)| (snake(&key), snake_keys(value))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (index, c) in key.chars().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if index > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_call_is_answered_with_its_tag() {
        let call = parse(br#"{"method":"torrent-get","arguments":{"fields":["id"]},"tag":7}"#).expect("a call");
        assert_eq!(call.method, "torrent-get");
        assert_eq!(call.dialect, Dialect::Legacy { tag: Some(Value::from(7)) });
        let mut arguments = Map::new();
        arguments.insert("torrents".to_owned(), Value::Array(Vec::new()));
        let answer = answer(&call.dialect, Ok(arguments)).expect("an answer");
        assert_eq!(answer.to_string(), r#"{"arguments":{"torrents":[]},"result":"success","tag":7}"#);
        let failed = super::answer(&call.dialect, Err(Failure::method("no such torrent"))).expect("an answer");
        assert_eq!(failed.to_string(), r#"{"arguments":{},"result":"no such torrent","tag":7}"#);
    }

    #[test]
    fn a_json_rpc_call_is_answered_in_snake_case_and_a_notification_not_at_all() {
        let call = parse(br#"{"jsonrpc":"2.0","method":"session_get","params":{},"id":"a"}"#).expect("a call");
        assert_eq!(call.method, "session-get");
        let mut arguments = Map::new();
        arguments.insert("rpc-version".to_owned(), Value::from(17));
        arguments.insert("torrents".to_owned(), serde_json::json!([{"hashString": "ab", "percentDone": 1}]));
        let answer = answer(&call.dialect, Ok(arguments)).expect("an answer");
        assert_eq!(
            answer.to_string(),
            concat!(
                r#"{"id":"a","jsonrpc":"2.0","#,
                r#""result":{"rpc_version":17,"torrents":[{"hash_string":"ab","percent_done":1}]}}"#
            )
        );
        let failed = super::answer(&call.dialect, Err(Failure::method("nope"))).expect("an answer");
        assert_eq!(failed["error"]["code"], 1);
        let notification = parse(br#"{"jsonrpc":"2.0","method":"torrent_start"}"#).expect("a call");
        assert!(super::answer(&notification.dialect, Ok(Map::new())).is_none());
    }

    #[test]
    fn bad_bodies_are_failures_with_the_right_code() {
        let code = |body: &[u8]| parse(body).expect_err("bad").1.code;
        assert_eq!(code(b"{not json"), PARSE_ERROR);
        assert_eq!(code(b"[1,2]"), INVALID_REQUEST);
        assert_eq!(code(br#"{"arguments":{}}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":5}"#), INVALID_REQUEST);
        assert_eq!(code(br#"{"method":"torrent-get","arguments":[1]}"#), INVALID_PARAMS);
        assert_eq!(code(br#"{"jsonrpc":"1.0","method":"x","id":1}"#), INVALID_REQUEST);
        let (dialect, _) = parse(br#"{"jsonrpc":"2.0","id":3}"#).expect_err("no method");
        assert_eq!(dialect, Dialect::JsonRpc { id: Some(Value::from(3)) });
    }

    #[test]
    fn keys_match_in_any_spelling() {
        let arguments: Map<String, Value> =
            serde_json::from_str(r#"{"download_dir":"/d","filesWanted":[1]}"#).expect("json");
        assert_eq!(argument(&arguments, "download-dir"), Some(&Value::from("/d")));
        assert_eq!(argument(&arguments, "files-wanted"), Some(&serde_json::json!([1])));
        assert_eq!(snake("peer-limit-global"), "peer_limit_global");
        assert_eq!(snake("rateDownload"), "rate_download");
    }
}
