//! Whether a request may be answered, from its head alone, in transmission-daemon's order: its credentials (401),
//! its Host header (421: a page on another site that resolves its own name to our address, DNS rebinding, must not
//! reach us), its session id (409: a browser's cross-site POST cannot read the id from a 409 to send it back), its
//! body's size (413).

use std::net::IpAddr;

use base64::Engine as _;

/// The header that carries the session id, both ways.
pub const SESSION_ID_HEADER: &str = "X-Transmission-Session-Id";
/// Largest request body read: a .torrent of a few MiB in base64 fits; anything past it is refused unread.
pub const MAX_BODY: u64 = 8 << 20;

/// A user name and password the requests must carry (HTTP Basic).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, in a log or a panic message.
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads `user:password` (the first line of a file's text; the password may hold colons).
    ///
    /// # Errors
    ///
    /// No colon, or an empty user name.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Ok(Credentials { user: user.to_owned(), password: password.to_owned() })
            }
            _ => Err("expected one line `user:password`".to_owned()),
        }
    }
}

/// What a request's head says, as the gate reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Head<'a> {
    pub host: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The declared body length, if declared.
    pub content_length: Option<u64>,
}

/// A refusal: its status, headers to send with it, and a short text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// The gate of one RPC server.
#[derive(Debug, Clone)]
pub struct Gate {
    session_id: String,
    credentials: Option<Credentials>,
    /// Host names accepted besides IP addresses and `localhost` (lowercase).
    allowed_hosts: Vec<String>,
}

impl Gate {
    /// A gate with a new random session id.
    #[must_use]
    pub fn new(credentials: Option<Credentials>, allowed_hosts: &[String]) -> Gate {
        let id: [u8; 24] = rand::random();
        let session_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        let allowed_hosts = allowed_hosts.iter().map(|host| host.to_ascii_lowercase()).collect();
        Gate { session_id, credentials, allowed_hosts }
    }

    /// The session id requests must carry.
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether the request with `head` may be answered; if not, what to answer instead.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] to send.
    pub fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
        if let Some(credentials) = &self.credentials
            && !head.authorization.is_some_and(|value| authorizes(value, credentials))
        {
            return Err(Refusal {
                status: 401,
                headers: vec![("WWW-Authenticate", "Basic realm=\"Transmission\"".to_owned())],
                body: "401: Unauthorized\n".to_owned(),
            });
        }
        if !head.host.is_some_and(|host| self.host_allowed(host)) {
            return Err(Refusal {
                status: 421,
                headers: Vec::new(),
                body: "421: Misdirected Request: the Host header names neither an IP address nor an allowed host \
                       (see --rpc-host)\n"
                    .to_owned(),
            });
        }
        if head.session_id != Some(self.session_id.as_str()) {
            return Err(Refusal {
                status: 409,
                headers: vec![(SESSION_ID_HEADER, self.session_id.clone())],
                body: format!("409: Conflict: send the header {SESSION_ID_HEADER}: {}\n", self.session_id),
            });
        }
        if head.content_length.is_some_and(|length| length > MAX_BODY) {
            return Err(too_large());
        }
        Ok(())
    }

    /// An IP literal (with or without a port), `localhost`, or a name given with `--rpc-host`.
    fn host_allowed(&self, host: &str) -> bool {
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = match host.strip_prefix('[') {
            // [::1]:9091
            Some(rest) => return rest.split_once(']').is_some_and(|(ip, _)| ip.parse::<IpAddr>().is_ok()),
            None => host
                .rsplit_once(':')
                .map_or(host, |(name, port)| if port.bytes().all(|byte| byte.is_ascii_digit()) { name } else { host }),
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost" || name.ends_with(".localhost") || self.allowed_hosts.contains(&name)
    }
}

/// The refusal of a body over [`MAX_BODY`].
#[must_use]
pub fn too_large() -> Refusal {
    Refusal { status: 413, headers: Vec::new(), body: format!("413: the request body is over {MAX_BODY} bytes\n") }
}

/// Whether an `Authorization` value is Basic with exactly these credentials.
fn authorizes(value: &str, credentials: &Credentials) -> bool {
    let Some((scheme, encoded)) = value.trim().split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let expected = format!("{}:{}", credentials.user, credentials.password);
    // Compared in full whatever the first difference, so the time taken says nothing of the password.
    decoded.len() == expected.len() && decoded.iter().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
    }

    fn head<'a>(host: &'a str, session_id: Option<&'a str>, authorization: Option<&'a str>) -> Head<'a> {
        Head { host: Some(host), session_id, authorization, content_length: Some(10) }
    }

    #[test]
    fn a_request_without_the_session_id_gets_409_with_the_id_to_use() {
        let gate = Gate::new(None, &[]);
        let refusal = gate.check(&head("127.0.0.1:9091", None, None)).expect_err("no id");
        assert_eq!(refusal.status, 409);
        assert_eq!(refusal.headers, vec![(SESSION_ID_HEADER, gate.session_id().to_owned())]);
        assert_eq!(gate.check(&head("127.0.0.1:9091", Some("stale"), None)).expect_err("stale").status, 409);
        assert!(gate.check(&head("127.0.0.1:9091", Some(gate.session_id()), None)).is_ok());
        assert_ne!(gate.session_id(), Gate::new(None, &[]).session_id(), "a new id each start");
    }

    #[test]
    fn credentials_are_checked_first_and_in_full() {
        let credentials = Credentials::parse("admin:s3:cret\n").expect("parses");
        assert_eq!(credentials.password, "s3:cret", "a password may hold colons");
        assert!(!format!("{credentials:?}").contains("s3:cret"), "never printed");
        let gate = Gate::new(Some(credentials), &[]);
        let id = Some(gate.session_id());
        for wrong in [None, Some(basic("admin:s3:cre")), Some(basic("admin:s3:cretx")), Some("Bearer x".to_owned())] {
            let refusal = gate.check(&head("[::1]:9091", id, wrong.as_deref())).expect_err("refused");
            assert_eq!(refusal.status, 401, "{wrong:?}");
            assert!(refusal.headers[0].1.starts_with("Basic realm="));
        }
        // Without the right credentials, not even the session id is given out.
        assert_eq!(gate.check(&head("localhost", None, None)).expect_err("401 before 409").status, 401);
        let right = basic("admin:s3:cret");
        assert!(gate.check(&head("[::1]:9091", id, Some(&right))).is_ok());
        assert!(Credentials::parse("nobody").is_err() && Credentials::parse(":password").is_err());
    }

    #[test]
    fn a_host_that_is_no_ip_and_not_allowed_gets_421() {
        let gate = Gate::new(None, &["Box.Example".to_owned()]);
        let id = Some(gate.session_id());
        for host in
            ["127.0.0.1", "127.0.0.1:9091", "[::1]:9091", "::1", "localhost:9091", "box.example:9091", "BOX.example"]
        {
            assert!(gate.check(&head(host, id, None)).is_ok(), "{host}");
        }
        for host in ["attacker.example", "attacker.example:9091", "127.0.0.1.attacker.example", "[evil]:1", ""] {
            assert_eq!(gate.check(&head(host, id, None)).expect_err(host).status, 421, "{host}");
        }
        let no_host = Head { host: None, session_id: id, authorization: None, content_length: None };
        assert_eq!(gate.check(&no_host).expect_err("no Host").status, 421);
    }

    #[test]
    fn a_body_over_the_cap_gets_413() {
        let gate = Gate::new(None, &[]);
        let mut over = head("127.0.0.1", Some(gate.session_id()), None);
        over.content_length = Some(10_000_000);
        assert_eq!(gate.check(&over).expect_err("too large").status, 413);
    }
}
