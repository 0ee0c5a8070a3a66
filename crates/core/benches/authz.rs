//! The cost of one authorization decision in process (Cedar, and Cedar + risk):
//! `cargo bench -p stepgate-core --bench authz`.
//!
//! The policies are `bench/policies.cedar`, the same file `cargo bench --bench decisions`
//! loads into the server, and the facts are the ones that benchmark's request produces.
//! An allow evaluates the policies once; a step-up, or an allow that relies on an
//! elevation, twice (the second evaluation is the hypothetical or the bare one).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use serde_json::{Map, Value, json};
use stepgate_core::authz::{Facts, Policies, Verdict};
use stepgate_core::risk::{DeviceSignal, PreviousLogin, RiskConfig, Signals, assess};

const POLICIES: &str = include_str!("../../../bench/policies.cedar");
const PURPOSES: &[&str] = &[
    "admin:resources:delete",
    "factors:delete",
    "payroll:transmit",
    "reports:export",
];
const NOW: i64 = 1_800_000_000;

/// Median and fastest ns per call of `f` over 7 runs of `iters`, after a warm-up (on a
/// shared machine the fastest run is the one least disturbed).
fn time(iters: u32, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..iters / 10 {
        f();
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    (runs[3], runs[0])
}

fn report(name: &str, iters: u32, (median, fastest): (f64, f64)) {
    println!("{name:<44} {median:>8.0} ns/op median, {fastest:>8.0} fastest (7 x {iters})");
}

fn attrs(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn facts<'a>(
    roles: &'a [String],
    action: &'a str,
    attributes: &'a Map<String, Value>,
    tier: &'a str,
    score: u8,
    device_trust: &'a str,
) -> Facts<'a> {
    Facts {
        user_id: "0196a4f2-7b1c-7c3e-9d2a-5f8e1b6c4a90",
        roles,
        action,
        resource: "doc-42",
        resource_attributes: Some(attributes),
        risk_tier: tier,
        risk_score: score,
        device_trust,
        ip: "127.0.0.1",
    }
}

fn main() {
    let iters = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000u32);

    let parse = time(200, || {
        black_box(Policies::parse(black_box(POLICIES), None, PURPOSES).unwrap());
    });
    report("Policies::parse (8 policies, no schema)", 200, parse);
    let policies = Policies::parse(POLICIES, None, PURPOSES).unwrap();

    let editor = vec!["editor".to_owned(), "viewer".to_owned()];
    let admin = vec!["admin".to_owned()];
    let viewer = vec!["viewer".to_owned()];
    // The HTTP benchmark's resource.
    let doc =
        attrs(json!({"env": "prod", "owner_team": "payments", "frozen": false, "replicas": 3}));
    let frozen = attrs(json!({"env": "prod", "owner_team": "payments", "frozen": true}));
    let none = BTreeSet::new();
    let held = BTreeSet::from(["admin:resources:delete".to_owned()]);

    let cases = [
        (
            "decide: allow (editor writes; 1 evaluation)",
            facts(&editor, "write", &doc, "low", 20, "none"),
            &none,
            Verdict::Allow,
        ),
        (
            "decide: allow relying on an elevation (2)",
            facts(&admin, "delete", &doc, "low", 20, "none"),
            &held,
            Verdict::Allow,
        ),
        (
            "decide: step_up (admin deletes prod; 2)",
            facts(&admin, "delete", &doc, "low", 20, "none"),
            &none,
            Verdict::StepUp,
        ),
        (
            "decide: deny, no permit (viewer writes; 1)",
            facts(&viewer, "write", &doc, "low", 20, "none"),
            &none,
            Verdict::Deny,
        ),
        (
            "decide: deny, hard forbid (frozen; 1)",
            facts(&editor, "write", &frozen, "low", 20, "none"),
            &none,
            Verdict::Deny,
        ),
    ];
    for (name, f, held, expected) in &cases {
        let out = policies.decide(f, held).unwrap();
        assert_eq!(out.verdict, *expected, "{name}: {out:?}");
        let ns = time(iters, || {
            black_box(policies.decide(black_box(f), black_box(held)).unwrap());
        });
        report(name, iters, ns);
    }

    // What the server does per decision on a cached session view: assess the risk from
    // the view's signals, then decide with the assessment in the context.
    let signals = Signals {
        device: DeviceSignal::Absent,
        ip_seen_before: Some(true),
        countries_seen: Vec::new(),
        previous_login: Some(PreviousLogin {
            at: NOW - 60,
            geo: None,
        }),
        session_age: Some(60),
        ..Signals::default()
    };
    let config = RiskConfig::default();
    let together = |signals: &Signals| {
        let a = assess(signals, &config, NOW);
        let f = facts(
            &editor,
            "write",
            &doc,
            a.tier.as_str(),
            a.score,
            a.device_trust.as_str(),
        );
        policies.decide(&f, &none).unwrap().verdict
    };
    assert_eq!(together(&signals), Verdict::Allow);
    let ns = time(iters, || {
        black_box(together(black_box(&signals)));
    });
    report("risk::assess + decide (allow, as served)", iters, ns);
    let ns = time(iters * 10, || {
        black_box(assess(black_box(&signals), &config, NOW));
    });
    report("risk::assess alone", iters * 10, ns);

    breakdown(iters, &editor, &doc);
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(ty).expect("a type name"),
        EntityId::new(id),
    )
}

fn cedar_value(value: &Value) -> RestrictedExpression {
    match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64().expect("an integer")),
        _ => unreachable!("the benchmark's attributes are scalars"),
    }
}

/// Where an allow's time goes: the steps `Policies::decide` takes for one evaluation,
/// timed one by one with the Cedar API (a copy of what `authz.rs` does, to show what
/// precomputing or caching each step would save).
fn breakdown(iters: u32, roles: &[String], attributes: &Map<String, Value>) {
    println!("where one evaluation's time goes (the allow above):");
    let set = PolicySet::from_str(POLICIES).expect("policies");
    let user = || {
        Entity::new(
            uid("User", "0196a4f2-7b1c-7c3e-9d2a-5f8e1b6c4a90"),
            HashMap::from([(
                "roles".to_owned(),
                RestrictedExpression::new_set(
                    roles
                        .iter()
                        .map(|r| RestrictedExpression::new_string(r.clone())),
                ),
            )]),
            HashSet::new(),
        )
        .expect("user")
    };
    let resource = || {
        Entity::new(
            uid("Resource", "doc-42"),
            attributes
                .iter()
                .map(|(k, v)| (k.clone(), cedar_value(v)))
                .collect(),
            HashSet::new(),
        )
        .expect("resource")
    };
    let entities = || Entities::from_entities([user(), resource()], None).expect("entities");
    let context = || {
        Context::from_pairs([
            (
                "risk_tier".to_owned(),
                RestrictedExpression::new_string("low".into()),
            ),
            ("risk_score".to_owned(), RestrictedExpression::new_long(20)),
            (
                "device_trust".to_owned(),
                RestrictedExpression::new_string("none".into()),
            ),
            (
                "ip".to_owned(),
                RestrictedExpression::new_string("127.0.0.1".into()),
            ),
            ("elevations".to_owned(), RestrictedExpression::new_set([])),
        ])
        .expect("context")
    };
    let request = |context: Context| {
        Request::new(
            uid("User", "0196a4f2-7b1c-7c3e-9d2a-5f8e1b6c4a90"),
            uid("Action", "write"),
            uid("Resource", "doc-42"),
            context,
            None,
        )
        .expect("request")
    };
    let authorizer = Authorizer::new();
    let (e, c) = (entities(), context());
    let r = request(c.clone());

    let step =
        |name: &str, f: &mut dyn FnMut()| report(&format!("  {name}"), iters, time(iters, f));
    step("user + resource Entity::new", &mut || {
        black_box((user(), resource()));
    });
    step("  + Entities::from_entities", &mut || {
        black_box(entities());
    });
    step("Context::from_pairs (5 pairs)", &mut || {
        black_box(context());
    });
    step("Context clone (a prepared one)", &mut || {
        black_box(c.clone());
    });
    step("Request::new", &mut || {
        black_box(request(c.clone()));
    });
    step("is_authorized, all 8 policies", &mut || {
        black_box(authorizer.is_authorized(&r, &set, &e));
    });
    // Only the policies whose action scope can match `write` (no action hierarchy here).
    let write = uid("Action", "write");
    let sliced = PolicySet::from_policies(
        set.policies()
            .filter(|p| match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => a == write,
                ActionConstraint::In(v) => v.contains(&write),
            })
            .cloned(),
    )
    .expect("a subset");
    let n = sliced.policies().count();
    assert_eq!(
        authorizer.is_authorized(&r, &sliced, &e).decision(),
        authorizer.is_authorized(&r, &set, &e).decision()
    );
    step(&format!("is_authorized, the {n} for `write`"), &mut || {
        black_box(authorizer.is_authorized(&r, &sliced, &e));
    });
}
