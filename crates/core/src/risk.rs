//! The risk engine: signals in, an explained assessment out.
//!
//! Pure: the caller gathers what it knows about this login or action (from the store,
//! the IP lists, the GeoIP database, the request) into [`Signals`], passes the current
//! time, and gets a [`RiskAssessment`] whose every reason names the signal, what it saw
//! and its weight. No signal is a black box.
//!
//! Every weight is non-negative and the score is their sum (capped at 100), so adding a
//! risk signal can never lower the score or the tier (property-tested below).

use crate::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Low,
    Medium,
    High,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// How much a device is trusted for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceTrust {
    /// Not known.
    None,
    /// Its fingerprint completed a step-up before: weak evidence, fingerprints can be copied.
    Fingerprint,
    /// It holds a device-bound key (a passkey registered from it, or a DPoP key proven).
    Key,
}

impl DeviceTrust {
    pub fn parse(raw: &str) -> Result<Self, crate::Error> {
        match raw {
            "none" => Ok(Self::None),
            "fingerprint" => Ok(Self::Fingerprint),
            "key" => Ok(Self::Key),
            _ => Err(crate::Error::validation(
                "device trust must be none, fingerprint or key",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fingerprint => "fingerprint",
            Self::Key => "key",
        }
    }
}

/// What the client said about its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSignal {
    /// No fingerprint was sent.
    Absent,
    /// A fingerprint this user has not completed a step-up from.
    New,
    /// A remembered device.
    Known(DeviceTrust),
}

/// A point on Earth with its country (from a GeoIP database).
#[derive(Debug, Clone, PartialEq)]
pub struct Geo {
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// The user's previous successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousLogin {
    pub at: UnixTime,
    pub geo: Option<Geo>,
}

/// An IP reputation list the client IP is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub list: String,
    pub weight: u8,
}

/// Everything the engine considers. Fields left at their neutral value add nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    pub device: DeviceSignal,
    /// Whether this user has succeeded from this IP before; `None` when unknown.
    pub ip_seen_before: Option<bool>,
    pub listed: Vec<Listed>,
    pub geo: Option<Geo>,
    /// Countries of this user's past successful logins.
    pub countries_seen: Vec<String>,
    pub previous_login: Option<PreviousLogin>,
    /// UTC hours (0–23) of this user's past successful logins.
    pub login_hours: Vec<u8>,
    /// Failed sign-ins for this account in the velocity window.
    pub recent_failures: u32,
    /// Age of the session, for decisions on an existing session.
    pub session_age: Option<i64>,
    /// The purpose's own sensitivity, when deciding an action.
    pub purpose_sensitivity: Option<(String, u8)>,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            device: DeviceSignal::Absent,
            ip_seen_before: None,
            listed: Vec::new(),
            geo: None,
            countries_seen: Vec::new(),
            previous_login: None,
            login_hours: Vec::new(),
            recent_failures: 0,
            session_age: None,
            purpose_sensitivity: None,
        }
    }
}

/// Operator settings (config `[risk]`, where they sit beside the server's own risk
/// settings); the defaults are documented in the README.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RiskConfig {
    pub weight_no_device: u8,
    pub weight_new_device: u8,
    pub weight_new_ip: u8,
    pub weight_new_country: u8,
    pub weight_impossible_travel: u8,
    pub weight_unusual_hour: u8,
    pub weight_failure_velocity: u8,
    pub weight_stale_session: u8,
    /// Score at which the tier becomes medium, and high.
    pub medium_at: u8,
    pub high_at: u8,
    /// Faster than this between two logins is impossible travel.
    pub max_travel_kmh: f64,
    /// Past logins needed before the hour of day counts.
    pub usual_hours_min_history: usize,
    /// Failed sign-ins in the window that make a burst.
    pub failure_velocity_threshold: u32,
    pub stale_session_seconds: i64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            weight_no_device: 20,
            weight_new_device: 30,
            weight_new_ip: 15,
            weight_new_country: 20,
            weight_impossible_travel: 60,
            weight_unusual_hour: 15,
            weight_failure_velocity: 25,
            weight_stale_session: 20,
            medium_at: 30,
            high_at: 60,
            max_travel_kmh: 900.0,
            usual_hours_min_history: 5,
            failure_velocity_threshold: 3,
            stale_session_seconds: 8 * 3600,
        }
    }
}

/// One contribution to the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `device`, `network`, `ip_reputation`, `location`, `travel`, `time_of_day`,
    /// `failure_velocity`, `session_age`, `purpose`.
    pub signal: &'static str,
    /// What the signal saw, in words.
    pub observed: String,
    pub weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskAssessment {
    pub score: u8,
    pub tier: Tier,
    pub reasons: Vec<Reason>,
    pub device_trust: DeviceTrust,
}

impl RiskConfig {
    pub fn tier(&self, score: u8) -> Tier {
        if score >= self.high_at {
            Tier::High
        } else if score >= self.medium_at {
            Tier::Medium
        } else {
            Tier::Low
        }
    }
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: &Geo, b: &Geo) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// The UTC hour of a Unix time.
pub fn utc_hour(t: UnixTime) -> u8 {
    (t.rem_euclid(86_400) / 3600) as u8
}

/// Assesses the signals at time `now`. Each signal contributes its reasons in the order
/// below (answers list them in that order); the score is the sum of their weights,
/// capped at 100.
pub fn assess(s: &Signals, c: &RiskConfig, now: UnixTime) -> RiskAssessment {
    let (device_trust, device) = device(s.device, c);
    let mut reasons = vec![device];
    reasons.extend(network(s.ip_seen_before, c));
    reasons.extend(ip_reputation(&s.listed));
    // Location and travel need to know where the IP is.
    if let Some(geo) = &s.geo {
        reasons.push(location(geo, &s.countries_seen, c));
        reasons.extend(travel(geo, s.previous_login.as_ref(), c, now));
    }
    reasons.extend(time_of_day(&s.login_hours, c, now));
    reasons.extend(failure_velocity(s.recent_failures, c));
    reasons.extend(session_age(s.session_age, c));
    reasons.extend(purpose(s.purpose_sensitivity.as_ref()));

    let total: u32 = reasons.iter().map(|r| u32::from(r.weight)).sum();
    let score = total.min(100) as u8;
    RiskAssessment {
        score,
        tier: c.tier(score),
        reasons,
        device_trust,
    }
}

fn reason(signal: &'static str, observed: impl Into<String>, weight: u8) -> Reason {
    Reason {
        signal,
        observed: observed.into(),
        weight,
    }
}

/// Always a reason: no fingerprint and a new device weigh, a remembered one does not.
/// Also how far the device is trusted.
fn device(device: DeviceSignal, c: &RiskConfig) -> (DeviceTrust, Reason) {
    match device {
        DeviceSignal::Absent => (
            DeviceTrust::None,
            reason(
                "device",
                "no device fingerprint was sent",
                c.weight_no_device,
            ),
        ),
        DeviceSignal::New => (
            DeviceTrust::None,
            reason("device", "new device for this user", c.weight_new_device),
        ),
        DeviceSignal::Known(DeviceTrust::Key) => (
            DeviceTrust::Key,
            reason("device", "trusted device: it holds a device-bound key", 0),
        ),
        DeviceSignal::Known(trust) => (
            trust,
            reason("device", "remembered device (fingerprint only)", 0),
        ),
    }
}

/// Whether the user has succeeded from this IP before; nothing when unknown.
fn network(ip_seen_before: Option<bool>, c: &RiskConfig) -> Option<Reason> {
    ip_seen_before.map(|seen| {
        if seen {
            reason("network", "known IP for this user", 0)
        } else {
            reason(
                "network",
                "IP not seen before for this user",
                c.weight_new_ip,
            )
        }
    })
}

/// One reason per reputation list the IP is on, with that list's weight.
fn ip_reputation(listed: &[Listed]) -> impl Iterator<Item = Reason> + '_ {
    listed.iter().map(|l| {
        reason(
            "ip_reputation",
            format!("IP is on the list {:?}", l.list),
            l.weight,
        )
    })
}

/// The country of the IP: it weighs only when the user has a login history and this
/// country is not in it.
fn location(geo: &Geo, countries_seen: &[String], c: &RiskConfig) -> Reason {
    if !countries_seen.is_empty() && !countries_seen.contains(&geo.country) {
        reason(
            "location",
            format!("new country {}", geo.country),
            c.weight_new_country,
        )
    } else {
        reason("location", format!("country {}", geo.country), 0)
    }
}

/// Impossible travel: faster than `max_travel_kmh` from the previous login's place
/// (nothing when that place is unknown).
fn travel(
    geo: &Geo,
    previous: Option<&PreviousLogin>,
    c: &RiskConfig,
    now: UnixTime,
) -> Option<Reason> {
    let Some(PreviousLogin {
        at,
        geo: Some(prev),
    }) = previous
    else {
        return None;
    };
    let km = distance_km(prev, geo);
    // At least a minute apart, so two logins in the same second are not infinitely fast.
    let hours = ((now - at).max(60)) as f64 / 3600.0;
    let kmh = km / hours;
    (kmh > c.max_travel_kmh).then(|| {
        reason(
            "travel",
            format!(
                "impossible travel: {km:.0} km from {} in {:.1} h ({kmh:.0} km/h)",
                prev.country, hours
            ),
            c.weight_impossible_travel,
        )
    })
}

/// The hour of day, once the user has enough past logins: within an hour of a past
/// login's hour (wrapping at midnight) is usual and weighs nothing.
fn time_of_day(login_hours: &[u8], c: &RiskConfig, now: UnixTime) -> Option<Reason> {
    if login_hours.len() < c.usual_hours_min_history {
        return None;
    }
    let hour = utc_hour(now);
    let usual = login_hours.iter().any(|&h| {
        let d = (i16::from(h) - i16::from(hour)).rem_euclid(24);
        d <= 1 || d >= 23
    });
    Some(if usual {
        reason(
            "time_of_day",
            format!("{hour:02}:00 UTC is within the user's usual hours"),
            0,
        )
    } else {
        reason(
            "time_of_day",
            format!("{hour:02}:00 UTC is outside the user's usual hours"),
            c.weight_unusual_hour,
        )
    })
}

/// A burst of failed sign-ins for this account.
fn failure_velocity(recent_failures: u32, c: &RiskConfig) -> Option<Reason> {
    (recent_failures >= c.failure_velocity_threshold).then(|| {
        reason(
            "failure_velocity",
            format!("{recent_failures} failed sign-ins recently"),
            c.weight_failure_velocity,
        )
    })
}

/// A session older than `stale_session_seconds`.
fn session_age(age: Option<i64>, c: &RiskConfig) -> Option<Reason> {
    let age = age.filter(|&age| age > c.stale_session_seconds)?;
    Some(reason(
        "session_age",
        format!("session is {} h old", age / 3600),
        c.weight_stale_session,
    ))
}

/// The action's own sensitivity, with the purpose's weight.
fn purpose(sensitivity: Option<&(String, u8)>) -> Option<Reason> {
    sensitivity.map(|(purpose, weight)| {
        reason(
            "purpose",
            format!("{purpose} is a sensitive action"),
            *weight,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOON: UnixTime = 1_800_000_000 - 1_800_000_000 % 86_400 + 12 * 3600;

    fn known() -> Signals {
        Signals {
            device: DeviceSignal::Known(DeviceTrust::Fingerprint),
            ip_seen_before: Some(true),
            login_hours: vec![11, 12, 12, 13, 12],
            ..Signals::default()
        }
    }

    fn berlin() -> Geo {
        Geo {
            country: "DE".into(),
            latitude: 52.52,
            longitude: 13.405,
        }
    }

    fn sydney() -> Geo {
        Geo {
            country: "AU".into(),
            latitude: -33.8688,
            longitude: 151.2093,
        }
    }

    #[test]
    fn a_known_device_network_and_hour_is_low_risk() {
        let a = assess(&known(), &RiskConfig::default(), NOON);
        assert_eq!((a.score, a.tier), (0, Tier::Low));
        assert_eq!(a.device_trust, DeviceTrust::Fingerprint);
        assert!(a.reasons.iter().any(|r| r.observed.contains("usual hours")));
    }

    #[test]
    fn a_new_device_alone_is_medium() {
        let a = assess(
            &Signals {
                device: DeviceSignal::New,
                ..known()
            },
            &RiskConfig::default(),
            NOON,
        );
        assert_eq!(a.tier, Tier::Medium);
        assert_eq!(a.reasons[0].observed, "new device for this user");
        assert_eq!(a.reasons[0].weight, 30);
    }

    #[test]
    fn impossible_travel_is_high() {
        let s = Signals {
            geo: Some(sydney()),
            countries_seen: vec!["DE".into()],
            previous_login: Some(PreviousLogin {
                at: NOON - 3600,
                geo: Some(berlin()),
            }),
            ..known()
        };
        let a = assess(&s, &RiskConfig::default(), NOON);
        assert_eq!(a.tier, Tier::High);
        let travel = a.reasons.iter().find(|r| r.signal == "travel").unwrap();
        assert!(
            travel.observed.starts_with("impossible travel: 16"),
            "{}",
            travel.observed
        );
        assert!(a.reasons.iter().any(|r| r.observed == "new country AU"));
        // The same trip over two days is fine.
        let slow = Signals {
            previous_login: Some(PreviousLogin {
                at: NOON - 48 * 3600,
                geo: Some(berlin()),
            }),
            ..s
        };
        assert!(
            assess(&slow, &RiskConfig::default(), NOON)
                .reasons
                .iter()
                .all(|r| r.signal != "travel")
        );
    }

    #[test]
    fn hours_count_only_with_enough_history() {
        let three_am = NOON - 9 * 3600;
        let a = assess(&known(), &RiskConfig::default(), three_am);
        assert!(a.reasons.iter().any(|r| r.observed
            == "03:00 UTC is outside the user's usual hours"
            && r.weight == 15));
        let short = Signals {
            login_hours: vec![12],
            ..known()
        };
        assert!(
            assess(&short, &RiskConfig::default(), three_am)
                .reasons
                .iter()
                .all(|r| r.signal != "time_of_day")
        );
        // Midnight wraps around.
        let late = Signals {
            login_hours: vec![23; 5],
            ..known()
        };
        assert!(
            assess(&late, &RiskConfig::default(), NOON + 12 * 3600)
                .reasons
                .iter()
                .any(|r| r.signal == "time_of_day" && r.weight == 0)
        );
    }

    #[test]
    fn listed_ips_failure_bursts_and_stale_sessions_add_their_weights() {
        let s = Signals {
            listed: vec![Listed {
                list: "tor-exits".into(),
                weight: 40,
            }],
            recent_failures: 4,
            session_age: Some(9 * 3600),
            ..known()
        };
        let a = assess(&s, &RiskConfig::default(), NOON);
        assert_eq!(a.score, 40 + 25 + 20);
        assert_eq!(a.tier, Tier::High);
        assert!(
            a.reasons
                .iter()
                .any(|r| r.observed == "IP is on the list \"tor-exits\"")
        );
    }

    #[test]
    fn distances_are_great_circle_kilometres() {
        let d = distance_km(&berlin(), &sydney());
        assert!((16_000.0..16_200.0).contains(&d), "{d}");
        assert!(distance_km(&berlin(), &berlin()) < 1e-9);
    }

    fn geo() -> impl Strategy<Value = Geo> {
        (
            prop::sample::select(vec!["DE", "AU", "US", "BR"]),
            -80.0..80.0f64,
            -179.0..179.0f64,
        )
            .prop_map(|(c, latitude, longitude)| Geo {
                country: c.into(),
                latitude,
                longitude,
            })
    }

    fn signals() -> impl Strategy<Value = Signals> {
        (
            prop::sample::select(vec![
                DeviceSignal::Absent,
                DeviceSignal::New,
                DeviceSignal::Known(DeviceTrust::Fingerprint),
                DeviceSignal::Known(DeviceTrust::Key),
            ]),
            prop::option::of(any::<bool>()),
            prop::collection::vec((0..3u8, 0..60u8), 0..3),
            prop::option::of(geo()),
            prop::collection::vec(prop::sample::select(vec!["DE", "AU", "US"]), 0..3),
            prop::option::of((0..200_000i64, prop::option::of(geo()))),
            prop::collection::vec(0..24u8, 0..8),
            0..10u32,
            prop::option::of(0..100_000i64),
            prop::option::of(0..80u8),
        )
            .prop_map(
                |(device, ip, lists, geo, countries, prev, hours, failures, age, purpose)| {
                    Signals {
                        device,
                        ip_seen_before: ip,
                        listed: lists
                            .into_iter()
                            .map(|(i, w)| Listed {
                                list: format!("list{i}"),
                                weight: w,
                            })
                            .collect(),
                        geo,
                        countries_seen: countries.into_iter().map(str::to_owned).collect(),
                        previous_login: prev.map(|(ago, geo)| PreviousLogin {
                            at: NOON - ago,
                            geo,
                        }),
                        login_hours: hours,
                        recent_failures: failures,
                        session_age: age,
                        purpose_sensitivity: purpose.map(|w| ("p".into(), w)),
                    }
                },
            )
    }

    /// One way of making the situation riskier.
    fn worsen(s: &Signals, how: u8, weight: u8) -> Signals {
        let mut w = s.clone();
        match how % 7 {
            0 => w.device = DeviceSignal::New,
            1 => w.ip_seen_before = Some(false),
            2 => w.listed.push(Listed {
                list: "extra".into(),
                weight,
            }),
            3 => w.recent_failures += 1 + u32::from(weight % 5),
            4 => w.session_age = Some(s.session_age.unwrap_or(0).max(100_000)),
            5 => {
                w.purpose_sensitivity = Some((
                    "p".into(),
                    s.purpose_sensitivity
                        .as_ref()
                        .map_or(0, |p| p.1)
                        .saturating_add(weight),
                ))
            }
            _ => {
                // A login from far away moments after the previous one.
                w.previous_login = Some(PreviousLogin {
                    at: NOON - 60,
                    geo: Some(sydney()),
                });
                w.geo = Some(berlin());
                w.countries_seen = vec!["AU".into()];
            }
        }
        w
    }

    /// Whether `worsen(s, how)` only adds risk: a new device, a new IP, a listing, more
    /// failures, an older session, a more sensitive purpose, or a far-away login where
    /// there was no location evidence to replace.
    fn is_pure_addition(s: &Signals, how: u8) -> bool {
        match how % 7 {
            0 => {
                s.device != DeviceSignal::Absent
                    || RiskConfig::default().weight_new_device
                        >= RiskConfig::default().weight_no_device
            }
            6 => s.geo.is_none() || s.previous_login.is_none() || s.countries_seen.is_empty(),
            _ => true,
        }
    }

    proptest! {
        #[test]
        fn adding_a_risk_signal_never_lowers_the_score_or_tier(s in signals(), how in 0..7u8, weight in 0..60u8) {
            prop_assume!(is_pure_addition(&s, how));
            let c = RiskConfig::default();
            let before = assess(&s, &c, NOON);
            let after = assess(&worsen(&s, how, weight), &c, NOON);
            prop_assert!(after.score >= before.score, "{before:?} -> {after:?}");
            prop_assert!(after.tier >= before.tier);
        }

        #[test]
        fn the_score_is_the_capped_sum_of_the_reasons(s in signals()) {
            let a = assess(&s, &RiskConfig::default(), NOON);
            let sum: u32 = a.reasons.iter().map(|r| u32::from(r.weight)).sum();
            prop_assert_eq!(u32::from(a.score), sum.min(100));
            prop_assert_eq!(a.tier, RiskConfig::default().tier(a.score));
        }
    }
}
