//! One connection to an application database, with the server's NOTICEs and WARNINGs collected
//! so that they can be shown in order, after the statement that raised them.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use postgres::Client;

use crate::conn::{ConnError, ConnSettings, NoticeLine};
use crate::events::{Level, Observer, log};

pub struct Session {
    pub client: Client,
    notices: Receiver<NoticeLine>,
    dbname: String,
}

impl Session {
    /// Connects and applies the bundle's session settings (values bound through set_config).
    pub fn open(
        settings: &ConnSettings,
        session_settings: &[(String, String)],
    ) -> Result<Self, DbError> {
        let (tx, rx) = channel::<NoticeLine>();
        // The callback must be Sync; the Sender is only used from the connection's thread.
        let tx: Arc<Mutex<Sender<NoticeLine>>> = Arc::new(Mutex::new(tx));
        let callback = Box::new(move |n: NoticeLine| {
            if let Ok(tx) = tx.lock() {
                // The receiver is gone only when the session is being dropped.
                let _ = tx.send(n);
            }
        });
        let mut client = settings.connect(Some(callback)).map_err(DbError::Connect)?;
        // Scripts are split assuming standard strings ('\' is an ordinary character), as
        // every PostgreSQL since 9.1 has by default; a server configured otherwise must not
        // change what a script means.
        client
            .batch_execute("SET standard_conforming_strings = on")
            .map_err(|e| DbError::query("set standard_conforming_strings", e))?;
        for (name, value) in session_settings {
            client
                .execute(
                    "SELECT pg_catalog.set_config($1, $2, false)",
                    &[name, value],
                )
                .map_err(|e| DbError::query(format!("apply session setting {name}"), e))?;
        }
        Ok(Self {
            client,
            notices: rx,
            dbname: settings.dbname().to_owned(),
        })
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// Passes the notices received so far to the observer as log lines.
    pub fn drain_notices(&mut self, obs: &mut dyn Observer) {
        while let Ok(n) = self.notices.try_recv() {
            let level = match n.severity.as_str() {
                "WARNING" => Level::Warning,
                "NOTICE" | "INFO" => Level::Notice,
                _ => Level::Info,
            };
            let mut text = format!("{}: {}", n.severity, n.message);
            if let Some(d) = &n.detail {
                text.push_str(&format!(" (DETAIL: {d})"));
            }
            log(obs, level, text);
        }
    }
}

/// A database operation that failed, with what pgstep was doing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Connect(ConnError),
    #[error("failed to {action}: {}", describe(.source))]
    Query {
        action: String,
        source: postgres::Error,
    },
    #[error("{0}")]
    Refused(String),
}

impl DbError {
    pub fn query(action: impl Into<String>, source: postgres::Error) -> Self {
        Self::Query {
            action: action.into(),
            source,
        }
    }
}

/// A server error as a sysadmin needs it: SQLSTATE, message, detail, hint.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!("\n  DETAIL: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("\n  HINT: {h}"));
            }
            s
        }
        None if e.is_closed() => {
            "the connection to the server was lost (did the server stop or restart?)".to_owned()
        }
        None => e.to_string(),
    }
}
