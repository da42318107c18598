//! A primary and its standbys: `database.url` may list several hosts, in libpq's syntax
//! (`postgres://user@db1:5432,db2:5432/ecpat?target_session_attrs=read-write`), and a
//! process then writes and reads on the one that accepts writes.
//!
//! sqlx reads one host per URL, so the list is split here into one URL per host. Each
//! process that connects with a list:
//!
//! - opens its pool on the first host, and every new connection of the pool checks
//!   `pg_is_in_recovery()` first: one to a standby is closed and the pool tries again (the
//!   caller sees the database as unreachable, and retries), so nothing is ever written to,
//!   or read from, a standby;
//! - keeps one connection of its own to the server it uses and asks it, every second, whether
//!   it is still out of recovery. When that fails (the server was lost) or it is in recovery,
//!   it tries each host in the order given and points the pool's new connections at the
//!   first that accepts writes ([`PgPool::set_connect_options`]). The pool's connections to a
//!   lost server fail their check before use and are replaced; a batch in flight fails, is
//!   retried, and commits on the new primary.
//!
//! Promoting a standby is left to the operator or to a failover manager (Patroni,
//! repmgr, pg_auto_failover): the worker only follows.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::{ConnectError, check_url, connect_options};
use crate::config::redact;
use crate::telemetry::one_line;

/// The libpq parameter that asks for a server accepting writes; read here, not by sqlx.
const SESSION_ATTRS: &str = "target_session_attrs";

/// How often a process that follows the primary checks that its server still accepts writes.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The servers a `database.url` names.
#[derive(Clone, Debug)]
pub struct Hosts {
    /// The URL as given, for messages (always shown redacted).
    url: String,
    /// One URL per host, in the order given, with its options.
    hosts: Vec<(String, PgConnectOptions)>,
    /// Several hosts, or `target_session_attrs=read-write`: use only a server that is out
    /// of recovery.
    writable_only: bool,
}

impl Hosts {
    /// Reads `url`: one host, as sqlx reads it, or a comma-separated list of `host:port`.
    /// `target_session_attrs` may be `read-write` or `primary` (both mean the server that
    /// accepts writes, the only one a worker can use); with one host, it makes the process
    /// refuse a standby too.
    pub fn parse(url: &str) -> Result<Hosts, ConnectError> {
        let invalid = |reason: String| ConnectError::InvalidUrl { url: redact(url), reason };
        let Some((scheme, rest)) = url.split_once("://") else { return Hosts::one(url) };
        if !matches!(scheme, "postgres" | "postgresql") {
            return Hosts::one(url);
        }
        let (head, query) = rest.split_once('?').map_or((rest, None), |(head, query)| (head, Some(query)));
        // The user information ends at the last `@` (as in `config::redact`); the host list
        // at the path.
        let (userinfo, hostpath) = head.rsplit_once('@').map_or(("", head), |(user, hosts)| (user, hosts));
        let (list, path) = hostpath.find('/').map_or((hostpath, ""), |slash| hostpath.split_at(slash));
        let mut attrs = vec![];
        let mut kept = vec![];
        for pair in query.into_iter().flat_map(|query| query.split('&')) {
            match pair.split_once('=') {
                Some((SESSION_ATTRS, value)) => attrs.push(value),
                _ => kept.push(pair),
            }
        }
        if !list.contains(',') && attrs.is_empty() {
            return Hosts::one(url);
        }
        if let Some(other) = attrs.iter().find(|value| !matches!(**value, "read-write" | "primary")) {
            return Err(invalid(format!(
                "{SESSION_ATTRS}={other}: the worker writes, so it needs read-write (or primary), the default with several hosts"
            )));
        }
        let userinfo = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
        let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
        let mut hosts = vec![];
        for host in list.split(',') {
            if host.is_empty() {
                return Err(invalid("an empty host in the list of hosts".into()));
            }
            let one = format!("{scheme}://{userinfo}{host}{path}{query}");
            check_url(&one).map_err(|_| invalid(format!("cannot read the host {host}")))?;
            let options = connect_options(&one).map_err(|e| invalid(format!("host {host}: {e}")))?;
            hosts.push((one, options));
        }
        Ok(Hosts { url: url.to_owned(), hosts, writable_only: true })
    }

    /// A URL of one host, read as it always was.
    fn one(url: &str) -> Result<Hosts, ConnectError> {
        check_url(url)?;
        let options =
            connect_options(url).map_err(|e| ConnectError::InvalidUrl { url: redact(url), reason: e.to_string() })?;
        Ok(Hosts { url: url.to_owned(), hosts: vec![(url.to_owned(), options)], writable_only: false })
    }

    /// Whether the process must find, and follow, the server that accepts writes.
    pub fn writable_only(&self) -> bool {
        self.writable_only
    }

    /// The options of the first host, where a pool starts.
    pub fn first(&self) -> PgConnectOptions {
        self.hosts[0].1.clone()
    }

    /// `host:port` of the `index`th host, for logs.
    fn name(&self, index: usize) -> String {
        let options = &self.hosts[index].1;
        format!("{}:{}", options.get_host(), options.get_port())
    }

    /// The URL of the server to write to: the only one, unchecked; or, with a list, the
    /// first host that accepts writes, each tried in turn within `wait`.
    pub async fn primary(&self, wait: Duration) -> Result<String, ConnectError> {
        if !self.writable_only {
            return Ok(self.hosts[0].0.clone());
        }
        let (index, connection) = self.find(wait).await?;
        let _ = connection.close().await;
        Ok(self.hosts[index].0.clone())
    }

    /// The first host, in the order given, that accepts writes, and a connection to it.
    async fn find(&self, wait: Duration) -> Result<(usize, PgConnection), ConnectError> {
        let mut why = vec![];
        for (index, (url, options)) in self.hosts.iter().enumerate() {
            match probe(options, wait).await {
                Ok((connection, false)) => return Ok((index, connection)),
                Ok((connection, true)) => {
                    let _ = connection.close().await;
                    why.push(format!("{} is a standby (in recovery)", self.name(index)));
                }
                Err(e) => why.push(one_line(&ConnectError::from_sqlx(url, e, wait))),
            }
        }
        Err(ConnectError::NoPrimary { url: redact(&self.url), hosts: why.join("; ") })
    }
}

/// Connects to one server within `wait` and asks whether it is in recovery (a standby).
/// A database that does not exist yet is looked for on the `postgres` database instead: it
/// is created later, on the server that accepts writes.
async fn probe(options: &PgConnectOptions, wait: Duration) -> Result<(PgConnection, bool), sqlx::Error> {
    let connect = |options: PgConnectOptions| async move {
        timeout(wait, options.connect()).await.map_err(|_| sqlx::Error::PoolTimedOut)?
    };
    let mut connection = match connect(options.clone()).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            connect(options.clone().database("postgres")).await?
        }
        other => other?,
    };
    let standby = timeout(wait, in_recovery(&mut connection)).await.map_err(|_| sqlx::Error::PoolTimedOut)??;
    Ok((connection, standby))
}

/// Whether the server is in recovery: a standby, which accepts no writes.
async fn in_recovery(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select pg_is_in_recovery() as "in_recovery!""#).fetch_one(connection).await
}

/// The check of every new connection of a pool that must use the server accepting writes:
/// one to a standby is refused (the pool closes it and tries again).
pub(super) async fn refuse_standby(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    if in_recovery(connection).await? {
        let standby = std::io::Error::other("the server is a standby (in recovery): it accepts no writes");
        return Err(sqlx::Error::Io(standby));
    }
    Ok(())
}

/// Keeps `pool`'s new connections going to the server that accepts writes, until the pool
/// is closed: checks every [`CHECK_EVERY`] on a connection of its own, and when that server
/// is lost or in recovery, looks for the first host that accepts writes.
pub(super) async fn follow(pool: PgPool, hosts: Hosts, wait: Duration) {
    let mut closed = pool.close_event();
    let mut using: Option<usize> = None;
    let mut watch: Option<PgConnection> = None;
    let mut said = String::new();
    loop {
        let fine = match watch.as_mut() {
            Some(connection) => matches!(timeout(wait, in_recovery(connection)).await, Ok(Ok(false))),
            None => false,
        };
        if !fine {
            if watch.take().is_some()
                && let Some(index) = using
            {
                warn!(host = hosts.name(index), "Lost the database server that accepts writes; looking for it.");
            }
            match hosts.find(wait).await {
                Ok((index, connection)) => {
                    if using != Some(index) {
                        pool.set_connect_options(hosts.hosts[index].1.clone());
                        match using {
                            Some(_) => {
                                info!(host = hosts.name(index), "Using the database server that accepts writes.")
                            }
                            None => debug!(host = hosts.name(index), "Using the database server that accepts writes."),
                        }
                        using = Some(index);
                    }
                    watch = Some(connection);
                    said.clear();
                }
                Err(e) => {
                    let line = one_line(&e);
                    if line != said {
                        warn!(error = line, "No database server accepts writes; trying again every second.");
                        said = line;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = &mut closed => break,
        }
    }
    if let Some(connection) = watch {
        let _ = connection.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(url: &str) -> Vec<String> {
        Hosts::parse(url).unwrap().hosts.into_iter().map(|(url, _)| url).collect()
    }

    #[test]
    fn a_list_of_hosts_is_one_url_per_host() {
        let hosts = Hosts::parse(
            "postgres://app:s3cret@db1:5432,db2:5433/ecpat?target_session_attrs=read-write&sslmode=require",
        )
        .unwrap();
        assert!(hosts.writable_only());
        assert_eq!(
            hosts.hosts.iter().map(|(url, _)| url.as_str()).collect::<Vec<_>>(),
            [
                "postgres://app:s3cret@db1:5432/ecpat?sslmode=require",
                "postgres://app:s3cret@db2:5433/ecpat?sslmode=require"
            ]
        );
        assert_eq!((hosts.name(0), hosts.name(1)), ("db1:5432".to_owned(), "db2:5433".to_owned()));
        assert_eq!(urls("postgresql://db1,[::1]:5433/x"), ["postgresql://db1/x", "postgresql://[::1]:5433/x"]);
        assert_eq!(urls("postgres://u@h1:1,h2:2"), ["postgres://u@h1:1", "postgres://u@h2:2"]);
    }

    #[test]
    fn one_host_is_read_as_before() {
        let hosts = Hosts::parse("postgres://postgres@127.0.0.1:5432/ecpat").unwrap();
        assert!(!hosts.writable_only());
        assert_eq!(urls("postgres://postgres@127.0.0.1:5432/ecpat"), ["postgres://postgres@127.0.0.1:5432/ecpat"]);
        let asks = Hosts::parse("postgres://postgres@127.0.0.1/ecpat?target_session_attrs=primary").unwrap();
        assert!(asks.writable_only());
        assert_eq!(asks.hosts[0].0, "postgres://postgres@127.0.0.1/ecpat");
    }

    #[test]
    fn a_list_the_worker_cannot_use_is_an_invalid_url_without_its_password() {
        for (url, says) in [
            ("postgres://u:s3cret@h1,h2/x?target_session_attrs=read-only", "target_session_attrs=read-only"),
            ("postgres://u:s3cret@h1,,h2/x", "an empty host"),
            ("postgres://u:s3cret@h1,h2:port/x", "h2:port"),
            ("mysql://u:s3cret@h1,h2/x", "postgres://"),
        ] {
            let error = Hosts::parse(url).unwrap_err().to_string();
            assert!(error.starts_with("invalid PostgreSQL URL") && error.contains(says), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
