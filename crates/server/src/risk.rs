//! Where the risk engine's signals come from: IP reputation lists, the GeoIP database,
//! and what the store remembers about the user. The engine itself is
//! `stepgate_core::risk`; this module only gathers.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{Context, bail};
use ipnet::IpNet;
use serde::Deserialize;
use stepgate_core::risk::{
    DeviceSignal, DeviceTrust, Geo, Listed, PreviousLogin, RiskAssessment, Signals, utc_hour,
};

use crate::app::App;
use crate::config::{IpListConfig, RiskSettings};
use crate::error::AppError;
use stepgate_api::{Risk, RiskReason};

/// How many past logins the history signals look at.
const HISTORY: i64 = 50;

struct LoadedList {
    name: String,
    weight: u8,
    nets: Vec<IpNet>,
}

/// File-backed signal sources, reloaded when their files change (or on SIGHUP). A file
/// that fails to reload keeps its previous contents and is reported in the log.
pub struct RiskSources {
    list_configs: Vec<IpListConfig>,
    lists: RwLock<Arc<Vec<LoadedList>>>,
    geoip_path: Option<PathBuf>,
    geoip: RwLock<Option<Arc<maxminddb::Reader<Vec<u8>>>>>,
    mtimes: Mutex<Vec<Option<SystemTime>>>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_list(c: &IpListConfig) -> anyhow::Result<LoadedList> {
    let text = std::fs::read_to_string(&c.path)
        .with_context(|| format!("IP list {:?}: reading {}", c.name, c.path.display()))?;
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}:{}: {entry:?} is not a CIDR or IP address",
                    c.path.display(),
                    i + 1
                )
            })?;
        nets.push(net);
    }
    Ok(LoadedList {
        name: c.name.clone(),
        weight: c.weight,
        nets,
    })
}

fn load_geoip(path: &Path) -> anyhow::Result<maxminddb::Reader<Vec<u8>>> {
    maxminddb::Reader::open_readfile(path)
        .with_context(|| format!("GeoIP database {}", path.display()))
}

#[derive(Deserialize)]
struct CityRecord {
    country: Option<CountryRecord>,
    location: Option<LocationRecord>,
}

#[derive(Deserialize)]
struct CountryRecord {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct LocationRecord {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl RiskSources {
    /// Loads every source; any bad file is an error naming it (and the line).
    pub fn load(settings: &RiskSettings) -> anyhow::Result<Self> {
        let lists = settings
            .ip_lists
            .iter()
            .map(load_list)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let geoip = settings
            .geoip_database
            .as_deref()
            .map(load_geoip)
            .transpose()?;
        let sources = Self {
            list_configs: settings.ip_lists.clone(),
            lists: RwLock::new(Arc::new(lists)),
            geoip_path: settings.geoip_database.clone(),
            geoip: RwLock::new(geoip.map(Arc::new)),
            mtimes: Mutex::new(Vec::new()),
        };
        *sources.mtimes.lock().expect("lock") = sources.current_mtimes();
        Ok(sources)
    }

    fn current_mtimes(&self) -> Vec<Option<SystemTime>> {
        self.list_configs
            .iter()
            .map(|c| mtime(&c.path))
            .chain(self.geoip_path.iter().map(|p| mtime(p)))
            .collect()
    }

    /// Reloads all sources if any file changed. On a bad file, keeps the old contents.
    pub fn reload_if_changed(&self, force: bool) -> anyhow::Result<bool> {
        let now = self.current_mtimes();
        let mut seen = self.mtimes.lock().expect("lock");
        if !force && *seen == now {
            return Ok(false);
        }
        *seen = now;
        let lists = self
            .list_configs
            .iter()
            .map(load_list)
            .collect::<anyhow::Result<Vec<_>>>()?;
        *self.lists.write().expect("lock") = Arc::new(lists);
        if let Some(path) = &self.geoip_path {
            *self.geoip.write().expect("lock") = Some(Arc::new(load_geoip(path)?));
        }
        Ok(true)
    }

    /// The lists this IP is on.
    pub fn listed(&self, ip: IpAddr) -> Vec<Listed> {
        let lists = self.lists.read().expect("lock").clone();
        lists
            .iter()
            .filter(|l| l.nets.iter().any(|n| n.contains(&ip)))
            .map(|l| Listed {
                list: l.name.clone(),
                weight: l.weight,
            })
            .collect()
    }

    /// Country and coordinates of an IP, if the database knows them.
    pub fn locate(&self, ip: IpAddr) -> Option<Geo> {
        let reader = self.geoip.read().expect("lock").clone()?;
        let record: CityRecord = reader.lookup(ip).ok()?.decode().ok()??;
        let location = record.location?;
        Some(Geo {
            country: record
                .country
                .and_then(|c| c.iso_code)
                .unwrap_or_else(|| "??".into()),
            latitude: location.latitude?,
            longitude: location.longitude?,
        })
    }

    pub fn check(settings: &RiskSettings) -> anyhow::Result<()> {
        if let Some(path) = &settings.geoip_database
            && !path.exists()
        {
            bail!("risk.geoip_database: {} does not exist", path.display());
        }
        Self::load(settings).map(|_| ())
    }
}

/// A risk assessment as the API shows it.
pub fn shown(a: &RiskAssessment) -> Risk {
    Risk {
        score: a.score,
        tier: a.tier.as_str().into(),
        device_trust: a.device_trust.as_str().into(),
        reasons: a
            .reasons
            .iter()
            .map(|r| RiskReason {
                signal: r.signal.into(),
                observed: r.observed.clone(),
                weight: r.weight,
            })
            .collect(),
    }
}

/// The signals a request shows by itself, with no user data: its network, its place and
/// the account name's recent failures.
pub fn request_signals(app: &App, ip: IpAddr, recent_failures: usize) -> Signals {
    Signals {
        device: DeviceSignal::Absent,
        listed: app.risk_sources.listed(ip),
        geo: app.risk_sources.locate(ip),
        recent_failures: u32::try_from(recent_failures).unwrap_or(u32::MAX),
        ..Signals::default()
    }
}

/// What the store remembers about a device for this user.
pub(crate) async fn device_signal(
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
pub fn previous_login(l: &stepgate_store::LoginRecord) -> PreviousLogin {
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

/// Gathers the signals of an action on an existing session: its device, network,
/// place, age, and the purpose's own sensitivity.
pub async fn action_signals(
    app: &App,
    session: &stepgate_store::SessionRecord,
    ip: IpAddr,
    purpose: &stepgate_core::purpose::Purpose,
    now: i64,
) -> Result<Signals, AppError> {
    let store = &app.store;
    let device = device_signal(app, &session.user_id, session.device_hash.as_deref()).await?;
    let geo = app.risk_sources.locate(ip);
    let previous_login = store
        .recent_logins(&session.user_id, 1)
        .await?
        .first()
        .map(previous_login);
    Ok(Signals {
        device,
        ip_seen_before: Some(
            store
                .ip_seen_for_user(&session.user_id, &ip.to_string())
                .await?,
        ),
        listed: app.risk_sources.listed(ip),
        geo,
        countries_seen: store.countries_of_user(&session.user_id).await?,
        previous_login,
        login_hours: Vec::new(),
        recent_failures: 0,
        session_age: Some(now - session.created_at),
        purpose_sensitivity: (purpose.sensitivity > 0)
            .then(|| (purpose.name.as_str().to_owned(), purpose.sensitivity)),
    })
}

/// Gathers the signals of a password login for `user_id` from `ip`.
/// `recent_failures` is the account name's failure count the caller already read for
/// the lockout check.
pub async fn login_signals(
    app: &App,
    user_id: &str,
    recent_failures: usize,
    ip: IpAddr,
    device_hash: Option<&str>,
) -> Result<(Signals, Option<Geo>), AppError> {
    let store = &app.store;
    let device = device_signal(app, user_id, device_hash).await?;
    let ip_text = ip.to_string();
    let history = store.recent_logins(user_id, HISTORY).await?;
    let geo = app.risk_sources.locate(ip);
    let signals = Signals {
        device,
        ip_seen_before: Some(store.ip_seen_for_user(user_id, &ip_text).await?),
        listed: app.risk_sources.listed(ip),
        geo: geo.clone(),
        countries_seen: store.countries_of_user(user_id).await?,
        previous_login: history.first().map(previous_login),
        login_hours: history.iter().map(|l| utc_hour(l.at)).collect(),
        recent_failures: u32::try_from(recent_failures).unwrap_or(u32::MAX),
        session_age: None,
        purpose_sensitivity: None,
    };
    Ok((signals, geo))
}
