//! `WWW-Authenticate` challenges (RFC 7235 §4.1) as RFC 6750, RFC 9449 and RFC 9470 use
//! them: a strict parser and a builder.
//!
//! The grammar (RFC 7235 §2.1, RFC 7230 §3.2.6 and §7):
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param  = token BWS "=" BWS ( token / quoted-string )
//! token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Scheme and parameter names compare case-insensitively; a parameter may occur only once
//! per challenge (RFC 7235 §2.1). Empty list elements (`a=b, , c=d`) are accepted, as RFC
//! 7230 §7 requires of recipients; anything else off the grammar is an error.

use std::fmt;

/// `error` value of RFC 9470: the token's authentication is too weak or too old.
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// One challenge of a `WWW-Authenticate` header: a scheme and its parameters (or, rarely,
/// a token68).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as written, e.g. `Bearer` (compare with [`Challenge::is_scheme`]).
    pub scheme: String,
    /// The auth-params in order, names as written, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
    /// A token68 in place of the parameters (never together with them).
    pub token68: Option<String>,
}

/// Why a `WWW-Authenticate` value is not one the grammar allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate at byte {position}: {reason}")]
pub struct ParseError {
    /// Byte offset into the input where the problem was found.
    pub position: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

impl Challenge {
    /// A challenge of `scheme` with no parameters.
    pub fn new(scheme: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            params: Vec::new(),
            token68: None,
        }
    }

    /// A `Bearer` challenge with no parameters.
    pub fn bearer() -> Self {
        Self::new("Bearer")
    }

    /// Adds a parameter (`name` must be a token, e.g. `error_description`). See the
    /// `Display` impl for how the value is written.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Parses a header value that must hold exactly one challenge.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let mut all = parse_challenges(input)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            _ => Err(ParseError {
                position: 0,
                reason: "expected exactly one challenge",
            }),
        }
    }

    /// Whether the scheme is `name`, ignoring ASCII case.
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The value of the parameter `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `realm` parameter.
    pub fn realm(&self) -> Option<&str> {
        self.get("realm")
    }

    /// The `error` parameter (RFC 6750 §3), e.g. `invalid_token` or
    /// `insufficient_user_authentication`.
    pub fn error(&self) -> Option<&str> {
        self.get("error")
    }

    /// The `error_description` parameter.
    pub fn error_description(&self) -> Option<&str> {
        self.get("error_description")
    }

    /// The `acr_values` parameter (RFC 9470): space-separated ACR values, as sent.
    pub fn acr_values(&self) -> Option<&str> {
        self.get("acr_values")
    }

    /// The `max_age` parameter (RFC 9470) in seconds. `None` if absent or not a
    /// non-negative integer (use [`Challenge::get`] to see the raw value).
    pub fn max_age(&self) -> Option<u64> {
        self.get("max_age")
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse().ok())
    }
}

/// Writes the challenge as a header value. Every parameter is a quoted-string except one
/// whose value is all digits (e.g. `max_age=300`), which is written as a token. Control
/// characters cannot travel in a header and are written as spaces.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            f.write_str(name)?;
            f.write_str("=")?;
            if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                f.write_str(value)?;
            } else {
                f.write_str("\"")?;
                for c in value.chars() {
                    match c {
                        '"' | '\\' => write!(f, "\\{c}")?,
                        '\t' => f.write_str("\t")?,
                        c if c.is_control() => f.write_str(" ")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Challenge {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses a whole `WWW-Authenticate` value: one or more challenges.
pub fn parse_challenges(input: &str) -> Result<Vec<Challenge>, ParseError> {
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    p.skip_empty_elements();
    while !p.at_end() {
        out.push(p.challenge()?);
        p.skip_ows();
        if p.at_end() {
            break;
        }
        // challenge() stops only at the end or right before a new challenge, after the
        // separating comma(s).
    }
    if out.is_empty() {
        return Err(p.error("expected a challenge"));
    }
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            position: self.i,
            reason,
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Skips `*( OWS "," ) OWS`: the separators and empty elements of a list.
    fn skip_empty_elements(&mut self) {
        loop {
            self.skip_ows();
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                return;
            }
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        // tchars are ASCII, so the bytes are valid UTF-8.
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A token68 that makes up the rest of this challenge, if there is one here.
    fn token68(&mut self) -> Option<String> {
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_token68_char) {
            j += 1;
        }
        if j == self.i {
            return None;
        }
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        let end = j;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if j < self.s.len() && self.s[j] != b',' {
            return None;
        }
        let t = String::from_utf8_lossy(&self.s[self.i..end]).into_owned();
        self.i = end;
        Some(t)
    }

    fn quoted_string(&mut self) -> Result<String, ParseError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted-string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                        Some(b)
                            if b == b'\t'
                                || b == b' '
                                || (0x21..=0x7e).contains(&b)
                                || b >= 0x80 =>
                        {
                            out.push(b);
                            self.i += 1;
                        }
                        None => return Err(self.error("unterminated quoted-string")),
                        Some(_) => return Err(self.error("invalid character after backslash")),
                    }
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                Some(b) if b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80 => {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err(self.error("control character in quoted-string")),
            }
        }
        // Only whole UTF-8 sequences were copied (the input is a str and escapes are ASCII
        // or copy the following byte of a sequence, which the next bytes complete).
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in quoted-string"))
    }

    /// One challenge. Leaves the position at the end of input or at the start of the
    /// next challenge (list separators consumed).
    fn challenge(&mut self) -> Result<Challenge, ParseError> {
        let scheme = self
            .token()
            .ok_or_else(|| self.error("expected an auth-scheme"))?;
        let mut challenge = Challenge::new(scheme);
        // A bare scheme ends at the end or at a comma.
        let after_scheme = self.i;
        self.skip_ows();
        if self.at_end() {
            return Ok(challenge);
        }
        if self.peek() == Some(b',') {
            self.skip_empty_elements();
            return Ok(challenge);
        }
        // Parameters follow the scheme after 1*SP, nothing else.
        if !self.s[after_scheme..self.i].iter().all(|&b| b == b' ') {
            return Err(ParseError {
                position: after_scheme,
                reason: "expected spaces after the auth-scheme",
            });
        }
        if self.i == after_scheme {
            return Err(self.error("expected a space after the auth-scheme"));
        }
        if let Some(t) = self.token68() {
            challenge.token68 = Some(t);
            self.skip_empty_elements();
            return Ok(challenge);
        }
        loop {
            let name = self
                .token()
                .ok_or_else(|| self.error("expected an auth-param name"))?;
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(self.error("expected \"=\" after the auth-param name"));
            }
            self.i += 1;
            self.skip_ows();
            let value = match self.peek() {
                Some(b'"') => self.quoted_string()?,
                _ => self
                    .token()
                    .ok_or_else(|| self.error("expected a token or quoted-string value"))?,
            };
            if challenge.get(&name).is_some() {
                return Err(self.error("an auth-param name occurs twice"));
            }
            challenge.params.push((name, value));
            self.skip_ows();
            if self.at_end() {
                return Ok(challenge);
            }
            if self.peek() != Some(b',') {
                return Err(self.error("expected \",\" or the end after an auth-param"));
            }
            self.skip_empty_elements();
            if self.at_end() {
                return Ok(challenge);
            }
            // `name =` continues this challenge; anything else starts the next one.
            let save = self.i;
            let next_is_param = self.token().is_some() && {
                self.skip_ows();
                self.peek() == Some(b'=')
            };
            self.i = save;
            if !next_is_param {
                return Ok(challenge);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Challenge {
        Challenge::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn rfc9470_example_parses() {
        let c = one(
            r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR""#,
        );
        assert!(c.is_scheme("bearer"));
        assert_eq!(c.error(), Some(INSUFFICIENT_USER_AUTHENTICATION));
        assert_eq!(
            c.error_description(),
            Some("A different authentication level is required")
        );
        assert_eq!(c.acr_values(), Some("myACR"));
        assert_eq!(c.max_age(), None);
        let c = one(r#"Bearer error="insufficient_user_authentication", max_age="5""#);
        assert_eq!(c.max_age(), Some(5));
    }

    #[test]
    fn bare_scheme_and_token_values() {
        assert_eq!(one("Bearer"), Challenge::bearer());
        assert_eq!(one("  Bearer  "), Challenge::bearer());
        let c = one("DPoP error=invalid_token,max_age=300");
        assert!(c.is_scheme("dpop"));
        assert_eq!(c.error(), Some("invalid_token"));
        assert_eq!(c.max_age(), Some(300));
    }

    #[test]
    fn names_are_case_insensitive_and_whitespace_is_optional() {
        let c = one("bEaReR  REALM = \"x\" ,\tError=\"y\"");
        assert_eq!(c.realm(), Some("x"));
        assert_eq!(c.error(), Some("y"));
        assert_eq!(c.params[0].0, "REALM");
    }

    #[test]
    fn quoted_strings_keep_commas_equals_and_unescape() {
        let c = one(r#"Bearer error_description="a, b=c \"quoted\" back\\slash \x", realm="r""#);
        assert_eq!(
            c.error_description(),
            Some(r#"a, b=c "quoted" back\slash x"#)
        );
        assert_eq!(c.realm(), Some("r"));
        assert_eq!(c.params.len(), 2);
        assert_eq!(one(r#"Bearer realm="""#).realm(), Some(""));
        assert_eq!(one("Bearer realm=\"caf\u{e9}\"").realm(), Some("caf\u{e9}"));
    }

    #[test]
    fn several_challenges_in_one_value() {
        let all = parse_challenges(
            r#"Bearer realm="a", error="invalid_token", DPoP algs="ES256 EdDSA", Basic, Negotiate abc+/==, Other x=1"#,
        )
        .unwrap();
        let schemes: Vec<_> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Bearer", "DPoP", "Basic", "Negotiate", "Other"]);
        assert_eq!(all[0].params.len(), 2);
        assert_eq!(all[1].get("algs"), Some("ES256 EdDSA"));
        assert_eq!(all[3].token68.as_deref(), Some("abc+/=="));
        assert_eq!(all[4].get("x"), Some("1"));
        assert!(Challenge::parse(r#"Bearer realm="a", Basic"#).is_err());
    }

    #[test]
    fn a_lone_token68_is_not_a_parameter() {
        // `realm=` is a valid token68 by the grammar, so it is read as one.
        let c = one("Bearer realm=");
        assert_eq!(c.token68.as_deref(), Some("realm="));
        assert_eq!(c.realm(), None);
        assert_eq!(c.to_string(), "Bearer realm=");
    }

    #[test]
    fn empty_list_elements_are_accepted() {
        let c = one(r#", Bearer realm="a", , error="b" ,"#);
        assert_eq!(c.params.len(), 2);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            " , ",
            "Bearer realm x",
            "Bearer realm=, error=\"x\"",
            "Bearer a=b, realm=",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"trailing backslash\\",
            "Bearer realm=\"a\" error=\"b\"",
            "Bearer realm=\"a\"x",
            "Bearer realm=a b",
            "Bearer realm=\"a\", realm=\"b\"",
            "Bearer realm=\"a\", REALM=\"b\"",
            "Bearer =x",
            "Bearer realm=\"ctl\u{1}\"",
            "Bearer realm=\"ctl\\\u{1}\"",
            "Bear(er realm=\"x\"",
            "Bearer\trealm=\"x\"",
            "\"Bearer\"",
            "Bearer realm=@",
            "Bearer realm=\"a\";",
        ] {
            assert!(parse_challenges(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn built_challenges_round_trip() {
        let c = Challenge::bearer()
            .param("error", INSUFFICIENT_USER_AUTHENTICATION)
            .param("error_description", "say \"hi\", \\ then go")
            .param("acr_values", "urn:stepgate:acr:mfa")
            .param("max_age", "300");
        let text = c.to_string();
        assert_eq!(
            text,
            r#"Bearer error="insufficient_user_authentication", error_description="say \"hi\", \\ then go", acr_values="urn:stepgate:acr:mfa", max_age=300"#
        );
        assert_eq!(one(&text), c);
        assert_eq!(Challenge::bearer().to_string(), "Bearer");
        let with_newline = Challenge::bearer().param("error_description", "a\r\nb");
        assert_eq!(
            one(&with_newline.to_string()).error_description(),
            Some("a  b")
        );
    }

    #[test]
    fn max_age_must_be_digits() {
        assert_eq!(one("Bearer max_age=\"-1\"").max_age(), None);
        assert_eq!(one("Bearer max_age=\"\"").max_age(), None);
        assert_eq!(one("Bearer max_age=1e3").max_age(), None);
        assert_eq!(one("Bearer max_age=0").max_age(), Some(0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the values (commas, quotes, backslashes, tabs, non-ASCII), a built
            /// challenge parses back to itself.
            #[test]
            fn built_challenges_parse_back(
                scheme in "[A-Za-z][A-Za-z0-9-]{0,9}",
                values in proptest::collection::vec("[ -~\t\u{e0}-\u{ff}]{0,24}", 0..5),
            ) {
                let mut c = Challenge::new(scheme);
                for (i, v) in values.into_iter().enumerate() {
                    c = c.param(format!("p{i}"), v);
                }
                prop_assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
            }

            /// Arbitrary input never panics, and whatever parses prints as something that
            /// parses to the same challenge.
            #[test]
            fn arbitrary_input_is_parsed_or_refused(input in "[ -~\t]{0,40}") {
                if let Ok(all) = parse_challenges(&input) {
                    for c in all {
                        prop_assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
                    }
                }
            }

            /// Inputs made of the grammar's own pieces: parsed or refused, never a panic.
            #[test]
            fn grammar_shaped_input_never_panics(
                pieces in proptest::collection::vec(
                    prop_oneof![
                        Just("Bearer"), Just(" "), Just(","), Just("="), Just("\""),
                        Just("\\"), Just("realm"), Just("a=b"), Just("x=\"y,z\""), Just("\t"),
                        Just("abc=="),
                    ],
                    0..12,
                ),
            ) {
                let input: String = pieces.concat();
                let _ = parse_challenges(&input);
            }
        }
    }
}
