//! Sending mail (email one-time codes) with `lettre`: through `[smtp]`, or, without
//! it, into `DATA_DIR/mail/` as `.eml` files for development. A send is awaited outside
//! any database transaction, and a failure is reported, never swallowed.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use crate::config::{Config, SmtpTls};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let Some(smtp) = &config.smtp else {
            // The mails hold live codes: readable by the server's user only.
            let dir = config.data_dir.join("mail");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            return Ok(Self::Files {
                transport: AsyncFileTransport::new(&dir),
                dir,
                from: config.email.from.parse()?,
            });
        };
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
        };
        let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self::Smtp {
            transport: builder.build(),
            from: smtp.from.parse()?,
        })
    }

    /// Where mail goes, for the start-up log.
    pub fn describe(&self, config: &Config) -> String {
        match self {
            Self::Smtp { .. } => config
                .smtp
                .as_ref()
                .map(|s| format!("smtp://{}:{}", s.host, s.port))
                .unwrap_or_default(),
            Self::Files { dir, .. } => format!("files in {}", dir.display()),
        }
    }

    /// Sends a plain-text mail to `to`. The error says why, for the log (it may name
    /// the mail server, never the mail's contents).
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        let from = match self {
            Self::Smtp { from, .. } | Self::Files { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("building the mail: {e}"))?;
        match self {
            Self::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| smtp_failure(&e)),
            Self::Files { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("writing the mail file: {e}")),
        }
    }
}

/// Why an SMTP send failed, without the server's reply text (which may name the
/// recipient): the class of failure and the reply code.
fn smtp_failure(e: &lettre::transport::smtp::Error) -> String {
    let class = if e.is_timeout() {
        "timed out"
    } else if e.is_permanent() {
        "refused permanently"
    } else if e.is_transient() {
        "refused for now"
    } else if e.is_client() {
        "client error"
    } else {
        "connection failed"
    };
    match e.status() {
        Some(code) => format!("SMTP: {class} (reply {code})"),
        None => format!("SMTP: {class}"),
    }
}
