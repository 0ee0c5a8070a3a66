//! Admin management of API keys over HTTP (the CLI creates the first one).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stepgate_core::ErrorCode;
use stepgate_core::api_key::ApiKeyScope;
use utoipa::ToSchema;

use crate::api_keys;
use crate::app::SharedApp;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{AdminCaller, ApiJson, ApiPath};
use crate::http::rfc3339;

#[derive(Deserialize, ToSchema)]
pub struct CreateApiKey {
    /// `service` or `admin`.
    pub scope: String,
    pub label: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    pub scope: String,
    pub label: Option<String>,
    /// The key itself: shown this once, stored only as a hash.
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: String,
    pub scope: String,
    pub label: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}

/// Create an API key.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "FORBIDDEN: not an admin key"),
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let scope = ApiKeyScope::parse(&body.scope)?;
    if body.label.as_ref().is_some_and(|l| l.len() > 200) {
        return Err(ApiError::validation("label must be at most 200 bytes"));
    }
    let key = api_keys::generate(scope, body.label, app.now())?;
    app.store.insert_api_key(&key.record).await?;
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
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    responses(
        (status = 200, body = ApiKeyList),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "FORBIDDEN"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
) -> Result<Json<ApiKeyList>, ApiError> {
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

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
    ),
    security(("api_key" = [])))]
pub async fn revoke(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = app.store.revoke_api_key(&id, app.now()).await?;
    app.api_keys.forget(&id);
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            "no live API key with this id",
        ))
    }
}
