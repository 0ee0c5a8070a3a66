//! Authorization decisions: Cedar policies, the step-up annotation, and the answer
//! `allow` / `step_up` / `deny`.
//!
//! Entity types are `User` (attribute `roles: Set<String>`), `Action` and `Resource`
//! (attributes sent by the relying party). The context always holds `risk_tier`,
//! `risk_score`, `device_trust`, `ip` and `elevations` (the purposes the session holds a
//! live elevation for).
//!
//! A `forbid` annotated `@step_up("purpose")` whose only unmet condition is that
//! elevation yields `step_up`: the request is evaluated again as if the session held
//! the elevations those forbids name, and if that allows, the answer is a step-up for
//! the first of them (a second step-up follows for the next, once the first is held).
//! Any other forbid, or no permit at all, is a `deny`. An `allow` reports in `relies_on`
//! the held purposes it could not do without, every one of which the caller must use.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde_json::Value;

/// The annotation that turns a forbid into a step-up requirement.
pub const STEP_UP: &str = "step_up";

/// Why a policy file was refused, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The parsed, checked policies plus what is precomputed for every request.
pub struct Policies {
    set: PolicySet,
    schema: Option<Schema>,
    action_entities: Vec<Entity>,
    step_up: HashMap<PolicyId, String>,
    user_type: EntityTypeName,
    action_type: EntityTypeName,
    resource_type: EntityTypeName,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.set.policies().count())
            .field("schema", &self.schema.is_some())
            .finish()
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    StepUp,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::StepUp => "step_up",
            Self::Deny => "deny",
        }
    }
}

/// A decision with what determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// For `StepUp`: the purpose that would satisfy it.
    pub purpose: Option<String>,
    /// The policies that determined the answer (their `@id`, else Cedar's `policyN`).
    pub policy_ids: Vec<String>,
    /// For `Allow`: the purposes whose elevations the allow relies on (to be used up).
    pub relies_on: Vec<String>,
    /// Human-readable reasons.
    pub reasons: Vec<String>,
}

impl Outcome {
    /// An allow by the `permits`, relying on the elevations for `relies_on`.
    fn allow(permits: &[PolicyId], relies_on: Vec<String>) -> Self {
        let mut reasons: Vec<String> = permits
            .iter()
            .map(|id| format!("permitted by policy {id}"))
            .collect();
        reasons.extend(
            relies_on
                .iter()
                .map(|p| format!("relies on the session's elevation for {p}")),
        );
        Self {
            verdict: Verdict::Allow,
            purpose: None,
            policy_ids: ids(permits),
            relies_on,
            reasons,
        }
    }

    fn deny(policy_ids: Vec<String>, reasons: Vec<String>) -> Self {
        Self {
            verdict: Verdict::Deny,
            purpose: None,
            policy_ids,
            relies_on: Vec::new(),
            reasons,
        }
    }
}

/// Policy ids as the answer reports them.
fn ids(v: &[PolicyId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// The request facts Cedar sees besides the entities.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub user_id: &'a str,
    pub roles: &'a [String],
    pub action: &'a str,
    pub resource: &'a str,
    pub resource_attributes: Option<&'a serde_json::Map<String, Value>>,
    pub risk_tier: &'a str,
    pub risk_score: u8,
    pub device_trust: &'a str,
    pub ip: &'a str,
}

/// A Cedar diagnostic as `line L, column C: message (help)`, for each error it holds.
fn located(d: &dyn miette::Diagnostic, source: &str) -> String {
    let one = |d: &dyn miette::Diagnostic| {
        let mut out = String::new();
        if let Some(label) = d.labels().and_then(|mut l| l.next()) {
            let before = &source[..label.offset().min(source.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            out.push_str(&format!("line {line}, column {column}: "));
        }
        out.push_str(&d.to_string());
        if let Some(help) = d.help() {
            out.push_str(&format!(" ({help})"));
        }
        out
    };
    let related: Vec<String> = d
        .related()
        .map(|r| r.map(one).collect())
        .unwrap_or_default();
    if related.is_empty() {
        one(d)
    } else {
        // A collection: its own message repeats the first of the related ones.
        related.join("; ")
    }
}

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(name).expect("a valid Cedar type name")
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

/// A JSON value as a Cedar value: strings, integers, booleans, arrays (sets) and
/// objects (records). Floats and nulls have no Cedar equivalent and are refused.
pub fn cedar_value(value: &Value) -> Result<RestrictedExpression, String> {
    Ok(match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(
            n.as_i64()
                .ok_or_else(|| format!("{n} is not a 64-bit integer (Cedar has no floats)"))?,
        ),
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .map(cedar_value)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), cedar_value(v)?)))
                .collect::<Result<Vec<_>, String>>()?,
        )
        .map_err(|e| e.to_string())?,
        Value::Null => return Err("null has no Cedar equivalent".into()),
    })
}

fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.to_owned())),
    )
}

impl Policies {
    /// Parses `text` (Cedar policies). With a schema (Cedar schema syntax), validates
    /// them strictly against it. Every `@step_up("p")` must be on a `forbid` and name one
    /// of `purposes`. Policies take their id from an `@id("…")` annotation if present.
    pub fn parse(text: &str, schema: Option<&str>, purposes: &[&str]) -> Result<Self, PolicyError> {
        let parsed = PolicySet::from_str(text).map_err(|e| {
            PolicyError(format!("the policies do not parse: {}", located(&e, text)))
        })?;
        if parsed.templates().next().is_some() {
            return Err(PolicyError(
                "policy templates are not supported; write concrete policies".into(),
            ));
        }
        let mut policies: Vec<Policy> = Vec::new();
        let mut ids = HashSet::new();
        let mut step_up = HashMap::new();
        for policy in parsed.policies() {
            let policy = match policy.annotation("id") {
                Some(id) => policy.new_id(PolicyId::new(id)),
                None => policy.clone(),
            };
            if !ids.insert(policy.id().to_string()) {
                return Err(PolicyError(format!(
                    "two policies have the id {:?}",
                    policy.id().to_string()
                )));
            }
            if let Some(purpose) = policy.annotation(STEP_UP) {
                if policy.effect() != cedar_policy::Effect::Forbid {
                    return Err(PolicyError(format!(
                        "policy {}: @step_up only makes sense on a forbid",
                        policy.id()
                    )));
                }
                if !purposes.contains(&purpose) {
                    return Err(PolicyError(format!(
                        "policy {}: @step_up({purpose:?}) names no configured purpose (known: {})",
                        policy.id(),
                        purposes.join(", ")
                    )));
                }
                step_up.insert(policy.id().clone(), purpose.to_owned());
            }
            policies.push(policy);
        }
        let set = PolicySet::from_policies(policies)
            .map_err(|e| PolicyError(format!("the policies do not form a set: {e}")))?;
        let (schema, action_entities) = match schema {
            None => (None, Vec::new()),
            Some(src) => {
                let (schema, _warnings) = Schema::from_cedarschema_str(src).map_err(|e| {
                    PolicyError(format!("the schema does not parse: {}", located(&e, src)))
                })?;
                let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
                if !result.validation_passed() {
                    let errors: Vec<String> = result
                        .validation_errors()
                        .map(|e| located(e, text))
                        .collect();
                    return Err(PolicyError(format!(
                        "the policies do not validate against the schema: {}",
                        errors.join("; ")
                    )));
                }
                let actions = schema
                    .action_entities()
                    .map_err(|e| PolicyError(format!("the schema's actions: {e}")))?;
                (Some(schema), actions.into_iter().collect())
            }
        };
        Ok(Self {
            set,
            schema,
            action_entities,
            step_up,
            user_type: type_name("User"),
            action_type: type_name("Action"),
            resource_type: type_name("Resource"),
            authorizer: Authorizer::new(),
        })
    }

    /// How many policies there are.
    pub fn len(&self) -> usize {
        self.set.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the policies were validated against a schema.
    pub fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    fn entities(&self, facts: &Facts<'_>) -> Result<Entities, String> {
        let user = Entity::new(
            uid(&self.user_type, facts.user_id),
            HashMap::from([(
                "roles".to_owned(),
                string_set(facts.roles.iter().map(String::as_str)),
            )]),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;
        let attrs = match facts.resource_attributes {
            None => HashMap::new(),
            Some(map) => map
                .iter()
                .map(|(k, v)| {
                    cedar_value(v)
                        .map(|e| (k.clone(), e))
                        .map_err(|e| format!("resource_attributes.{k}: {e}"))
                })
                .collect::<Result<HashMap<_, _>, _>>()?,
        };
        let resource = Entity::new(
            uid(&self.resource_type, facts.resource),
            attrs,
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;
        let all = [user, resource]
            .into_iter()
            .chain(self.action_entities.iter().cloned());
        // No schema here: the request's attributes are the RP's, checked by shape above;
        // the policies themselves were validated at load.
        Entities::from_entities(all, None).map_err(|e| e.to_string())
    }

    fn evaluate(
        &self,
        facts: &Facts<'_>,
        entities: &Entities,
        elevations: &BTreeSet<String>,
    ) -> Result<(Decision, Vec<PolicyId>), String> {
        let context = Context::from_pairs([
            (
                "risk_tier".to_owned(),
                RestrictedExpression::new_string(facts.risk_tier.to_owned()),
            ),
            (
                "risk_score".to_owned(),
                RestrictedExpression::new_long(i64::from(facts.risk_score)),
            ),
            (
                "device_trust".to_owned(),
                RestrictedExpression::new_string(facts.device_trust.to_owned()),
            ),
            (
                "ip".to_owned(),
                RestrictedExpression::new_string(facts.ip.to_owned()),
            ),
            (
                "elevations".to_owned(),
                string_set(elevations.iter().map(String::as_str)),
            ),
        ])
        .map_err(|e| e.to_string())?;
        let request = Request::new(
            uid(&self.user_type, facts.user_id),
            uid(&self.action_type, facts.action),
            uid(&self.resource_type, facts.resource),
            context,
            None,
        )
        .map_err(|e| e.to_string())?;
        let response = self.authorizer.is_authorized(&request, &self.set, entities);
        // A policy whose evaluation errors (say, a missing attribute) is skipped by Cedar:
        // it neither permits nor forbids. That is the documented semantics.
        Ok((
            response.decision(),
            response.diagnostics().reason().cloned().collect(),
        ))
    }

    /// Decides an action on a resource for a session holding elevations for `held`.
    /// Errors are the relying party's input that Cedar cannot represent.
    ///
    /// In order: an allow (relying on the held elevations it cannot do without); a deny
    /// when no policy permits; a deny by every forbid that fired without `@step_up`;
    /// else only step-up forbids stand in the way, and `step_up_or_deny` answers.
    pub fn decide(&self, facts: &Facts<'_>, held: &BTreeSet<String>) -> Result<Outcome, String> {
        let entities = self.entities(facts)?;
        // The policies that determined Cedar's answer: the permits of an allow, else the
        // forbids that fired; none at all when no policy permits and none forbids.
        let (decision, determining) = self.evaluate(facts, &entities, held)?;
        if decision == Decision::Allow {
            let relies_on = self.necessary(facts, &entities, held)?;
            return Ok(Outcome::allow(&determining, relies_on));
        }
        if determining.is_empty() {
            return Ok(self.nothing_permits(facts));
        }
        let hard: Vec<&PolicyId> = determining
            .iter()
            .filter(|id| !self.step_up.contains_key(*id))
            .collect();
        if !hard.is_empty() {
            return Ok(Outcome::deny(
                hard.iter().map(ToString::to_string).collect(),
                hard.iter()
                    .map(|id| format!("forbidden by policy {id}"))
                    .collect(),
            ));
        }
        self.step_up_or_deny(facts, &entities, held, &determining)
    }

    /// The deny when no policy permits the action (and none forbids it).
    fn nothing_permits(&self, facts: &Facts<'_>) -> Outcome {
        Outcome::deny(
            Vec::new(),
            vec![format!(
                "no policy permits {} on {}",
                uid(&self.action_type, facts.action),
                uid(&self.resource_type, facts.resource)
            )],
        )
    }

    /// The answer when every forbid that fired is a step-up forbid: a deny if the
    /// session already holds one of their purposes (another condition of it is unmet),
    /// else a step-up for the first purpose if holding them all would allow, else a deny.
    fn step_up_or_deny(
        &self,
        facts: &Facts<'_>,
        entities: &Entities,
        held: &BTreeSet<String>,
        forbids: &[PolicyId],
    ) -> Result<Outcome, String> {
        let needed = self.purposes_of(forbids);
        if let Some(p) = needed.iter().find(|p| held.contains(*p)) {
            // The forbid fires although the elevation is held: another condition of it
            // is unmet, so no step-up would help.
            return Ok(Outcome::deny(
                ids(forbids),
                vec![format!(
                    "forbidden although the session holds an elevation for {p}"
                )],
            ));
        }
        let mut with: BTreeSet<String> = held.clone();
        with.extend(needed.iter().cloned());
        let (hypothetical, _) = self.evaluate(facts, entities, &with)?;
        if hypothetical == Decision::Allow {
            return Ok(Outcome {
                verdict: Verdict::StepUp,
                purpose: Some(needed[0].clone()),
                policy_ids: ids(forbids),
                relies_on: Vec::new(),
                reasons: forbids
                    .iter()
                    .map(|id| {
                        format!(
                            "policy {id} requires a step-up for {}",
                            self.step_up[id].as_str()
                        )
                    })
                    .collect(),
            });
        }
        Ok(Outcome::deny(
            ids(forbids),
            vec!["a step-up would not be enough: no policy permits the action even then".into()],
        ))
    }

    /// The held purposes an allow cannot do without: none if it allows with no
    /// elevation at all, else a minimal subset of `held` that still allows (each held
    /// purpose is dropped in turn and kept only if the allow falls without it). A
    /// permit that merely *mentions* one elevation therefore relies on that one, not on
    /// every elevation the session happens to hold.
    fn necessary(
        &self,
        facts: &Facts<'_>,
        entities: &Entities,
        held: &BTreeSet<String>,
    ) -> Result<Vec<String>, String> {
        if held.is_empty() || self.evaluate(facts, entities, &BTreeSet::new())?.0 == Decision::Allow
        {
            return Ok(Vec::new());
        }
        let mut kept = held.clone();
        for purpose in held {
            kept.remove(purpose);
            if self.evaluate(facts, entities, &kept)?.0 != Decision::Allow {
                kept.insert(purpose.clone());
            }
        }
        Ok(kept.into_iter().collect())
    }

    /// The step-up purposes the given policies name, in policy order, each once.
    fn purposes_of(&self, ids: &[PolicyId]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut sorted: Vec<&PolicyId> = ids.iter().collect();
        sorted.sort_by_key(|id| id.to_string());
        for id in sorted {
            if let Some(p) = self.step_up.get(id)
                && !out.contains(p)
            {
                out.push(p.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: &str = r#"
        @id("admins-manage")
        permit (principal, action, resource)
        when { principal.roles.contains("admin") };

        @id("readers-read")
        permit (principal, action == Action::"read", resource);

        @id("delete-prod-needs-stepup")
        @step_up("admin:resources:delete")
        forbid (principal, action == Action::"delete", resource)
        when { resource has env && resource.env == "prod" }
        unless { context.elevations.contains("admin:resources:delete") };

        @id("no-high-risk")
        forbid (principal, action, resource)
        when { context.risk_tier == "high" };

        @id("export-needs-stepup-unless-key")
        @step_up("reports:export")
        forbid (principal, action == Action::"export", resource)
        when { context.device_trust != "key" && !context.elevations.contains("reports:export") };
    "#;

    const PURPOSES: &[&str] = &["admin:resources:delete", "reports:export"];

    fn policies() -> Policies {
        Policies::parse(POLICIES, None, PURPOSES).unwrap()
    }

    fn facts<'a>(
        roles: &'a [String],
        action: &'a str,
        attrs: Option<&'a serde_json::Map<String, Value>>,
        tier: &'a str,
    ) -> Facts<'a> {
        Facts {
            user_id: "u1",
            roles,
            action,
            resource: "db-1",
            resource_attributes: attrs,
            risk_tier: tier,
            risk_score: 10,
            device_trust: "fingerprint",
            ip: "192.0.2.1",
        }
    }

    fn prod() -> serde_json::Map<String, Value> {
        serde_json::json!({"env": "prod", "size": 3, "tags": ["a"]})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn allow_step_up_and_deny() {
        let p = policies();
        let admin = vec!["admin".to_owned()];
        let none = BTreeSet::new();
        let attrs = prod();
        let read = p.decide(&facts(&[], "read", None, "low"), &none).unwrap();
        assert_eq!(read.verdict, Verdict::Allow);
        assert_eq!(read.policy_ids, vec!["readers-read"]);
        assert!(read.relies_on.is_empty());

        let delete = p
            .decide(&facts(&admin, "delete", Some(&attrs), "low"), &none)
            .unwrap();
        assert_eq!(delete.verdict, Verdict::StepUp);
        assert_eq!(delete.purpose.as_deref(), Some("admin:resources:delete"));
        assert_eq!(delete.policy_ids, vec!["delete-prod-needs-stepup"]);

        let held = BTreeSet::from(["admin:resources:delete".to_owned()]);
        let elevated = p
            .decide(&facts(&admin, "delete", Some(&attrs), "low"), &held)
            .unwrap();
        assert_eq!(elevated.verdict, Verdict::Allow);
        assert_eq!(elevated.relies_on, vec!["admin:resources:delete"]);

        // A non-admin: the step-up forbid fires, but no permit would allow even then.
        let stranger = p
            .decide(&facts(&[], "delete", Some(&attrs), "low"), &none)
            .unwrap();
        assert_eq!(stranger.verdict, Verdict::Deny);

        // No permit at all.
        let nothing = p.decide(&facts(&[], "write", None, "low"), &none).unwrap();
        assert_eq!(nothing.verdict, Verdict::Deny);
        assert!(nothing.policy_ids.is_empty());
        assert!(nothing.reasons[0].contains("no policy permits"));
    }

    #[test]
    fn a_plain_forbid_is_a_deny_even_next_to_a_step_up() {
        let p = policies();
        let admin = vec!["admin".to_owned()];
        let attrs = prod();
        let out = p
            .decide(
                &facts(&admin, "delete", Some(&attrs), "high"),
                &BTreeSet::new(),
            )
            .unwrap();
        assert_eq!(out.verdict, Verdict::Deny);
        assert_eq!(out.policy_ids, vec!["no-high-risk"]);
        // Holding the elevation does not get past it either.
        let held = BTreeSet::from(["admin:resources:delete".to_owned()]);
        let out = p
            .decide(&facts(&admin, "delete", Some(&attrs), "high"), &held)
            .unwrap();
        assert_eq!(out.verdict, Verdict::Deny);
    }

    #[test]
    fn an_allow_that_does_not_need_the_elevation_does_not_use_it() {
        let p = policies();
        let held = BTreeSet::from(["admin:resources:delete".to_owned()]);
        let out = p.decide(&facts(&[], "read", None, "low"), &held).unwrap();
        assert_eq!(out.verdict, Verdict::Allow);
        assert!(out.relies_on.is_empty());
    }

    #[test]
    fn a_permit_that_asks_for_one_elevation_relies_on_that_one_only() {
        // The issue's attack: a permit (not a step-up forbid) names the elevation, and
        // the session also holds an unrelated one that sorts first.
        let text = r#"
            permit (principal, action == Action::"delete", resource)
            when { context.elevations.contains("admin:resources:delete") };
        "#;
        let p = Policies::parse(text, None, PURPOSES).unwrap();
        let held = BTreeSet::from([
            "admin:resources:delete".to_owned(),
            "reports:export".to_owned(),
        ]);
        let out = p.decide(&facts(&[], "delete", None, "low"), &held).unwrap();
        assert_eq!(out.verdict, Verdict::Allow);
        assert_eq!(out.relies_on, vec!["admin:resources:delete"]);
    }

    #[test]
    fn an_allow_needing_two_elevations_relies_on_both() {
        let text = r#"
            permit (principal, action, resource);
            @step_up("admin:resources:delete")
            forbid (principal, action, resource)
            unless { context.elevations.contains("admin:resources:delete") };
            @step_up("reports:export")
            forbid (principal, action, resource)
            unless { context.elevations.contains("reports:export") };
        "#;
        let p = Policies::parse(text, None, PURPOSES).unwrap();
        let f = facts(&[], "delete", None, "low");
        let both = BTreeSet::from([
            "admin:resources:delete".to_owned(),
            "reports:export".to_owned(),
        ]);
        let out = p.decide(&f, &both).unwrap();
        assert_eq!(out.verdict, Verdict::Allow);
        assert_eq!(
            out.relies_on,
            vec!["admin:resources:delete", "reports:export"]
        );
        // Holding one: a step-up for the other.
        let one = BTreeSet::from(["reports:export".to_owned()]);
        let out = p.decide(&f, &one).unwrap();
        assert_eq!(out.verdict, Verdict::StepUp);
        assert_eq!(out.purpose.as_deref(), Some("admin:resources:delete"));
    }

    #[test]
    fn a_step_up_forbid_with_another_unmet_condition_is_a_deny_when_held() {
        let text = r#"
            permit (principal, action, resource);
            @id("odd") @step_up("reports:export")
            forbid (principal, action, resource) when { context.risk_score > 50 };
        "#;
        let p = Policies::parse(text, None, PURPOSES).unwrap();
        let mut f = facts(&[], "export", None, "medium");
        f.risk_score = 60;
        // Without the elevation: a step-up would not help (the condition is the score),
        // and the hypothetical evaluation shows it.
        let out = p.decide(&f, &BTreeSet::new()).unwrap();
        assert_eq!(out.verdict, Verdict::Deny);
        let held = BTreeSet::from(["reports:export".to_owned()]);
        assert_eq!(p.decide(&f, &held).unwrap().verdict, Verdict::Deny);
    }

    #[test]
    fn bad_policy_files_are_refused_with_a_reason() {
        let err = |text: &str| Policies::parse(text, None, PURPOSES).unwrap_err().0;
        let e =
            err("permit (principal, action, resource);\n\npermit (principal, actoin, resource);");
        assert!(e.contains("do not parse"), "{e}");
        assert!(e.contains("line 3, column 20"), "{e}");
        assert!(
            err(r#"@step_up("nope") forbid (principal, action, resource);"#)
                .contains("names no configured purpose")
        );
        assert!(
            err(r#"@step_up("reports:export") permit (principal, action, resource);"#)
                .contains("only makes sense on a forbid")
        );
        assert!(
            err(r#"@id("a") permit (principal, action, resource); @id("a") permit (principal, action, resource);"#)
                .contains("two policies")
        );
    }

    #[test]
    fn a_schema_validates_strictly() {
        let schema = r#"
            entity User { roles: Set<String> };
            entity Resource { env?: String };
            action "read", "delete" appliesTo {
                principal: [User], resource: [Resource],
                context: { risk_tier: String, risk_score: Long, device_trust: String,
                           ip: String, elevations: Set<String> }
            };
        "#;
        let good = r#"
            permit (principal, action == Action::"read", resource);
            @step_up("admin:resources:delete")
            forbid (principal, action == Action::"delete", resource)
            unless { context.elevations.contains("admin:resources:delete") };
        "#;
        let p = Policies::parse(good, Some(schema), PURPOSES).unwrap();
        assert!(p.has_schema());
        let out = p
            .decide(&facts(&[], "read", None, "low"), &BTreeSet::new())
            .unwrap();
        assert_eq!(out.verdict, Verdict::Allow);
        let typo =
            r#"permit (principal, action, resource) when { principal.rolez.contains("x") };"#;
        let e = Policies::parse(typo, Some(schema), PURPOSES).unwrap_err().0;
        assert!(e.contains("do not validate"), "{e}");
    }

    #[test]
    fn resource_attributes_that_cedar_cannot_hold_are_errors() {
        let p = policies();
        let attrs = serde_json::json!({"ratio": 0.5})
            .as_object()
            .unwrap()
            .clone();
        let e = p
            .decide(&facts(&[], "read", Some(&attrs), "low"), &BTreeSet::new())
            .unwrap_err();
        assert!(e.contains("resource_attributes.ratio"), "{e}");
    }
}
