//! Settings: the defaults built into the binary (`config/default.toml`), then the
//! configuration folder's `default.toml` and `local.toml` if present, then the environment
//! (`ECPAT_<SECTION>__<KEY>`); `DATABASE_URL`, `AMQP_URL` and `HTTP_ADDR` always win.
//! Relative paths in the settings are relative to the configuration folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything the service can be told.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub database: Database,
    pub amqp: Amqp,
    pub consumer: Consumer,
    pub http: Http,
    pub log: Log,
    #[serde(default)]
    pub catalogue: CataloguePath,
    pub collector: Collector,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Database {
    pub url: String,
    pub max_connections: u32,
    /// How long opening a connection may take (a server that accepts TCP and never answers
    /// must not hang a command).
    pub connect_timeout_secs: u64,
}

impl Database {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// The broker and the topology of docs/events.md.
#[derive(Clone, Debug, Deserialize)]
pub struct Amqp {
    pub url: String,
    pub exchange: String,
    pub queue: String,
    pub binding_key: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// The alternate exchange of `exchange`: what matches no binding goes there, and on to `queue`.
    pub unrouted_exchange: String,
    pub delivery_limit: i64,
    pub prefetch: u16,
    /// How long connecting (TCP, TLS and the AMQP handshake) may take.
    pub connect_timeout_secs: u64,
}

impl Amqp {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Consumer {
    pub batch_size: usize,
    pub batch_timeout_ms: u64,
    /// A batch also goes when no message came for this long.
    pub batch_idle_ms: u64,
    /// Events the worker lets the broker hand it at once: its prefetch, in messages, is set
    /// from the events per message it sees (at most `amqp.prefetch`).
    pub events_in_flight: usize,
    /// Message bytes the worker lets the broker hand it at once, in MiB: the prefetch is also
    /// set from the mean size of the messages it sees, so that large events cannot fill
    /// its memory.
    pub mib_in_flight: usize,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Http {
    pub addr: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Log {
    pub format: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CataloguePath {
    /// A catalogue file replacing the one built into the binary.
    pub path: Option<PathBuf>,
}

/// The social-metrics collector (`ecpat-indicators collect`). Platform tokens are not
/// settings: they come from the environment only (see `collector::Tokens`).
#[derive(Clone, Debug, Deserialize)]
pub struct Collector {
    /// How often the loop looks for posts that are due.
    pub tick_secs: u64,
    /// Poll interval while a post is young, and how long it stays young.
    pub young_interval_secs: u64,
    pub young_for_days: u32,
    /// Poll interval after that, until the post is `stop_after_days` old.
    pub old_interval_secs: u64,
    pub stop_after_days: u32,
    /// Requests in flight at once, per platform.
    pub concurrency: usize,
    pub request_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Retries of one request after a 5xx or a network error, with jittered exponential backoff.
    pub retries: u32,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// How long a platform rests after a 429 that names no reset time.
    pub rate_limit_default_secs: u64,
    /// How long a platform rests after its retries are exhausted (doubling, up to the max).
    pub outage_initial_secs: u64,
    pub outage_max_secs: u64,
    pub user_agent: String,
    /// API base URLs, overridable for proxies and tests.
    pub mastodon_url: String,
    pub youtube_url: String,
    pub x_url: String,
    pub facebook_url: String,
}

/// The defaults, built in so that the binary runs from any folder.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// The catalogue's file in the configuration folder, read instead of the built-in one when
/// present and `catalogue.path` is not set.
const CATALOGUE: &str = "indicators.toml";

impl Settings {
    /// Loads the built-in defaults, the files of `dir` (usually `config`; none is required)
    /// and the environment; relative paths are then taken relative to `dir`. Without a
    /// `catalogue.path`, the catalogue is `dir/indicators.toml` if present, else built in.
    pub fn load(dir: &Path) -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(config::File::from(dir.join("local.toml")).required(false))
            .add_source(config::Environment::with_prefix("ECPAT").prefix_separator("_").separator("__"));
        for (var, key) in [("DATABASE_URL", "database.url"), ("AMQP_URL", "amqp.url"), ("HTTP_ADDR", "http.addr")] {
            if let Ok(value) = std::env::var(var) {
                builder = builder.set_override(key, value)?;
            }
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        let catalogue = &mut settings.catalogue.path;
        match catalogue {
            Some(path) if path.is_relative() => *path = dir.join(&*path),
            Some(_) => {}
            // The folder's own catalogue, like its other files, overrides the built-in one.
            None => *catalogue = Some(dir.join(CATALOGUE)).filter(|path| path.is_file()),
        }
        Ok(settings)
    }
}

/// A URL with its password replaced by `***`, for logs and error messages: the password of
/// the user information, with or without `//` after the scheme (`amqp:user:pass@host` is
/// malformed but must not leak either), and any `password` query parameter. A user name
/// without a password is shown as it is.
///
/// Written by hand rather than with the `url` crate: a password with an unescaped `/` makes
/// it read `postgres://u:12/s@db` as host `u`, port 12 and a path holding the password.
pub fn redact(url: &str) -> String {
    let Some(colon) = url.find(':') else { return url.to_owned() };
    let start = if url[colon + 1..].starts_with("//") { colon + 3 } else { colon + 1 };
    let (head, rest) = url.split_at(start);
    // The user information ends at the last `@` before the query, so that a password with
    // an unescaped `/`, `#` or `@` is hidden too.
    let (userinfo, tail) = match rest[..rest.find('?').unwrap_or(rest.len())].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), &rest[at + 1..]),
            None => (format!("{}@", &rest[..at]), &rest[at + 1..]),
        },
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}{}", pairs.join("&"), fragment.map_or(String::new(), |f| format!("#{f}")))
        }
        None => tail.to_owned(),
    };
    format!("{head}{userinfo}{tail}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Settings, redact};

    #[test]
    fn the_defaults_need_no_file_and_the_catalogue_follows_the_configuration_folder() {
        let settings = Settings::load(Path::new("/no/such/folder")).expect("the built-in defaults suffice");
        assert_eq!(settings.database.connect_timeout_secs, 10);
        assert_eq!(settings.amqp.connect_timeout_secs, 10);
        assert_eq!(settings.catalogue.path, None, "the built-in catalogue");

        let dir = std::env::temp_dir().join(format!("ecpat-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("local.toml"), "[catalogue]\npath = \"ours/indicators.toml\"\n").unwrap();
        let settings = Settings::load(&dir).unwrap();
        assert_eq!(settings.catalogue.path, Some(dir.join("ours/indicators.toml")));

        std::fs::remove_file(dir.join("local.toml")).unwrap();
        std::fs::write(dir.join("indicators.toml"), "").unwrap();
        let settings = Settings::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(settings.catalogue.path, Some(dir.join("indicators.toml")), "the folder's own catalogue");
    }

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/ecpat"), "postgres://app:***@db:5432/ecpat");
        assert_eq!(redact("amqps://u:p%40ss@broker/%2f?x=1"), "amqps://u:***@broker/%2f?x=1");
        assert_eq!(redact("amqp://127.0.0.1:5672/%2f"), "amqp://127.0.0.1:5672/%2f");
        assert_eq!(redact("amqp:u:s3cret@broker/%2f"), "amqp:u:***@broker/%2f");
        assert_eq!(
            redact("postgres://app@db/ecpat?sslmode=require&password=s3cret&x=1#f"),
            "postgres://app@db/ecpat?sslmode=require&password=***&x=1#f"
        );
        assert_eq!(redact("postgres:///ecpat?PASSWORD=s3cret"), "postgres:///ecpat?PASSWORD=***");
        assert_eq!(redact("postgres://u:p/a#s@s@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn a_user_without_a_password_is_shown_as_given() {
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("amqp://guest@127.0.0.1:5672/%2f"), "amqp://guest@127.0.0.1:5672/%2f");
        assert_eq!(redact("postgres://app:@db/x"), "postgres://app:***@db/x");
    }
}
