//! The cost of one risk assessment: `cargo bench -p stepgate-core --bench risk`.
//!
//! Three situations: the quiet login (known everything), a busy one (every signal
//! present, impossible travel computed), and the default-constructed minimum.

use std::hint::black_box;
use std::time::Instant;

use stepgate_core::risk::{
    DeviceSignal, DeviceTrust, Geo, Listed, PreviousLogin, RiskConfig, Signals, assess,
};

fn measure(name: &str, signals: &Signals) {
    let config = RiskConfig::default();
    let now = 1_800_000_000;
    let iters = 200_000u32;
    for _ in 0..10_000 {
        black_box(assess(black_box(signals), &config, now));
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(assess(black_box(signals), &config, now));
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<32} {:>8.0} ns/assessment (median of 7 x {iters})",
        runs[3]
    );
}

fn main() {
    let london = Geo {
        country: "GB".into(),
        latitude: 51.5,
        longitude: -0.13,
    };
    let quiet = Signals {
        device: DeviceSignal::Known(DeviceTrust::Fingerprint),
        ip_seen_before: Some(true),
        geo: Some(london.clone()),
        countries_seen: vec!["GB".into()],
        previous_login: Some(PreviousLogin {
            at: 1_799_990_000,
            geo: Some(london.clone()),
        }),
        login_hours: (0..50).map(|i| (8 + i % 10) as u8).collect(),
        ..Signals::default()
    };
    let busy = Signals {
        device: DeviceSignal::New,
        ip_seen_before: Some(false),
        listed: vec![Listed {
            list: "tor-exits".into(),
            weight: 40,
        }],
        geo: Some(Geo {
            country: "AU".into(),
            latitude: -33.87,
            longitude: 151.21,
        }),
        countries_seen: vec!["GB".into(), "FR".into()],
        previous_login: Some(PreviousLogin {
            at: 1_799_999_000,
            geo: Some(london),
        }),
        login_hours: (0..50).map(|i| (8 + i % 10) as u8).collect(),
        recent_failures: 4,
        session_age: Some(40_000),
        purpose_sensitivity: Some(("admin:resources:delete".into(), 40)),
    };
    measure("quiet login (all known)", &quiet);
    measure("busy (every signal fires)", &busy);
    measure("empty signals", &Signals::default());
}
