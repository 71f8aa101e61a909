//! Fuzz target: what the RPC reads of a request before the session is asked anything. The head's fields go
//! through the gate (credentials, Host, session id, size), the body through the protocol's parser, and whatever
//! parses is answered in its dialect: never a panic, and an answer is always JSON that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::gate::{Credentials, Gate, Head};
use rpc::protocol::{answer, parse};

fn field(part: Option<&[u8]>) -> Option<&str> {
    part.and_then(|bytes| std::str::from_utf8(bytes).ok())
}

fuzz_target!(|data: &[u8]| {
    // The first bytes are the head's fields, split at NUL; the rest is the body.
    let mut parts = data.splitn(4, |&byte| byte == 0);
    let (host, authorization, session_id) = (field(parts.next()), field(parts.next()), field(parts.next()));
    let body = parts.next().unwrap_or_default();
    let credentials = Credentials::parse("user:pass").ok();
    let gate = Gate::new(credentials, &["box.example".to_owned()]);
    let head = Head { host, session_id, authorization, content_length: Some(body.len() as u64) };
    if let Err(refusal) = gate.check(&head) {
        assert!([401, 409, 413, 421].contains(&refusal.status));
    }
    let (dialect, result) = match parse(body) {
        Ok(call) => {
            assert!(!call.method.contains('_'), "methods are read in the legacy spelling");
            (call.dialect, Ok(call.arguments))
        }
        Err((dialect, failure)) => (dialect, Err(failure)),
    };
    if let Some(json) = answer(&dialect, result) {
        let text = json.to_string();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }
});
