//! Purposes, their requirements, platform minimums and policy versions.
//!
//! The operator declares each purpose with a platform minimum. Admins may tighten a
//! purpose's requirement at run time, never loosen it below that minimum.

use crate::{Error, ErrorCode};

/// How strong a proof must be. Ordered: `PhishingResistant` is stronger than `Any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactorClass {
    Any,
    PhishingResistant,
}

impl FactorClass {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "any" => Ok(Self::Any),
            "phishing_resistant" => Ok(Self::PhishingResistant),
            _ => Err(Error::validation(
                "factor must be \"any\" or \"phishing_resistant\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::PhishingResistant => "phishing_resistant",
        }
    }

    /// Whether a proof of this class satisfies a requirement of class `required`.
    pub fn satisfies(self, required: FactorClass) -> bool {
        self >= required
    }
}

/// A purpose's name as callers send it, e.g. `admin:resources:delete`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurposeName(String);

impl PurposeName {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::validation(
                "a purpose name is 1 to 128 characters of letters, digits and : _ - .",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a step-up for a purpose must satisfy, and what the elevation allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub factor: FactorClass,
    /// How long the elevation lives.
    pub ttl_seconds: i64,
    /// Used up by whatever relies on it first.
    pub single_use: bool,
    /// Only usable from the IP that passed the challenge.
    pub bind_ip: bool,
    /// Distinct approvers needed besides the requester.
    pub approvals: u32,
}

/// Why `approvals > 0` is refused until multi-party approval exists: accepting it would
/// let the requester alone pass a purpose meant to need others.
pub const APPROVALS_UNAVAILABLE: &str = "approvals must be 0: multi-party approval is not \
     available yet, and a purpose that asks for it would otherwise be passed by the requester alone";

/// The reason a requirement is looser than its minimum, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowMinimum(pub &'static str);

impl Requirement {
    /// A requirement at least as strict as `minimum` in every field: a stronger or equal
    /// factor, a TTL no longer, single use and IP binding kept if required, no fewer
    /// approvals.
    pub fn check_at_least(&self, minimum: &Requirement) -> Result<(), BelowMinimum> {
        if !self.factor.satisfies(minimum.factor) {
            return Err(BelowMinimum("factor"));
        }
        if self.ttl_seconds > minimum.ttl_seconds {
            return Err(BelowMinimum("ttl_seconds"));
        }
        if minimum.single_use && !self.single_use {
            return Err(BelowMinimum("single_use"));
        }
        if minimum.bind_ip && !self.bind_ip {
            return Err(BelowMinimum("bind_ip"));
        }
        if self.approvals < minimum.approvals {
            return Err(BelowMinimum("approvals"));
        }
        Ok(())
    }

    /// The stricter of two requirements, field by field.
    pub fn strictest(&self, other: &Requirement) -> Requirement {
        Requirement {
            factor: self.factor.max(other.factor),
            ttl_seconds: self.ttl_seconds.min(other.ttl_seconds),
            single_use: self.single_use || other.single_use,
            bind_ip: self.bind_ip || other.bind_ip,
            approvals: self.approvals.max(other.approvals),
        }
    }

    /// Checks the values; on error, the field at fault too.
    pub fn validate_fields(&self) -> Result<(), (&'static str, Error)> {
        if self.ttl_seconds <= 0 || self.ttl_seconds > 86_400 {
            return Err((
                "ttl_seconds",
                Error::validation("ttl_seconds must be 1 to 86400"),
            ));
        }
        if self.approvals > 0 {
            return Err(("approvals", Error::validation(APPROVALS_UNAVAILABLE)));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), Error> {
        self.validate_fields().map_err(|(_, e)| e)
    }

    /// Whether an elevation may be issued under this requirement at all. A requirement
    /// that asks for approvals cannot be met yet, so it must never yield an elevation
    /// the requester alone won (a policy stored before approvals were refused).
    pub fn issuable(&self) -> Result<(), Error> {
        if self.approvals > 0 {
            return Err(Error::new(ErrorCode::Conflict, APPROVALS_UNAVAILABLE));
        }
        Ok(())
    }
}

/// A purpose as the operator declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    pub name: PurposeName,
    /// Words a person understands, shown on the challenge.
    pub title: String,
    /// What happens once it is authorized, in a sentence: the step-up page says it
    /// under the title.
    pub consequence: Option<String>,
    /// The platform minimum.
    pub minimum: Requirement,
    /// How much risk the action itself carries (0–100), added to every assessment of it.
    pub sensitivity: u8,
}

/// A change to a requirement: omitted fields keep their values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequirementChange {
    pub factor: Option<FactorClass>,
    pub ttl_seconds: Option<i64>,
    pub single_use: Option<bool>,
    pub bind_ip: Option<bool>,
    pub approvals: Option<u32>,
}

impl RequirementChange {
    pub fn apply(&self, current: &Requirement) -> Requirement {
        Requirement {
            factor: self.factor.unwrap_or(current.factor),
            ttl_seconds: self.ttl_seconds.unwrap_or(current.ttl_seconds),
            single_use: self.single_use.unwrap_or(current.single_use),
            bind_ip: self.bind_ip.unwrap_or(current.bind_ip),
            approvals: self.approvals.unwrap_or(current.approvals),
        }
    }
}

/// The purpose-name → requirement map of one policy version may lag behind the config:
/// the effective requirement is never below the platform minimum, even for a version
/// written before the operator raised it.
pub fn effective(minimum: &Requirement, stored: Option<&Requirement>) -> Requirement {
    stored.map_or(*minimum, |s| s.strictest(minimum))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(factor: FactorClass, ttl: i64, single: bool, ip: bool, approvals: u32) -> Requirement {
        Requirement {
            factor,
            ttl_seconds: ttl,
            single_use: single,
            bind_ip: ip,
            approvals,
        }
    }

    #[test]
    fn tightening_passes_and_loosening_names_the_field() {
        let min = req(FactorClass::Any, 300, true, true, 0);
        assert!(
            req(FactorClass::PhishingResistant, 60, true, true, 2)
                .check_at_least(&min)
                .is_ok()
        );
        assert_eq!(
            req(FactorClass::Any, 301, true, true, 0).check_at_least(&min),
            Err(BelowMinimum("ttl_seconds"))
        );
        assert_eq!(
            req(FactorClass::Any, 300, false, true, 0).check_at_least(&min),
            Err(BelowMinimum("single_use"))
        );
        assert_eq!(
            req(FactorClass::Any, 300, true, false, 0).check_at_least(&min),
            Err(BelowMinimum("bind_ip"))
        );
        let strong = req(FactorClass::PhishingResistant, 300, false, false, 1);
        assert_eq!(
            req(FactorClass::Any, 300, false, false, 1).check_at_least(&strong),
            Err(BelowMinimum("factor"))
        );
        assert_eq!(
            req(FactorClass::PhishingResistant, 300, false, false, 0).check_at_least(&strong),
            Err(BelowMinimum("approvals"))
        );
    }

    #[test]
    fn effective_requirement_never_drops_below_the_minimum() {
        let min = req(FactorClass::Any, 300, true, false, 0);
        let stored = req(FactorClass::PhishingResistant, 600, false, true, 1);
        let eff = effective(&min, Some(&stored));
        assert_eq!(eff, req(FactorClass::PhishingResistant, 300, true, true, 1));
        assert!(eff.check_at_least(&min).is_ok());
        assert_eq!(effective(&min, None), min);
    }

    #[test]
    fn purpose_names_are_restricted() {
        assert!(PurposeName::parse("admin:resources:delete").is_ok());
        assert!(PurposeName::parse("").is_err());
        assert!(PurposeName::parse("a b").is_err());
    }
}
