//! The semantic checks serde cannot express. Each message starts with the key.

use super::Config;

impl Config {
    /// Semantic checks serde cannot express. Each message starts with the key.
    pub(super) fn check(&self) -> Result<(), String> {
        self.check_durations()?;
        self.check_limits()?;
        self.check_places()?;
        self.check_email()?;
        self.check_purposes()?;
        self.check_forward_routes()?;
        self.check_pages()
    }

    fn check_pages(&self) -> Result<(), String> {
        for entry in &self.pages.return_to {
            let ok = url::Url::parse(entry).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.username().is_empty()
            });
            if !ok {
                return Err(format!(
                    "pages.return_to: {entry:?} must be an http:// or https:// URL with a host"
                ));
            }
        }
        Ok(())
    }

    /// Lifetimes, attempts and windows: positive.
    fn check_durations(&self) -> Result<(), String> {
        let positive = [
            ("session.ttl_seconds", self.session.ttl_seconds),
            (
                "session.access_token_ttl_seconds",
                self.session.access_token_ttl_seconds,
            ),
        ];
        for (key, value) in positive {
            if value <= 0 {
                return Err(format!("{key}: must be a positive number of seconds"));
            }
        }
        let stepup = [
            (
                "stepup.challenge_ttl_seconds",
                self.stepup.challenge_ttl_seconds,
            ),
            ("stepup.max_attempts", i64::from(self.stepup.max_attempts)),
            (
                "stepup.max_failures_per_window",
                i64::from(self.stepup.max_failures_per_window),
            ),
            (
                "stepup.failure_window_seconds",
                self.stepup.failure_window_seconds,
            ),
        ];
        let audit = [
            (
                "audit.checkpoint_every",
                i64::from(self.audit.checkpoint_every),
            ),
            (
                "audit.checkpoint_seconds",
                self.audit.checkpoint_seconds as i64,
            ),
        ];
        for (key, value) in stepup.into_iter().chain(audit) {
            if value <= 0 {
                return Err(format!("{key}: must be positive"));
            }
        }
        Ok(())
    }

    /// The risk thresholds, lockout, rate limits, HTTP, decision records and the
    /// server's own bounds.
    fn check_limits(&self) -> Result<(), String> {
        let risk = &self.risk.engine;
        if risk.medium_at == 0 || risk.medium_at > risk.high_at || risk.high_at > 100 {
            return Err(
                "risk.medium_at / risk.high_at: need 0 < medium_at <= high_at <= 100".into(),
            );
        }
        if risk.max_travel_kmh <= 0.0 {
            return Err("risk.max_travel_kmh: must be positive".into());
        }
        if self.lockout.max_failures == 0 || self.lockout.window_seconds <= 0 {
            return Err("lockout: max_failures and window_seconds must be positive".into());
        }
        let limits = &self.rate_limits;
        if [
            limits.login_per_minute,
            limits.verify_per_minute,
            limits.challenges_per_session_per_minute,
            limits.challenges_per_user_per_minute,
        ]
        .contains(&0)
        {
            return Err("rate_limits: limits must be at least 1".into());
        }
        let http = &self.http;
        if http.header_read_timeout_seconds == 0
            || http.body_read_timeout_seconds == 0
            || http.max_connections == 0
        {
            return Err(
                "http: timeouts must be at least 1 second and max_connections at least 1".into(),
            );
        }
        if self.decisions.record_retention_days == 0 {
            return Err("decisions.record_retention_days: must be at least 1".into());
        }
        for (i, list) in self.risk.ip_lists.iter().enumerate() {
            if list.name.trim().is_empty() {
                return Err(format!("risk.ip_lists[{i}].name: must not be empty"));
            }
        }
        if self.password_hash_concurrency == 0 {
            return Err("password_hash_concurrency: must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("max_body_bytes: must be at least 1024".into());
        }
        if self.database_max_connections == 0 {
            return Err("database_max_connections: must be at least 1".into());
        }
        Ok(())
    }

    /// Where things are (the listen address, for the test clock; the database; the
    /// public URL; the policy files) and how the decision path works (its record queue).
    fn check_places(&self) -> Result<(), String> {
        if self.testing.clock_control && !self.listen.ip().is_loopback() {
            return Err(format!(
                "testing.clock_control: lets an admin key move the clock, so it is allowed only \
                 when listen is a loopback address (listen is {})",
                self.listen
            ));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err("database_url: must start with sqlite: or postgres://".into());
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err("public_url: must be an http:// or https:// URL".into());
        }
        if self.policy_schema.is_some() && self.policy_file.is_none() {
            return Err("policy_schema: needs policy_file".into());
        }
        if self.decisions.record_queue == 0 || self.decisions.record_batch == 0 {
            return Err("decisions: record_queue and record_batch must be at least 1".into());
        }
        Ok(())
    }

    /// Email codes: 6 to 8 digits that live a while; a mail server that names itself.
    fn check_email(&self) -> Result<(), String> {
        let email = &self.email;
        if !(6..=8).contains(&email.code_digits) {
            return Err("email.code_digits: must be 6, 7 or 8".into());
        }
        if !(30..=3600).contains(&email.code_ttl_seconds) {
            return Err("email.code_ttl_seconds: must be 30 to 3600".into());
        }
        if email.sends_per_user_per_minute == 0 || email.sends_per_address_per_minute == 0 {
            return Err("email: sends per minute must be at least 1".into());
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return Err("smtp.host: must name the mail server".into());
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!(
                    "smtp.from: {:?} is not an email address",
                    smtp.from
                ));
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return Err("smtp: username and password go together".into());
            }
        }
        if email.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "email.from: {:?} is not an email address",
                email.from
            ));
        }
        Ok(())
    }

    /// Each purpose is valid and declared once.
    fn check_purposes(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.purposes.iter().enumerate() {
            let purpose = p
                .to_purpose()
                .map_err(|(field, why)| format!("purposes[{i}].{field}: {why}"))?;
            if !names.insert(purpose.name) {
                return Err(format!(
                    "purposes[{i}].name: {:?} is declared twice",
                    p.name
                ));
            }
        }
        Ok(())
    }

    /// Each `[[forward_auth]]` rule: one path pattern, HTTP methods, and either a
    /// declared purpose or an action and resource.
    fn check_forward_routes(&self) -> Result<(), String> {
        for (i, r) in self.forward_auth.routes.iter().enumerate() {
            let key = format!("forward_auth[{i}]");
            if r.path.is_some() == r.path_prefix.is_some() {
                return Err(format!(
                    "{key}.path: give path (a prefix ending in \"*\", or an exact path)"
                ));
            }
            crate::forward_auth::PathPattern::parse(&r.pattern())
                .map_err(|why| format!("{key}.path: {why}"))?;
            if let Some(m) = r.method.iter().find(|m| {
                m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_alphabetic())
            }) {
                return Err(format!(
                    "{key}.method: {m:?} is not an HTTP method (give one such as \"DELETE\", or \"*\" for any)"
                ));
            }
            match (&r.purpose, &r.action, &r.resource) {
                (Some(p), None, None) => {
                    if !self.purposes().iter().any(|d| d.name.as_str() == p) {
                        return Err(format!(
                            "{key}.purpose: no purpose named {p:?} is declared in [[purposes]]"
                        ));
                    }
                }
                (None, Some(_), Some(_)) => {}
                _ => {
                    return Err(format!(
                        "{key}: give either purpose, or both action and resource"
                    ));
                }
            }
        }
        Ok(())
    }
}
