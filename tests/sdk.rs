//! The Rust SDK (`stepgate-client`) against the real binary: one typed call per route
//! with the values stepgate really answers, its errors as `Error::Problem` with the
//! stable codes, and `TokenVerifier` verifying real access tokens, refusing tampered
//! ones and following a key rotation.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{DpopKey, PASSWORD, PURPOSES, Server, eventually, oathtool, unix_now};
use stepgate_client::{
    AuditQuery, Client, CreateApiKey, CreateUser, DecisionContext, DecisionKind, DecisionRequest,
    DeviceInfo, ElevationMode, Error, Login, LoginOutcome, LoginResponse, NewChallenge,
    PurposeChange, Redeem, TokenScheme, TokenVerifier, VerifyChallenge, VerifyError,
};

const POLICIES: &str = r#"
@id("anyone-reads")
permit (principal, action == Action::"read", resource);

@id("admins-write")
permit (principal, action == Action::"write", resource)
when { principal.roles.contains("admin") };
"#;

/// stepgate with the test purposes, `POLICIES`, and a clock the tests may move.
async fn stepgate(files: &Path) -> Server {
    let path = files.join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}\n[testing]\nclock_control = true\n",
        path.display().to_string()
    ))
    .await
}

/// The three callers: anyone (user routes take the token per call), the RP's backend
/// (service key) and an admin.
struct Clients {
    anyone: Client,
    service: Client,
    admin: Client,
}

fn clients(s: &Server) -> Clients {
    Clients {
        anyone: Client::new(&s.base),
        service: Client::new(&s.base).with_api_key(&s.service_key),
        admin: Client::new(&s.base).with_api_key(&s.admin_key),
    }
}

/// TOTP codes the server accepts, each once: every code is for the next time step,
/// with the server's clock moved into the middle of that step.
struct Totp {
    admin: Client,
    secret: String,
    last_step: i64,
}

impl Totp {
    fn new(admin: &Client, secret: &str) -> Self {
        Self {
            admin: admin.clone(),
            secret: secret.to_owned(),
            last_step: unix_now() / 30,
        }
    }

    async fn next(&mut self) -> String {
        let step = self.last_step + 1;
        let moved = self
            .admin
            .set_clock_offset(step * 30 + 15 - unix_now())
            .await
            .unwrap();
        assert_eq!(moved.now / 30, step);
        self.last_step = step;
        oathtool(&self.secret, step)
    }
}

fn user(name: &str, roles: &[&str]) -> CreateUser {
    CreateUser {
        username: name.into(),
        password: PASSWORD.into(),
        email: Some(format!("{name}@example.test")),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn login(name: &str, device: Option<&str>) -> Login {
    Login {
        username: name.into(),
        password: PASSWORD.into(),
        device: device.map(|d| DeviceInfo {
            fingerprint: Some(d.into()),
            user_agent: Some("sdk-test".into()),
        }),
    }
}

async fn session(c: &Client, login: &Login) -> LoginResponse {
    match c.login(login).await.unwrap() {
        LoginOutcome::Session(s) => s,
        other => panic!("expected a session: {other:?}"),
    }
}

/// A user with roles, TOTP enrolled from device `laptop`; their token and TOTP source.
async fn enrolled(c: &Clients, name: &str, roles: &[&str]) -> (String, String, Totp) {
    let id = c.service.create_user(&user(name, roles)).await.unwrap().id;
    let first = session(&c.anyone, &login(name, Some("laptop"))).await;
    let enrollment = c
        .anyone
        .enroll_totp(&first.access_token, None)
        .await
        .unwrap();
    let mut totp = Totp::new(&c.admin, &enrollment.secret);
    let code = totp.next().await;
    c.anyone
        .confirm_totp(&first.access_token, &enrollment.factor_id, &code)
        .await
        .unwrap();
    (id, first.access_token, totp)
}

#[track_caller]
fn assert_problem(e: &Error, status: u16, code: &str) {
    assert!(
        matches!(e, Error::Problem { status: s, code: c, .. } if *s == status && c == code),
        "expected {status} {code}, got {e:?}"
    );
}

#[tokio::test]
async fn users_sessions_factors_and_the_login_step_up() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);
    c.anyone.healthz().await.unwrap();
    c.anyone.readyz().await.unwrap();

    let id = c.service.create_user(&user("emp", &[])).await.unwrap().id;
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_problem(
        &c.service.create_user(&user("emp", &[])).await.unwrap_err(),
        409,
        "CONFLICT",
    );
    let short = CreateUser {
        password: "short".into(),
        ..user("other", &[])
    };
    let e = c.service.create_user(&short).await.unwrap_err();
    assert_problem(&e, 400, "VALIDATION_FAILED");
    assert!(
        e.to_string()
            .starts_with("stepgate answered 400 VALIDATION_FAILED: ")
    );
    assert_problem(
        &c.anyone.create_user(&user("other", &[])).await.unwrap_err(),
        401,
        "UNAUTHENTICATED",
    );

    // No second factor yet: a session that says so.
    let first = session(&c.anyone, &login("emp", Some("laptop"))).await;
    assert!(first.enrollment_required);
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.expires_in, 900);
    let current = c.anyone.current_session(&first.access_token).await.unwrap();
    assert_eq!(current.user_id, id);
    assert_eq!(current.session_id, first.session_id);
    assert_eq!(current.ip, "127.0.0.1");
    assert_eq!(current.user_agent.as_deref(), Some("sdk-test"));
    assert_eq!(current.acr, "urn:stepgate:acr:pwd");
    assert_eq!(current.amr, ["pwd"]);
    assert!(current.enrollment_required);
    assert_eq!(current.risk.as_ref(), Some(&first.risk));

    // TOTP enrollment, confirmed with a code from oathtool; it remembers the device.
    let enrollment = c
        .anyone
        .enroll_totp(&first.access_token, None)
        .await
        .unwrap();
    assert!(
        enrollment.otpauth_uri.starts_with("otpauth://totp/")
            && enrollment
                .otpauth_uri
                .contains(&format!("secret={}", enrollment.secret)),
        "{}",
        enrollment.otpauth_uri
    );
    assert!(enrollment.qr_svg.contains("<svg"));
    let mut totp = Totp::new(&c.admin, &enrollment.secret);
    // A wrong code does not confirm (it is bad input, not a failed step-up).
    assert_problem(
        &c.anyone
            .confirm_totp(&first.access_token, &enrollment.factor_id, "000000")
            .await
            .unwrap_err(),
        400,
        "VALIDATION_FAILED",
    );
    let code = totp.next().await;
    let factor = c
        .anyone
        .confirm_totp(&first.access_token, &enrollment.factor_id, &code)
        .await
        .unwrap();
    assert_eq!(
        (
            factor.factor_id.as_str(),
            factor.kind.as_str(),
            factor.status.as_str()
        ),
        (enrollment.factor_id.as_str(), "totp", "active")
    );
    assert!(factor.confirmed_at.is_some());
    // The first factor comes with recovery codes.
    assert_eq!(factor.recovery_codes.as_ref().map(Vec::len), Some(10));
    let factors = c.anyone.factors(&first.access_token).await.unwrap().factors;
    assert_eq!(factors.len(), 2);
    assert!(factors.iter().any(|f| f.factor_id == enrollment.factor_id));
    let devices = c.anyone.devices(&first.access_token).await.unwrap().devices;
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0].trust, "fingerprint");
    assert!(devices[0].current);

    // Decision 1: the remembered device on a known network, no second factor asked.
    let known = session(&c.anyone, &login("emp", Some("laptop"))).await;
    assert_eq!(known.risk.tier, "low", "{:?}", known.risk);
    assert!(!known.enrollment_required);

    assert_problem(
        &c.anyone
            .login(&Login {
                password: "wrong password".into(),
                ..login("emp", Some("laptop"))
            })
            .await
            .unwrap_err(),
        401,
        "INVALID_CREDENTIALS",
    );

    // Decision 2: a new device is medium risk, a login challenge, then a session.
    let LoginOutcome::StepUpRequired(asked) =
        c.anyone.login(&login("emp", Some("phone"))).await.unwrap()
    else {
        panic!("a new device must step up");
    };
    assert_eq!(asked.risk.tier, "medium");
    assert!(
        asked.risk.reasons.iter().any(|r| r.signal == "device"
            && r.observed == "new device for this user"
            && r.weight == 30),
        "{:?}",
        asked.risk
    );
    assert_eq!(asked.purpose, "login");
    assert_eq!(asked.allowed_factors, ["totp", "recovery_code"]);
    assert!(!asked.detail.is_empty());
    let wrong = c
        .anyone
        .verify_login_challenge(&asked.challenge_id, &VerifyChallenge::new("totp", "000000"))
        .await
        .unwrap_err();
    assert_problem(&wrong, 401, "STEPUP_FAILED");
    assert_eq!(wrong.problem_field("attempts_left"), Some(&4.into()));
    let code = totp.next().await;
    let phone = c
        .anyone
        .verify_login_challenge(&asked.challenge_id, &VerifyChallenge::new("totp", code))
        .await
        .unwrap();
    let current = c.anyone.current_session(&phone.access_token).await.unwrap();
    assert_eq!(current.acr, "urn:stepgate:acr:mfa");
    assert_eq!(current.amr, ["pwd", "otp"]);
    // The device is remembered now: the next login from it is decision 1.
    let again = session(&c.anyone, &login("emp", Some("phone"))).await;
    assert_eq!(again.risk.tier, "low", "{:?}", again.risk);
    let devices = c.anyone.devices(&again.access_token).await.unwrap().devices;
    assert_eq!(devices.len(), 2);
    let other = devices.iter().find(|d| !d.current).unwrap();
    c.anyone
        .forget_device(&again.access_token, &other.device_id)
        .await
        .unwrap();
    assert_eq!(
        c.anyone
            .devices(&again.access_token)
            .await
            .unwrap()
            .devices
            .len(),
        1
    );

    // Logout ends the session: its token stops working at once.
    c.anyone.logout(&again.access_token).await.unwrap();
    let e = c
        .anyone
        .current_session(&again.access_token)
        .await
        .unwrap_err();
    assert_problem(&e, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn step_up_in_both_modes_redeem_decide_and_revoke() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);
    let (id, token, mut totp) = enrolled(&c, "ada", &["admin"]).await;
    let sid = c.anyone.current_session(&token).await.unwrap().session_id;

    // Token mode (the default): an opaque elevation token the RP redeems.
    let challenge = c
        .anyone
        .create_challenge(
            &token,
            &NewChallenge {
                purpose: "admin:resources:delete".into(),
                ..NewChallenge::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(challenge.purpose, "admin:resources:delete");
    assert_eq!(challenge.title, "Delete a production resource");
    assert_eq!(challenge.allowed_factors, ["totp", "recovery_code"]);
    assert_eq!(challenge.factor, "any");
    assert_eq!(challenge.mode, ElevationMode::Token);
    assert_eq!(challenge.attempts_left, 5);
    assert_eq!(challenge.policy_version, 1);
    let code = totp.next().await;
    let verified = c
        .anyone
        .verify_challenge(
            &token,
            &challenge.challenge_id,
            &VerifyChallenge::new("totp", code),
        )
        .await
        .unwrap();
    assert_eq!(verified.mode, ElevationMode::Token);
    assert!(verified.single_use);
    assert!(verified.access_token.is_none());
    let elevation_token = verified.elevation_token.clone().unwrap();
    // The challenge is spent.
    assert_problem(
        &c.anyone
            .verify_challenge(
                &token,
                &challenge.challenge_id,
                &VerifyChallenge::new("totp", "000000"),
            )
            .await
            .unwrap_err(),
        410,
        "CHALLENGE_EXPIRED",
    );

    let live = c.anyone.elevations(&token).await.unwrap().elevations;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].elevation_id, verified.elevation_id);
    assert_eq!(live[0].purpose, "admin:resources:delete");
    assert_eq!(live[0].session_id, sid);
    assert_eq!(live[0].mode, ElevationMode::Token);
    assert_eq!(live[0].uses_left, Some(1));
    assert_eq!(live[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(live[0].current_session);

    let redeem = |ip: &str| Redeem {
        elevation_token: elevation_token.clone(),
        purpose: "admin:resources:delete".into(),
        ip: Some(ip.into()),
        ..Redeem::default()
    };
    // IP-bound: only the IP that stepped up (and a failed check uses nothing up).
    assert_problem(
        &c.service.redeem(&redeem("10.9.9.9")).await.unwrap_err(),
        403,
        "STEPUP_IP_MISMATCH",
    );
    let redeemed = c.service.redeem(&redeem("127.0.0.1")).await.unwrap();
    assert_eq!(redeemed.elevation_id, verified.elevation_id);
    assert_eq!(redeemed.user_id, id);
    assert_eq!(redeemed.session_id, sid);
    assert_eq!(redeemed.factor, "totp");
    assert_eq!(redeemed.factor_class, "any");
    assert!(redeemed.single_use);
    // Single use.
    assert_problem(
        &c.service.redeem(&redeem("127.0.0.1")).await.unwrap_err(),
        403,
        "STEPUP_TOKEN_REUSED",
    );
    let reused = c
        .admin
        .audit(&AuditQuery {
            kind: Some("ACCOUNT_STEPUP_REUSED".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .events;
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0].user_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        reused[0].elevation_id.as_deref(),
        Some(verified.elevation_id.as_str())
    );
    assert!(
        c.anyone
            .elevations(&token)
            .await
            .unwrap()
            .elevations
            .is_empty()
    );
    assert_problem(
        &c.service
            .redeem(&Redeem {
                elevation_token: "sge_not-a-token".into(),
                ..redeem("127.0.0.1")
            })
            .await
            .unwrap_err(),
        403,
        "STEPUP_TOKEN_INVALID",
    );

    // A multi-use elevation, relied on in a decision, then revoked early by its user.
    let challenge = c
        .anyone
        .create_challenge(
            &token,
            &NewChallenge {
                purpose: "reports:export".into(),
                mode: Some(ElevationMode::Token),
                ..NewChallenge::default()
            },
        )
        .await
        .unwrap();
    let code = totp.next().await;
    let export = c
        .anyone
        .verify_challenge(
            &token,
            &challenge.challenge_id,
            &VerifyChallenge::new("totp", code),
        )
        .await
        .unwrap();
    assert!(!export.single_use);
    let export_token = export.elevation_token.unwrap();
    let ask = DecisionRequest::purpose(&token, "reports:export")
        .context(DecisionContext {
            ip: Some("127.0.0.1".into()),
            ..DecisionContext::default()
        })
        .elevation_token(&export_token);
    for _ in 0..2 {
        let d = c.service.decide(&ask).await.unwrap();
        assert_eq!(d.decision, DecisionKind::Allow, "{d:?}");
        assert_eq!(
            d.elevation_id.as_deref(),
            Some(export.elevation_id.as_str())
        );
        assert_eq!(
            (d.user_id.as_str(), d.session_id.as_str()),
            (id.as_str(), sid.as_str())
        );
    }
    let live = c.anyone.elevations(&token).await.unwrap().elevations;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].uses_left, None);
    c.anyone
        .revoke_elevation(&token, &export.elevation_id)
        .await
        .unwrap();
    assert_problem(
        &c.service.decide(&ask).await.unwrap_err(),
        403,
        "STEPUP_TOKEN_INVALID",
    );
    assert_eq!(
        c.admin
            .audit(&AuditQuery {
                kind: Some("ACCOUNT_STEPUP_REVOKED".into()),
                user: Some(id.clone()),
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .events
            .len(),
        1
    );

    // Session mode (the Authress flow): the decision asks for a step-up with a ready
    // challenge; passing it yields a fresh token for this session, good once.
    let delete = |t: &str| {
        DecisionRequest::action(t, "write", "db-7").context(DecisionContext {
            ip: Some("127.0.0.1".into()),
            ..DecisionContext::default()
        })
    };
    let allowed = c.service.decide(&delete(&token)).await.unwrap();
    assert_eq!(allowed.decision, DecisionKind::Allow);
    assert_eq!(allowed.policy_ids, ["admins-write"]);
    let by_purpose = |t: &str| {
        DecisionRequest::purpose(t, "admin:resources:delete").context(DecisionContext {
            ip: Some("127.0.0.1".into()),
            ..DecisionContext::default()
        })
    };
    let asked = c.service.decide(&by_purpose(&token)).await.unwrap();
    assert_eq!(asked.decision, DecisionKind::StepUp, "{asked:?}");
    assert_eq!(asked.purpose.as_deref(), Some("admin:resources:delete"));
    assert_eq!(asked.title.as_deref(), Some("Delete a production resource"));
    assert_eq!(asked.acr_values.as_deref(), Some("urn:stepgate:acr:mfa"));
    assert_eq!(asked.max_age, Some(300));
    assert_eq!(
        asked.allowed_factors.unwrap_or_default(),
        ["totp", "recovery_code"]
    );
    assert_eq!(asked.token_scheme, TokenScheme::Bearer);
    assert_eq!(asked.policy_version, 1);
    let code = totp.next().await;
    let passed = c
        .anyone
        .verify_challenge(
            &token,
            asked.challenge_id.as_deref().unwrap(),
            &VerifyChallenge::new("totp", code),
        )
        .await
        .unwrap();
    assert_eq!(passed.mode, ElevationMode::Session);
    assert!(passed.elevation_token.is_none());
    let elevated = passed.access_token.unwrap();
    let verifier = TokenVerifier::discover(&c.anyone).await.unwrap();
    let claims = verifier.verify(&elevated).await.unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        (id.as_str(), sid.as_str())
    );
    assert_eq!(claims.su, Some(true));
    assert_eq!(claims.su_purpose.as_deref(), Some("admin:resources:delete"));
    assert!(claims.su_time.is_some());
    assert_eq!(claims.acr, "urn:stepgate:acr:mfa");
    assert_eq!(claims.amr, ["pwd", "otp"]);
    let allowed = c.service.decide(&by_purpose(&elevated)).await.unwrap();
    assert_eq!(allowed.decision, DecisionKind::Allow, "{allowed:?}");
    assert_eq!(
        allowed.elevation_id.as_deref(),
        Some(passed.elevation_id.as_str())
    );
    let again = c.service.decide(&by_purpose(&elevated)).await.unwrap();
    assert_eq!(
        again.decision,
        DecisionKind::StepUp,
        "single use: {again:?}"
    );

    // The RP's backend can revoke an elevation too.
    let code = totp.next().await;
    let passed = c
        .anyone
        .verify_challenge(
            &token,
            again.challenge_id.as_deref().unwrap(),
            &VerifyChallenge::new("totp", code),
        )
        .await
        .unwrap();
    c.service
        .revoke_elevation_as_service(&passed.elevation_id)
        .await
        .unwrap();
    let revoked = c.service.decide(&by_purpose(&elevated)).await.unwrap();
    assert_eq!(revoked.decision, DecisionKind::StepUp, "{revoked:?}");
    assert_problem(
        &c.service
            .revoke_elevation_as_service("no-such-elevation")
            .await
            .unwrap_err(),
        404,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn decisions_policy_audit_api_keys_and_forward_auth() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);
    c.service.create_user(&user("rita", &[])).await.unwrap();
    let rita = session(&c.anyone, &login("rita", None)).await.access_token;

    let read = c
        .service
        .decide(&DecisionRequest::action(&rita, "read", "db-7"))
        .await
        .unwrap();
    assert_eq!(read.decision, DecisionKind::Allow);
    assert_eq!(read.policy_ids, ["anyone-reads"]);
    assert_eq!(read.policy_version, 1);
    assert!(read.challenge_id.is_none());
    let write = c
        .service
        .decide(&DecisionRequest::action(&rita, "write", "db-7"))
        .await
        .unwrap();
    assert_eq!(write.decision, DecisionKind::Deny);
    assert!(write.policy_ids.is_empty());
    assert!(!write.reasons.is_empty());

    // Errors: an unknown token, a question with both forms, an unknown purpose, no key.
    let e = c
        .service
        .decide(&DecisionRequest::action("not-a-token", "read", "db-7"))
        .await
        .unwrap_err();
    assert_problem(&e, 401, "UNAUTHENTICATED");
    assert_eq!(e.problem_field("subject"), Some(&"access_token".into()));
    let both = DecisionRequest {
        purpose: Some("reports:export".into()),
        ..DecisionRequest::action(&rita, "read", "db-7")
    };
    assert_problem(
        &c.service.decide(&both).await.unwrap_err(),
        400,
        "VALIDATION_FAILED",
    );
    assert_problem(
        &c.service
            .decide(&DecisionRequest::purpose(&rita, "no:such:purpose"))
            .await
            .unwrap_err(),
        404,
        "NOT_FOUND",
    );
    assert_problem(
        &c.anyone
            .decide(&DecisionRequest::action(&rita, "read", "db-7"))
            .await
            .unwrap_err(),
        401,
        "UNAUTHENTICATED",
    );

    // Policy: read, tighten (a new version), refuse loosening below the minimum.
    let policy = c.admin.policy().await.unwrap();
    assert_eq!(policy.policy_version, 1);
    let delete = policy
        .purposes
        .iter()
        .find(|p| p.name == "admin:resources:delete")
        .unwrap();
    assert_eq!(delete.title, "Delete a production resource");
    assert_eq!(delete.requirement, delete.minimum);
    assert_eq!(
        (
            delete.requirement.factor.as_str(),
            delete.requirement.ttl_seconds,
            delete.requirement.single_use,
            delete.requirement.bind_ip,
            delete.requirement.approvals
        ),
        ("any", 300, true, true, 0)
    );
    let tightened = c
        .admin
        .update_purpose(
            "admin:resources:delete",
            &PurposeChange {
                ttl_seconds: Some(120),
                ..PurposeChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tightened.purpose, "admin:resources:delete");
    assert_eq!(tightened.policy_version, 2);
    assert_eq!(tightened.requirement.ttl_seconds, 120);
    assert_eq!(tightened.requirement.factor, "any");
    assert_problem(
        &c.admin
            .update_purpose(
                "payroll:transmit",
                &PurposeChange {
                    factor: Some("any".into()),
                    ..PurposeChange::default()
                },
            )
            .await
            .unwrap_err(),
        409,
        "POLICY_BELOW_MINIMUM",
    );
    assert_problem(
        &c.service
            .update_purpose("admin:resources:delete", &PurposeChange::default())
            .await
            .unwrap_err(),
        403,
        "FORBIDDEN",
    );
    assert_eq!(c.admin.policy().await.unwrap().policy_version, 2);

    // Audit: filtered, paged, oldest first with no gaps.
    let updated = c
        .admin
        .audit(&AuditQuery {
            kind: Some("POLICY_UPDATED".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .events;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0].kind, "POLICY_UPDATED");
    assert_eq!(
        updated[0].purpose.as_deref(),
        Some("admin:resources:delete")
    );
    assert_eq!(updated[0].policy_version, Some(2));
    let all = c.admin.audit(&AuditQuery::default()).await.unwrap().events;
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>());
    assert!(all.len() >= 2, "{all:?}");
    let page = c
        .admin
        .audit(&AuditQuery {
            after_seq: Some(1),
            limit: Some(1),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .events;
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    assert_problem(
        &c.service.audit(&AuditQuery::default()).await.unwrap_err(),
        403,
        "FORBIDDEN",
    );

    // API keys: a new service key works until it is revoked.
    let created = c
        .admin
        .create_api_key(&CreateApiKey {
            scope: "service".into(),
            label: Some("sdk test".into()),
        })
        .await
        .unwrap();
    assert!(created.key.starts_with("sgk_"), "{}", created.key);
    assert_eq!(created.label.as_deref(), Some("sdk test"));
    let keys = c.admin.api_keys().await.unwrap().api_keys;
    assert!(
        keys.iter()
            .any(|k| k.id == created.id && k.revoked_at.is_none())
    );
    let fresh = Client::new(&s.base).with_api_key(&created.key);
    fresh.create_user(&user("via-new-key", &[])).await.unwrap();
    c.admin.revoke_api_key(&created.id).await.unwrap();
    assert_problem(
        &fresh
            .create_user(&user("after-revoke", &[]))
            .await
            .unwrap_err(),
        401,
        "UNAUTHENTICATED",
    );

    // Forward-auth as a proxy calls it: no routes are configured, so the request is
    // the Cedar action "http:GET" on its path, which no policy permits.
    let forward = |authorization: Option<String>| stepgate_client::ForwardAuthRequest {
        authorization,
        method: "GET".into(),
        url: "http://app.example/reports/1".into(),
        ..Default::default()
    };
    let anonymous = c.anyone.forward_auth(&forward(None)).await.unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.www_authenticate.as_deref(), Some("Bearer"));
    let denied = c
        .anyone
        .forward_auth(&forward(Some(format!("Bearer {rita}"))))
        .await
        .unwrap();
    assert_eq!(denied.status, 403);
    assert_eq!(denied.problem.unwrap()["code"], "FORBIDDEN");
}

#[tokio::test]
async fn the_token_verifier_checks_real_tokens_and_follows_a_key_rotation() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);

    let discovery = c.anyone.openid_configuration().await.unwrap();
    assert!(
        discovery.jwks_uri.ends_with("/.well-known/jwks.json"),
        "{}",
        discovery.jwks_uri
    );
    for acr in ["urn:stepgate:acr:pwd", "urn:stepgate:acr:mfa"] {
        assert!(
            discovery.acr_values_supported.iter().any(|a| a == acr),
            "{:?}",
            discovery.acr_values_supported
        );
    }
    let jwks = c.anyone.jwks().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let first_kid = keys[0]["kid"].as_str().unwrap().to_owned();

    let id = c.service.create_user(&user("vic", &[])).await.unwrap().id;
    let before = session(&c.anyone, &login("vic", None)).await;
    let verifier = TokenVerifier::discover(&c.anyone)
        .await
        .unwrap()
        .with_refetch_interval(Duration::ZERO);
    assert_eq!(verifier.issuer(), discovery.issuer);
    let claims = verifier.verify(&before.access_token).await.unwrap();
    assert_eq!(claims.iss, discovery.issuer);
    assert_eq!(claims.sub, id);
    assert_eq!(claims.sid, before.session_id);
    assert_eq!(claims.acr, "urn:stepgate:acr:pwd");
    assert_eq!(claims.amr, ["pwd"]);
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(claims.auth_time <= claims.iat && claims.su.is_none() && claims.cnf.is_none());

    // Tampering: another subject in the payload, or another signature.
    let parts: Vec<&str> = before.access_token.split('.').collect();
    let forged_payload = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = "someone-else".into();
        b64.encode(payload.to_string())
    };
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(VerifyError::Signature)
    ));
    let mut signature = parts[2].to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    signature.replace_range(0..1, flipped);
    let resigned = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert!(matches!(
        verifier.verify(&resigned).await,
        Err(VerifyError::Signature)
    ));
    assert!(matches!(
        verifier.verify("not a jwt").await,
        Err(VerifyError::Malformed)
    ));

    // Rotation: the server signs with the new key within keys_reload_seconds; the
    // verifier does not know its kid until it refetches the JWKS.
    let (ok, _, stderr) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{stderr}");
    let mut after = None;
    assert!(
        eventually(Duration::from_secs(15), async || {
            let t = session(&c.anyone, &login("vic", None)).await.access_token;
            let kid = jsonwebtoken::decode_header(&t).unwrap().kid.unwrap();
            let rotated = kid != first_kid;
            if rotated {
                after = Some(t);
            }
            rotated
        })
        .await,
        "the server never signed with the rotated key"
    );
    let after = after.unwrap();
    assert!(matches!(
        verifier.verify_cached(&after),
        Err(VerifyError::UnknownKey)
    ));
    let claims = verifier.verify(&after).await.unwrap();
    assert_eq!(claims.sub, id);
    assert!(
        verifier.verify_cached(&after).is_ok(),
        "the refetched keys are cached"
    );
    // Tokens of the previous key stay valid until they expire.
    assert!(verifier.verify_cached(&before.access_token).is_ok());
    assert_eq!(
        c.anyone.jwks().await.unwrap()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Issue 11, defect 8: a DPoP-bound token presented as a plain bearer token (what a thief
/// who copied it without the key would do) is refused by the SDK's local verifier; with
/// a proof of its key for this request it verifies, once per proof.
#[tokio::test]
async fn the_token_verifier_wants_the_proof_of_a_bound_token() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);
    c.service.create_user(&user("dee", &[])).await.unwrap();
    let key = DpopKey::new();
    let r = s
        .send(
            s.http
                .post(s.url("/v1/sessions"))
                .header("dpop", key.proof("http://localhost:8080/v1/sessions"))
                .json(&serde_json::json!({"username": "dee", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let bound = r.body["access_token"].as_str().unwrap().to_owned();
    let plain = session(&c.anyone, &login("dee", None)).await.access_token;
    let verifier = TokenVerifier::discover(&c.anyone).await.unwrap();

    // As a bearer token: refused, with or without the network.
    assert!(matches!(
        verifier.verify(&bound).await,
        Err(VerifyError::ProofRequired)
    ));
    assert!(matches!(
        verifier.verify_cached(&bound),
        Err(VerifyError::ProofRequired)
    ));
    // With its proof for this request: the claims, bound to the key.
    let url = "https://rp.example/orders/7";
    let proof = key.proof_for("DELETE", url, Some(&bound));
    let claims = verifier
        .verify_dpop(&bound, &proof, "DELETE", url)
        .await
        .unwrap();
    assert!(claims.cnf.is_some());
    // The same proof again is a replay.
    assert!(matches!(
        verifier.verify_dpop(&bound, &proof, "DELETE", url).await,
        Err(VerifyError::ProofReplayed)
    ));
    // A proof by another key, for another request, or for another token is refused.
    let thief = DpopKey::new();
    let refused = [
        thief.proof_for("DELETE", url, Some(&bound)),
        key.proof_for("GET", url, Some(&bound)),
        key.proof_for("DELETE", "https://rp.example/orders/8", Some(&bound)),
        key.proof_for("DELETE", url, Some(&plain)),
        key.proof_for("DELETE", url, None),
    ];
    for proof in refused {
        assert!(matches!(
            verifier.verify_dpop(&bound, &proof, "DELETE", url).await,
            Err(VerifyError::Proof(_))
        ));
    }
    // An unbound token is a bearer token: verify, not verify_dpop.
    assert!(verifier.verify(&plain).await.is_ok());
    let proof = key.proof_for("DELETE", url, Some(&plain));
    assert!(matches!(
        verifier.verify_dpop(&plain, &proof, "DELETE", url).await,
        Err(VerifyError::NotBound)
    ));
}

/// Passkeys, email codes and the admin's reset through the SDK.
#[tokio::test]
async fn passkeys_email_codes_and_a_reset_through_the_sdk() {
    use common::smtp::{code_in, mails_in};
    use common::webauthn::SoftPasskey;
    use stepgate_client::NewWebauthnRegistration;
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let c = clients(&s);
    let user = c.service.create_user(&user("pax", &[])).await.unwrap();
    let token = session(&c.anyone, &login("pax", None)).await.access_token;

    let mut key = SoftPasskey::security_key();
    let started = c
        .anyone
        .start_webauthn_registration(&token, &NewWebauthnRegistration::default(), None)
        .await
        .unwrap();
    let factor = c
        .anyone
        .finish_webauthn_registration(
            &token,
            &started.registration_id,
            key.register(&started.options),
        )
        .await
        .unwrap();
    assert_eq!(
        (factor.kind.as_str(), factor.hardware_bound),
        ("webauthn", Some(true))
    );
    assert_eq!(factor.recovery_codes.map(|c| c.len()), Some(10));

    // The passkey steps up for factors:enroll; with that, an email address is added.
    let challenge = c
        .anyone
        .create_challenge(
            &token,
            &NewChallenge {
                purpose: "factors:enroll".into(),
                mode: Some(ElevationMode::Token),
                ..NewChallenge::default()
            },
        )
        .await
        .unwrap();
    let options = challenge.webauthn_options.expect("passkey options");
    let verified = c
        .anyone
        .verify_challenge(
            &token,
            &challenge.challenge_id,
            &VerifyChallenge::webauthn(key.assert(&options)),
        )
        .await
        .unwrap();
    let enrollment = c
        .anyone
        .enroll_email(
            &token,
            "pax@example.test",
            verified.elevation_token.as_deref(),
        )
        .await
        .unwrap();
    let mails = mails_in(&s.dir.path().join("mail"));
    let confirmed = c
        .anyone
        .confirm_email(&token, &enrollment.factor_id, &code_in(&mails[0]))
        .await
        .unwrap();
    assert_eq!(confirmed.status, "active");

    let challenge = c
        .anyone
        .create_challenge(
            &token,
            &NewChallenge {
                purpose: "reports:export".into(),
                ..NewChallenge::default()
            },
        )
        .await
        .unwrap();
    assert!(challenge.links.is_some());
    let sent = c
        .anyone
        .send_challenge_code(Some(&token), &challenge.challenge_id)
        .await
        .unwrap();
    assert_eq!(sent.sent_to, "p***@example.test");
    let mails = mails_in(&s.dir.path().join("mail"));
    let code = code_in(mails.last().unwrap());
    c.anyone
        .verify_challenge(
            &token,
            &challenge.challenge_id,
            &VerifyChallenge::new("email_otp", code),
        )
        .await
        .unwrap();

    let reset = c.admin.reset_factors(&user.id).await.unwrap();
    assert_eq!((reset.factors_removed, reset.sessions_ended), (3, 1));
}
