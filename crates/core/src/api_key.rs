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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_covers_service_but_not_conversely() {
        assert!(ApiKeyScope::Admin.allows(ApiKeyScope::Service));
        assert!(!ApiKeyScope::Service.allows(ApiKeyScope::Admin));
        assert!(ApiKeyScope::parse("root").is_err());
        assert_eq!(ApiKeyScope::parse("admin").unwrap().as_str(), "admin");
    }
}
