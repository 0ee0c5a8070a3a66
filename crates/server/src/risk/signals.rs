//! The engine's signals, gathered one way for an action on a session and one way for a
//! password login. Both start from what the request shows (its network, its place) and
//! add what the store remembers of the user.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use stepgate_core::risk::{DeviceSignal, DeviceTrust, Geo, PreviousLogin, Signals, utc_hour};
use stepgate_store::{LoginRecord, SessionRecord};

use crate::app::App;
use crate::error::AppError;

/// How many past logins the login's history signals look at.
const HISTORY: i64 = 50;

/// What the store remembers of a session's user that an action's risk reads: read
/// with the session's view on the decision path (and cached with it), or fresh when a
/// challenge opens.
#[derive(Debug, Clone)]
pub struct UserHistory {
    /// The session's device as remembered (or absent, or new).
    pub device: DeviceSignal,
    pub previous_login: Option<PreviousLogin>,
    /// Countries the user signed in from.
    pub countries: Vec<String>,
    /// IPs the user signed in from, most recent first (at most 1000).
    pub ips: Vec<String>,
}

impl UserHistory {
    pub async fn load(app: &App, session: &SessionRecord) -> Result<Self, AppError> {
        let store = &app.store;
        let user_id = &session.user_id;
        Ok(Self {
            device: device_signal(app, user_id, session.device_hash.as_deref()).await?,
            previous_login: store
                .recent_logins(user_id, 1)
                .await?
                .first()
                .map(previous_login),
            countries: store.countries_of_user(user_id).await?,
            ips: store.ips_of_user(user_id).await?,
        })
    }
}

/// What an action's request shows beyond its session.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActionRequest<'a> {
    /// The end user's IP, with its text form (rendered once by the caller).
    pub ip: Option<(IpAddr, &'a str)>,
    /// A device fingerprint the client computed.
    pub device_fingerprint: Option<&'a str>,
}

/// The signals of an action on a session: its device (another device than the one
/// that signed in, if the request's fingerprint says so), network, place, age, and the
/// purpose's own sensitivity.
pub fn action_signals(
    app: &App,
    session: &SessionRecord,
    history: &UserHistory,
    request: ActionRequest<'_>,
    sensitivity: Option<(String, u8)>,
    now: i64,
) -> Signals {
    let device = match (request.device_fingerprint, &session.device_hash) {
        // Another device than the one that logged in is using this session's token.
        (Some(f), Some(hash)) if hex::encode(Sha256::digest(f.as_bytes())) != *hash => {
            DeviceSignal::New
        }
        (Some(_), None) => DeviceSignal::New,
        _ => history.device,
    };
    let (ip_seen_before, listed, geo) = match request.ip {
        Some((ip, text)) => (
            Some(history.ips.iter().any(|seen| seen == text)),
            app.risk_sources.listed(ip),
            app.risk_sources.locate(ip),
        ),
        None => (None, Vec::new(), None),
    };
    Signals {
        device,
        ip_seen_before,
        listed,
        geo,
        countries_seen: history.countries.clone(),
        previous_login: history.previous_login.clone(),
        login_hours: Vec::new(),
        recent_failures: 0,
        session_age: Some(now - session.created_at),
        purpose_sensitivity: sensitivity,
    }
}

/// The user a login's password checked for, and the device it names.
#[derive(Debug, Clone, Copy)]
pub struct LoginUser<'a> {
    pub id: &'a str,
    pub device_hash: Option<&'a str>,
}

/// The signals of a password login from `ip`: what the request shows by itself (its
/// network, its place, the account name's recent failures) and, once the password
/// checked, what the store remembers of the user (device, IPs, countries, last logins
/// and their hours of day). A wrong password is assessed without `user`: the same work
/// whether or not the user exists.
pub async fn login_signals(
    app: &App,
    ip: IpAddr,
    recent_failures: usize,
    user: Option<LoginUser<'_>>,
) -> Result<Signals, AppError> {
    let request = Signals {
        device: DeviceSignal::Absent,
        listed: app.risk_sources.listed(ip),
        geo: app.risk_sources.locate(ip),
        recent_failures: u32::try_from(recent_failures).unwrap_or(u32::MAX),
        ..Signals::default()
    };
    let Some(user) = user else {
        return Ok(request);
    };
    let store = &app.store;
    let history = store.recent_logins(user.id, HISTORY).await?;
    Ok(Signals {
        device: device_signal(app, user.id, user.device_hash).await?,
        ip_seen_before: Some(store.ip_seen_for_user(user.id, &ip.to_string()).await?),
        countries_seen: store.countries_of_user(user.id).await?,
        previous_login: history.first().map(previous_login),
        login_hours: history.iter().map(|l| utc_hour(l.at)).collect(),
        ..request
    })
}

/// What the store remembers about a device for this user.
async fn device_signal(
    app: &App,
    user_id: &str,
    device_hash: Option<&str>,
) -> Result<DeviceSignal, AppError> {
    let Some(hash) = device_hash else {
        return Ok(DeviceSignal::Absent);
    };
    Ok(match app.store.device(user_id, hash).await? {
        Some(d) if d.trust == DeviceTrust::Key => DeviceSignal::Known(DeviceTrust::Key),
        Some(_) => DeviceSignal::Known(DeviceTrust::Fingerprint),
        None => DeviceSignal::New,
    })
}

/// A stored login as the engine's previous login (with its place, if it had one).
fn previous_login(l: &LoginRecord) -> PreviousLogin {
    PreviousLogin {
        at: l.at,
        geo: match (&l.country, l.latitude, l.longitude) {
            (Some(country), Some(latitude), Some(longitude)) => Some(Geo {
                country: country.clone(),
                latitude,
                longitude,
            }),
            _ => None,
        },
    }
}
