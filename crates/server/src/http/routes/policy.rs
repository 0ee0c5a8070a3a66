//! Admins read the step-up policy and tighten purposes.

use axum::Json;
use axum::extract::State;
use stepgate_api::Problem;
use stepgate_api::{Policy, PurposeChange, PurposePolicy, PurposeUpdated};
use stepgate_core::purpose::Requirement;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath};
use crate::policy::PurposeEdit;

/// The policy in force: every purpose with its minimum and current requirement.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", operation_id = "getPolicy",
    responses((status = 200, body = Policy)),
    security(("admin_key" = [])))]
pub async fn show(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
) -> Result<Json<Policy>, AppError> {
    let (version, in_force) = crate::policy::in_force(&app).await?;
    let purposes = in_force
        .into_iter()
        .map(|p| PurposePolicy {
            name: p.purpose.name.as_str().to_owned(),
            title: p.purpose.title.clone(),
            minimum: shown(p.purpose.minimum),
            requirement: shown(p.requirement),
        })
        .collect();
    Ok(Json(Policy {
        policy_version: version,
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
    let edit = PurposeEdit {
        factor: body.factor.as_deref(),
        ttl_seconds: body.ttl_seconds,
        single_use: body.single_use,
        bind_ip: body.bind_ip,
        approvals: body.approvals,
    };
    let (version, requirement) = crate::policy::change_purpose(&app, &name, edit).await?;
    Ok(Json(PurposeUpdated {
        purpose: name,
        requirement: shown(requirement),
        policy_version: version,
    }))
}

/// A requirement as answers show it.
fn shown(r: Requirement) -> stepgate_api::Requirement {
    stepgate_api::Requirement {
        factor: r.factor.as_str().to_owned(),
        ttl_seconds: r.ttl_seconds,
        single_use: r.single_use,
        bind_ip: r.bind_ip,
        approvals: r.approvals,
    }
}
