//! Admins read the step-up policy and tighten purposes.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use stepgate_core::ErrorCode;
use stepgate_core::purpose::{FactorClass, RequirementChange};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, json_integer};
use crate::policy::RequirementDoc;

#[derive(Serialize, ToSchema)]
pub struct PurposeView {
    pub name: String,
    pub title: String,
    /// The platform minimum from the config.
    pub minimum: RequirementDoc,
    /// The requirement in force.
    pub requirement: RequirementDoc,
}

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    pub policy_version: i64,
    pub purposes: Vec<PurposeView>,
}

/// Any of a purpose's fields; omitted ones keep their values.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeChange {
    #[schema(value_type = Option<crate::http::openapi::schemas::FactorClassName>)]
    pub factor: Option<String>,
    /// How long an elevation lasts, 1 to 86400 seconds.
    #[serde(default, deserialize_with = "json_integer")]
    #[schema(minimum = 1, maximum = 86400)]
    pub ttl_seconds: Option<i64>,
    pub single_use: Option<bool>,
    pub bind_ip: Option<bool>,
    /// Must be 0: multi-party approval does not exist yet, and a purpose asking for it
    /// could never be met.
    #[serde(default, deserialize_with = "json_integer")]
    #[schema(minimum = 0, maximum = 0)]
    pub approvals: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct PurposeUpdated {
    pub purpose: String,
    pub requirement: RequirementDoc,
    pub policy_version: i64,
}

/// The policy in force: every purpose with its minimum and current requirement.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", operation_id = "getPolicy",
    responses((status = 200, body = PolicyView)),
    security(("admin_key" = [])))]
pub async fn show(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
) -> Result<Json<PolicyView>, AppError> {
    let snapshot = app.policy.current(&app.store).await?;
    let purposes = app
        .policy
        .purposes()
        .map(|p| PurposeView {
            name: p.name.as_str().to_owned(),
            title: p.title.clone(),
            minimum: p.minimum.into(),
            requirement: app.policy.requirement(&snapshot, p).into(),
        })
        .collect();
    Ok(Json(PolicyView {
        policy_version: snapshot.version,
        purposes,
    }))
}

/// Change a purpose's requirement: a new policy version. Loosening below the platform
/// minimum is refused with `POLICY_BELOW_MINIMUM`.
#[utoipa::path(put, path = "/v1/policy/purposes/{purpose}", tag = "policy", operation_id = "updatePurpose",
    params(("purpose" = String, Path, description = "The purpose name")),
    request_body = PurposeChange,
    responses(
        (status = 200, body = PurposeUpdated),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "POLICY_BELOW_MINIMUM"),
    ),
    security(("admin_key" = [])))]
pub async fn update(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PurposeChange>,
) -> Result<Json<PurposeUpdated>, AppError> {
    let purpose = app
        .policy
        .purpose(&name)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no purpose named {name:?}")))?;
    let change = RequirementChange {
        factor: body.factor.as_deref().map(FactorClass::parse).transpose()?,
        ttl_seconds: body.ttl_seconds,
        single_use: body.single_use,
        bind_ip: body.bind_ip,
        approvals: body.approvals,
    };
    let (version, requirement) = app
        .policy
        .update(&app.store, purpose, change, app.now())
        .await?;
    app.decider.forget_policy();
    Ok(Json(PurposeUpdated {
        purpose: name,
        requirement: requirement.into(),
        policy_version: version,
    }))
}
