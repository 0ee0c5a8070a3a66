//! What the hosted step-up page shows a person about a challenge: what they authorize
//! (the purpose's title and consequence, the action summary), how far the challenge
//! has got, and the factors they can answer with, in the order they most likely have
//! them. It judges nothing: answering goes through [`answers`](super::answers).

use stepgate_api::ChallengeProgress;
use stepgate_core::ErrorCode;
use stepgate_core::factor::{FactorKind, FactorStatus};
use stepgate_core::purpose::FactorClass;
use stepgate_store::ChallengeRecord;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::login::LOGIN_PURPOSE;
use crate::stepup::challenges::options_of;
use crate::stepup::progress::progress_of;

/// A challenge as the page shows it.
pub struct Prompt {
    pub record: ChallengeRecord,
    /// What is being authorized, in words.
    pub title: String,
    /// What happens once it is.
    pub consequence: Option<String>,
    pub progress: ChallengeProgress,
    pub attempts_left: u32,
    /// The requirement's class.
    pub factor_class: FactorClass,
    /// The user's active factors the requirement allows, each kind once, strongest
    /// first.
    pub offered: Vec<FactorKind>,
    /// When a passkey may answer: the options for `navigator.credentials.get()`.
    pub webauthn_options: Option<serde_json::Value>,
    /// A sign-in's challenge (no session yet).
    pub login: bool,
}

impl Prompt {
    /// A phishing-resistant step-up for a user with no passkey: they must enroll one.
    pub fn needs_passkey(&self) -> bool {
        self.factor_class == FactorClass::PhishingResistant
            && !self.offered.contains(&FactorKind::Webauthn)
    }
}

/// The prompt for challenge `id`.
pub async fn prompt(app: &SharedApp, id: &str) -> Result<Prompt, AppError> {
    let record = app
        .store
        .challenge(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such challenge"))?;
    let challenge = record
        .to_domain()
        .map_err(|e| AppError::internal(format!("corrupt challenge: {e}")))?;
    let progress = progress_of(&record, &challenge, app.now());
    let login = record.login_context.is_some();
    let purpose = app.policy.purpose(&record.purpose);
    let title = match purpose {
        Some(p) => p.title.clone(),
        None if record.purpose == LOGIN_PURPOSE => "Sign in".to_owned(),
        None => record.purpose.clone(),
    };
    let consequence = match purpose {
        Some(p) => p.consequence.clone(),
        None if login => {
            Some("You are signing in from a device or place we did not expect.".into())
        }
        None => None,
    };
    let required = challenge.requirement.factor;
    let factors = app.store.factors_of_user(&record.user_id).await?;
    let offered: Vec<FactorKind> = FactorKind::offered(
        factors
            .iter()
            .filter(|f| f.status == FactorStatus::Active && f.kind.class().satisfies(required))
            .map(|f| f.kind),
    )
    .into_iter()
    // A passkey answers only with the ceremony the challenge was opened with.
    .filter(|k| *k != FactorKind::Webauthn || record.webauthn_options.is_some())
    .collect();
    Ok(Prompt {
        webauthn_options: options_of(&record),
        attempts_left: challenge.attempts_left(),
        factor_class: required,
        title,
        consequence,
        progress,
        offered,
        login,
        record,
    })
}
