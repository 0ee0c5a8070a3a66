//! Users' identifying input, parsed at the boundary.

use crate::Error;

/// A login name: 1–64 characters of ASCII letters, digits and `.`, `_`, `-`, `@`, `+`,
/// compared case-insensitively (stored lowercased).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(Error::validation("username must be 1 to 64 characters"));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
        {
            return Err(Error::validation(
                "username may contain only ASCII letters, digits and . _ - @ +",
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password. Length is bounded both ways: at least 8 characters (NIST SP 800-63B),
/// at most 256 characters so that hashing cost stays bounded. Lengths count characters,
/// as the OpenAPI document's `minLength`/`maxLength` do. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(Error::validation("password must be at least 8 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Error::validation("password must be at most 256 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// An email address, checked for shape only (one `@`, non-empty parts, no spaces, a
/// domain that neither starts nor ends with `.`, at most 254 characters);
/// deliverability is the mail server's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let invalid = || Error::validation("email must look like name@domain");
        if raw.chars().count() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        match raw.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(invalid()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as shown back to its owner where others might see it: the first
    /// character of the local part, then `***@` and the domain.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_fields_refuse_control_characters_and_length() {
        assert!(check_device_field("user_agent", "Mozilla/5.0 (X11; Linux)").is_ok());
        for bad in ["a\r\nforged: line", "\u{1b}[2J", "tab\there", "nul\0"] {
            let e = check_device_field("device.user_agent", bad).unwrap_err();
            assert!(e.detail.contains("device.user_agent"), "{}", e.detail);
        }
        assert!(check_device_field("f", &"x".repeat(MAX_DEVICE_FIELD)).is_ok());
        assert!(check_device_field("f", &"x".repeat(MAX_DEVICE_FIELD + 1)).is_err());
    }

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(Username::parse("Alice.B").unwrap().as_str(), "alice.b");
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("ünï").is_err());
    }

    #[test]
    fn passwords_are_bounded_and_never_debug_printed() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(257)).is_err());
        assert!(Password::parse(&"ü".repeat(256)).is_ok());
        let p = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn emails_need_one_at_and_two_parts() {
        assert!(Email::parse("a@b.example").is_ok());
        assert_eq!(
            Email::parse("ada@b.example").unwrap().masked(),
            "a***@b.example"
        );
        for bad in ["", "a", "@b", "a@", "a@@b", "a b@c", "a@.b", "a@b."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}

/// Longest device field (a fingerprint, a user agent) a client may send, in characters.
pub const MAX_DEVICE_FIELD: usize = 512;

/// What a client says about its device (`field` names it in the error): at most
/// [`MAX_DEVICE_FIELD`] characters, without control characters, since a user agent is shown
/// in device listings and written to logs, where a newline or an escape sequence would
/// forge lines.
pub fn check_device_field(field: &str, raw: &str) -> Result<(), Error> {
    if raw.chars().count() > MAX_DEVICE_FIELD || raw.chars().any(char::is_control) {
        return Err(Error::validation(format!(
            "{field} must be at most {MAX_DEVICE_FIELD} characters, without control characters"
        )));
    }
    Ok(())
}

/// A user's roles (Cedar's `User.roles`): at most 32, each 1–64 characters of letters,
/// digits and `: _ . -`; duplicates are dropped, order kept.
pub fn parse_roles(raw: &[String]) -> Result<Vec<String>, Error> {
    if raw.len() > 32 {
        return Err(Error::validation("roles: at most 32 roles"));
    }
    let mut roles: Vec<String> = Vec::new();
    for role in raw {
        let ok = (1..=64).contains(&role.len())
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_.-".contains(&b));
        if !ok {
            return Err(Error::validation(
                "roles: each role is 1-64 characters of letters, digits and : _ . -",
            ));
        }
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    Ok(roles)
}

#[cfg(test)]
mod role_tests {
    use super::parse_roles;

    #[test]
    fn roles_are_checked_and_deduplicated() {
        let r = |v: &[&str]| parse_roles(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            r(&["admin", "ops:on-call", "admin"]).unwrap(),
            ["admin", "ops:on-call"]
        );
        assert!(r(&[""]).is_err());
        assert!(r(&["a b"]).is_err());
        assert!(r(&[&"x".repeat(65)]).is_err());
        assert!(r(&vec!["a"; 33]).is_err());
    }
}
