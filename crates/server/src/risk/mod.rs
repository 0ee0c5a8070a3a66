//! Where the risk engine's signals come from: IP reputation lists and the GeoIP
//! database here, what the store remembers about the user in [`signals`], which gathers
//! them one way for an action and one way for a login. The engine itself is
//! `stepgate_core::risk`; this module only gathers.

pub mod signals;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{Context, bail};
use ipnet::IpNet;
use serde::Deserialize;
use stepgate_api::{Risk, RiskReason};
use stepgate_core::risk::{Geo, Listed, RiskAssessment};

use crate::config::{IpListConfig, RiskSettings};

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
