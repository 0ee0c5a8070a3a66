//! What a decision record keeps of the request: the facts, as one JSON object.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;
use stepgate_core::authz::Outcome;
use stepgate_core::risk::RiskAssessment;

use super::{Ask, Question};

/// What a decision record keeps of the request, serialized straight from borrowed
/// values: the decision path builds one per request, so no `serde_json::Value` tree.
#[derive(Serialize)]
struct RecordedFacts<'a> {
    action: Option<&'a str>,
    resource: Option<&'a str>,
    resource_attributes: Option<&'a serde_json::Map<String, serde_json::Value>>,
    purpose: Option<&'a str>,
    roles: &'a [String],
    risk_tier: &'static str,
    risk_score: u8,
    device_trust: &'static str,
    ip: Option<IpAddr>,
    elevations: &'a BTreeSet<String>,
    policy_ids: &'a [String],
}

pub(super) fn facts_json(
    ask: &Ask,
    roles: &[String],
    assessment: &RiskAssessment,
    held: &BTreeSet<String>,
    outcome: &Outcome,
) -> String {
    let (action, resource, resource_attributes, purpose) = match &ask.question {
        Question::Purpose(p) => (None, None, None, Some(p.as_str())),
        Question::Action {
            action,
            resource,
            attributes,
        } => (
            Some(action.as_str()),
            Some(resource.as_str()),
            attributes.as_ref(),
            None,
        ),
    };
    serde_json::to_string(&RecordedFacts {
        action,
        resource,
        resource_attributes,
        purpose,
        roles,
        risk_tier: assessment.tier.as_str(),
        risk_score: assessment.score,
        device_trust: assessment.device_trust.as_str(),
        ip: ask.ip,
        elevations: held,
        policy_ids: &outcome.policy_ids,
    })
    .expect("decision facts serialize")
}

#[cfg(test)]
mod tests {
    use stepgate_core::authz::Verdict;
    use stepgate_core::risk::{DeviceTrust, Tier};

    use super::*;
    use stepgate_core::stepup::ElevationMode;

    #[test]
    fn recorded_facts_are_the_json_object_they_always_were() {
        let attributes = serde_json::json!({"env": "prod", "replicas": 3, "tags": ["a"]});
        let ask = Ask {
            question: Question::Action {
                action: "delete".into(),
                resource: "db-7".into(),
                attributes: attributes.as_object().cloned(),
            },
            ip: Some("2001:db8::1".parse().unwrap()),
            device_fingerprint: None,
            elevation_token: None,
            action_digest: None,
            challenge_mode: ElevationMode::Session,
            action_summary: None,
            elevation_for_question: false,
        };
        let roles = vec!["admin".to_owned()];
        let assessment = RiskAssessment {
            score: 20,
            tier: Tier::Low,
            reasons: Vec::new(),
            device_trust: DeviceTrust::None,
        };
        let held = BTreeSet::from(["reports:export".to_owned()]);
        let outcome = Outcome {
            verdict: Verdict::StepUp,
            purpose: Some("admin:resources:delete".into()),
            policy_ids: vec!["delete-prod-needs-stepup".into()],
            relies_on: Vec::new(),
            reasons: Vec::new(),
        };
        let expected = serde_json::json!({
            "action": "delete",
            "resource": "db-7",
            "resource_attributes": attributes,
            "purpose": null,
            "roles": roles,
            "risk_tier": "low",
            "risk_score": 20,
            "device_trust": "none",
            "ip": "2001:db8::1",
            "elevations": held,
            "policy_ids": outcome.policy_ids,
        })
        .to_string();
        assert_eq!(
            facts_json(&ask, &roles, &assessment, &held, &outcome),
            expected
        );
        let by_purpose = Ask {
            question: Question::Purpose("reports:export".into()),
            ip: None,
            ..ask
        };
        let text = facts_json(&by_purpose, &[], &assessment, &BTreeSet::new(), &outcome);
        assert!(
            text.starts_with(r#"{"action":null,"resource":null,"resource_attributes":null,"purpose":"reports:export","roles":[],"#),
            "{text}"
        );
    }
}
