//! Admin management of API keys over HTTP (the CLI creates the first one).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_api::Problem;
use stepgate_api::{ApiKeyInfo, ApiKeyList, CreateApiKey, CreatedApiKey};

use crate::api_keys;
use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath};
use crate::http::rfc3339;

/// Create an API key.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "FORBIDDEN: not an admin key"),
    ),
    security(("admin_key" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), AppError> {
    let key = api_keys::create(
        &app.store,
        &body.scope,
        body.label.as_deref(),
        &caller.key_id,
        app.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: key.record.id,
            scope: key.record.scope,
            label: key.record.label,
            key: key.plain,
        }),
    ))
}

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    responses(
        (status = 200, body = ApiKeyList),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "FORBIDDEN"),
    ),
    security(("admin_key" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
) -> Result<Json<ApiKeyList>, AppError> {
    let api_keys = app
        .store
        .api_keys()
        .await?
        .into_iter()
        .map(|k| ApiKeyInfo {
            id: k.id,
            scope: k.scope,
            label: k.label,
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
        })
        .collect();
    Ok(Json(ApiKeyList { api_keys }))
}

/// Revoke an API key. On this node it stops working at once; other nodes may accept it
/// for up to `decisions.session_cache_ms` more (their key cache). The last live admin
/// key cannot be revoked (409), so the API is never left without an administrator.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", operation_id = "revokeApiKey",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: the last live admin key"),
    ),
    security(("admin_key" = [])))]
pub async fn revoke(
    State(app): State<SharedApp>,
    caller: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    api_keys::revoke(&app, &id, &caller.key_id, app.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
