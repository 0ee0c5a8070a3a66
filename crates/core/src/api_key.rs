//! API key scopes: what a relying party's backend (`service`) or an operator (`admin`)
//! may call.

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyScope {
    Service,
    Admin,
}

impl ApiKeyScope {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "service" => Ok(Self::Service),
            "admin" => Ok(Self::Admin),
            _ => Err(Error::validation("scope must be \"service\" or \"admin\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Admin => "admin",
        }
    }

    /// Whether a key of this scope may call a route that requires `required`.
    /// An admin key may do what a service key may; not the other way round.
    pub fn allows(self, required: ApiKeyScope) -> bool {
        self == required || self == Self::Admin
    }
}

/// An operator's label for a key: at most 200 characters, no control characters (a label
/// is shown in listings and logs, where a newline or escape sequence would forge lines).
pub fn parse_label(raw: &str) -> Result<String, Error> {
    if raw.chars().count() > 200 || raw.chars().any(char::is_control) {
        return Err(Error::validation(
            "label must be at most 200 characters, without control characters",
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_control_characters() {
        assert!(parse_label("ci deploy key").is_ok());
        assert!(parse_label("a\nforged line").is_err());
        assert!(parse_label("\u{1b}[31mred").is_err());
        assert!(parse_label(&"x".repeat(201)).is_err());
    }

    #[test]
    fn admin_covers_service_but_not_conversely() {
        assert!(ApiKeyScope::Admin.allows(ApiKeyScope::Service));
        assert!(!ApiKeyScope::Service.allows(ApiKeyScope::Admin));
        assert!(ApiKeyScope::parse("root").is_err());
        assert_eq!(ApiKeyScope::parse("admin").unwrap().as_str(), "admin");
    }
}
