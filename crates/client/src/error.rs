//! What can go wrong talking to stepgate: an answer with a problem document (its stable
//! `code` is what to branch on), no answer, or an answer this SDK cannot read.

/// An error from a [`Client`](crate::Client) call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// stepgate answered with an RFC 9457 problem document.
    #[error("stepgate answered {status} {code}: {detail}")]
    Problem {
        /// The HTTP status.
        status: u16,
        /// The stable error code, e.g. `STEPUP_REQUIRED` (see the README's table).
        code: String,
        /// A human-readable explanation.
        detail: String,
        /// The whole document, including extension members such as `challenge_id`,
        /// `allowed_factors` or `attempts_left`.
        body: serde_json::Value,
    },
    /// An error status without a problem document (e.g. from a proxy in between).
    #[error("unexpected HTTP {status} from stepgate")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The first bytes of the body, as text.
        body: String,
    },
    /// The request did not get an answer: connection refused, timeout, reset.
    #[error("stepgate could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success answer whose body is not what this route returns.
    #[error("cannot read stepgate's answer (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What did not match.
        message: String,
    },
}

/// How much of a non-problem error body [`Error::Status`] keeps.
const MAX_STATUS_BODY: usize = 512;

impl Error {
    /// The stable error code if stepgate sent a problem document.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Problem { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether this is a problem document with `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    /// The HTTP status, if an answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } | Self::Status { status, .. } => Some(*status),
            Self::Decode { status, .. } => Some(*status),
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }

    /// A member of the problem document, e.g. `challenge_id`.
    pub fn problem_field(&self, name: &str) -> Option<&serde_json::Value> {
        match self {
            Self::Problem { body, .. } => body.get(name),
            _ => None,
        }
    }

    /// Reads an error answer: a problem document if it is one (whatever the
    /// `Content-Type` claims, a JSON object with a string `code` is one), else
    /// [`Error::Status`].
    pub fn from_response_body(status: u16, body: &[u8]) -> Self {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body)
            && let Some(serde_json::Value::String(code)) = map.get("code")
        {
            let detail = map
                .get("detail")
                .and_then(|d| d.as_str())
                .or_else(|| map.get("title").and_then(|t| t.as_str()))
                .unwrap_or_default()
                .to_owned();
            return Self::Problem {
                status,
                code: code.clone(),
                detail,
                body: serde_json::Value::Object(map),
            };
        }
        let mut end = body.len().min(MAX_STATUS_BODY);
        while end > 0 && std::str::from_utf8(&body[..end]).is_err() {
            end -= 1;
        }
        Self::Status {
            status,
            body: String::from_utf8_lossy(&body[..end]).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents_keep_code_detail_and_extensions() {
        let body = br#"{"type":"urn:stepgate:problem:STEPUP_FAILED","title":"Step-up failed","status":401,"detail":"the code is not valid","code":"STEPUP_FAILED","attempts_left":3}"#;
        let e = Error::from_response_body(401, body);
        assert!(e.is("STEPUP_FAILED"));
        assert_eq!(e.status(), Some(401));
        assert_eq!(e.problem_field("attempts_left"), Some(&3.into()));
        match &e {
            Error::Problem { detail, .. } => assert_eq!(detail, "the code is not valid"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "stepgate answered 401 STEPUP_FAILED: the code is not valid"
        );
    }

    #[test]
    fn a_problem_without_detail_uses_its_title() {
        let e = Error::from_response_body(404, br#"{"code":"NOT_FOUND","title":"Not found"}"#);
        assert!(matches!(e, Error::Problem { ref detail, .. } if detail == "Not found"));
    }

    #[test]
    fn other_bodies_are_status_errors() {
        for body in [
            &b"<html>bad gateway</html>"[..],
            br#"{"error":"x"}"#,
            br#"{"code":7}"#,
            br#"["code"]"#,
            b"",
        ] {
            let e = Error::from_response_body(502, body);
            assert!(matches!(e, Error::Status { status: 502, .. }), "{e:?}");
            assert_eq!(e.code(), None);
        }
        let long = "é".repeat(1000);
        match Error::from_response_body(500, long.as_bytes()) {
            Error::Status { body, .. } => assert!(body.len() <= MAX_STATUS_BODY),
            other => panic!("{other:?}"),
        }
    }
}
