//! Settings: the defaults built into the binary (`config/default.toml`), then the
//! configuration folder's `default.toml` and `local.toml` if present, then the environment
//! (`ECPAT_<SECTION>__<KEY>`); `DATABASE_URL`, `AMQP_URL` and `HTTP_ADDR` always win.
//! Relative paths in the settings are relative to the configuration folder.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use url::{Position, Url};

/// Everything the service can be told.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub database: Database,
    pub amqp: Amqp,
    pub consumer: Consumer,
    pub http: Http,
    pub log: Log,
    pub collector: Collector,
    /// Producer rules, by RabbitMQ user (`[producers.<user>]`); none: anyone may publish anything.
    #[serde(default)]
    pub producers: crate::producers::Producers,
}

/// The database. Its URL may hold a password: `Debug` shows it [`redact`]ed.
#[derive(Clone, Deserialize)]
pub struct Database {
    pub url: String,
    pub max_connections: u32,
    /// How long opening a connection may take (a server that accepts TCP and never answers
    /// must not hang a command).
    pub connect_timeout_secs: u64,
    /// The API's own pool for the reads that still query (evidence, exports, the report,
    /// rejections), apart from the worker's: its size.
    pub reader_connections: u32,
    /// The longest a statement of that pool may run, in milliseconds.
    pub reader_statement_timeout_ms: u64,
}

impl Database {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// The broker and the topology of docs/events.md. Its URLs may hold a password: `Debug`
/// shows them [`redact`]ed.
#[derive(Clone, Deserialize)]
pub struct Amqp {
    /// The broker, when `urls` names none.
    pub url: String,
    /// The nodes of a cluster, tried in turn (see [`Amqp::urls`]): a list, or one string
    /// with commas between URLs (as the environment gives it).
    #[serde(default, deserialize_with = "url_list")]
    pub urls: Vec<String>,
    pub exchange: String,
    pub queue: String,
    pub binding_key: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// The alternate exchange of `exchange`: what matches no binding goes there, and on to `queue`.
    pub unrouted_exchange: String,
    pub delivery_limit: i64,
    /// The nodes a new quorum queue gets (`x-quorum-initial-group-size`), passed only above 1.
    pub quorum_initial_group_size: u32,
    pub prefetch: u16,
    /// How long connecting (TCP, TLS and the AMQP handshake) may take.
    pub connect_timeout_secs: u64,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("reader_connections", &self.reader_connections)
            .field("reader_statement_timeout_ms", &self.reader_statement_timeout_ms)
            .finish()
    }
}

impl Amqp {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The brokers to connect to, in the order they are tried: `urls`, or `url` alone when
    /// `urls` is empty. Never empty.
    pub fn urls(&self) -> &[String] {
        if self.urls.is_empty() { std::slice::from_ref(&self.url) } else { &self.urls }
    }

    /// Every URL logs in as the same user to the same virtual host: the nodes of one
    /// cluster share both, and publishers set `user_id` to that user.
    /// (A single URL is read when connecting, which says what is wrong with it.)
    fn check_urls(&self) -> Result<(), String> {
        if self.urls().len() < 2 {
            return Ok(());
        }
        let identity = |url: &str| match url.parse::<lapin::uri::AMQPUri>() {
            Ok(uri) => Ok((uri.authority.userinfo.username, uri.vhost)),
            Err(_) => Err(format!("amqp.urls: {} is not an amqp:// or amqps:// URL", redact(url))),
        };
        let urls = self.urls();
        let first = identity(&urls[0])?;
        for url in &urls[1..] {
            if identity(url)? != first {
                return Err(format!(
                    "amqp.urls: {} and {} name another user or virtual host; the nodes of a cluster share them",
                    redact(&urls[0]),
                    redact(url)
                ));
            }
        }
        Ok(())
    }
}

/// `amqp.urls` as a list, or as one string with commas between the URLs (a comma within a
/// URL, in a password, is written `%2C`); blank items are left out.
fn url_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => text.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(items) => items,
    };
    Ok(items.into_iter().map(|url| url.trim().to_owned()).filter(|url| !url.is_empty()).collect())
}

impl fmt::Debug for Amqp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Amqp")
            .field("url", &redact(&self.url))
            .field("urls", &self.urls.iter().map(|url| redact(url)).collect::<Vec<_>>())
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("binding_key", &self.binding_key)
            .field("dead_letter_exchange", &self.dead_letter_exchange)
            .field("dead_letter_queue", &self.dead_letter_queue)
            .field("unrouted_exchange", &self.unrouted_exchange)
            .field("delivery_limit", &self.delivery_limit)
            .field("quorum_initial_group_size", &self.quorum_initial_group_size)
            .field("prefetch", &self.prefetch)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
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
    /// Heavy requests (evidence, exports, the report) served at once; more are answered
    /// 503 with `Retry-After`.
    pub heavy_requests: usize,
    /// How long at most the evidence or the CSV export is served after the values moved on
    /// (and never longer than 20 times its read took), in ms; 0: always read at the
    /// current version.
    pub heavy_max_age_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Log {
    pub format: String,
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

impl Settings {
    /// Loads the built-in defaults, the files of `dir` (usually `config`; none is required)
    /// and the environment.
    pub fn load(dir: &Path) -> Result<Self, config::ConfigError> {
        Self::load_with(dir, std::env::vars().collect())
    }

    /// [`Settings::load`] with `vars` as the environment.
    fn load_with(dir: &Path, vars: HashMap<String, String>) -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(config::File::from(dir.join("local.toml")).required(false))
            .add_source(
                config::Environment::with_prefix("ECPAT")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(vars.clone().into_iter().collect())),
            );
        for (var, key) in [("DATABASE_URL", "database.url"), ("AMQP_URL", "amqp.url"), ("HTTP_ADDR", "http.addr")] {
            if let Some(value) = vars.get(var) {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        // `AMQP_URL` names one broker, `AMQP_URLS` several (commas between them); either
        // wins over the files' `amqp.url` and `amqp.urls`.
        match (vars.get("AMQP_URL"), vars.get("AMQP_URLS")) {
            (Some(_), Some(_)) => {
                return Err(config::ConfigError::Message(
                    "AMQP_URL and AMQP_URLS are both set: set AMQP_URLS alone for several brokers".into(),
                ));
            }
            (Some(_), None) => builder = builder.set_override("amqp.urls", Vec::<String>::new())?,
            (None, Some(urls)) => builder = builder.set_override("amqp.urls", urls.as_str())?,
            (None, None) => {}
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.amqp.check_urls().map_err(config::ConfigError::Message)?;
        Ok(settings)
    }
}

/// A URL with its password replaced by `***`, for logs and error messages: the password of
/// the user information and any `password` query parameter. A user name without a password
/// is shown as it is.
///
/// The `url` crate reads the URL, unless it does not parse or leaves an `@` after the host:
/// a password with an unescaped `/` makes `postgres://u:12/s@db` read as host `u`, port 12
/// and a path holding the rest of the password. Those go to [`redact_malformed`].
pub fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.has_authority() && !url[Position::BeforePath..].contains('@') => {
            // The URL standard drops an empty password (`user:@host`): it is marked all the same.
            if url.password().is_some() || text.contains(":@") {
                // Only a URL without a host cannot take one, and it has no password either.
                let _ = url.set_password(Some("***"));
            }
            if let Some(query) = url.query().map(redact_query) {
                url.set_query(Some(&query));
            }
            url.into()
        }
        _ => redact_malformed(text),
    }
}

/// [`redact`] for text that is no well-formed URL, with or without `//` after the scheme
/// (`amqp:user:pass@host` must not leak either): the user information ends at the last `@`
/// before the query, so that a password with an unescaped `/`, `#` or `@` is hidden too.
fn redact_malformed(text: &str) -> String {
    let Some(colon) = text.find(':') else { return text.to_owned() };
    let start = if text[colon + 1..].starts_with("//") { colon + 3 } else { colon + 1 };
    let (head, rest) = text.split_at(start);
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(rest, query)| (rest, Some(query)));
    let rest = match rest.rfind('@').map(|at| rest.split_at(at)) {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***{host}"),
            None => format!("{userinfo}{host}"),
        },
        None => rest.to_owned(),
    };
    match query {
        Some(query) => format!("{head}{rest}?{}", redact_query(query)),
        None => format!("{head}{rest}"),
    }
}

/// A query string (and fragment, if any) with the value of every `password` parameter
/// replaced by `***`.
fn redact_query(query: &str) -> String {
    let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    match fragment {
        Some(fragment) => format!("{}#{fragment}", pairs.join("&")),
        None => pairs.join("&"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::{Settings, redact};

    /// The settings from a configuration folder holding `local` as `local.toml`, and the
    /// environment `vars` (and nothing else).
    fn load(local: &str, vars: &[(&str, &str)]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("local.toml"), local).unwrap();
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_with(dir.path(), vars).map_err(|e| e.to_string())
    }

    fn urls(settings: &Settings) -> Vec<&str> {
        settings.amqp.urls().iter().map(String::as_str).collect()
    }

    #[test]
    fn one_broker_by_default_and_with_amqp_url() {
        let settings = load("", &[]).unwrap();
        assert_eq!(urls(&settings), ["amqp://127.0.0.1:5672/%2f"]);
        assert_eq!(settings.amqp.quorum_initial_group_size, 1);
        let settings = load("", &[("AMQP_URL", "amqp://rabbit:5672/%2f")]).unwrap();
        assert_eq!(urls(&settings), ["amqp://rabbit:5672/%2f"]);
        let settings = load("[amqp]\nurl = \"amqp://from-file/%2f\"\n", &[]).unwrap();
        assert_eq!(urls(&settings), ["amqp://from-file/%2f"]);
    }

    #[test]
    fn several_brokers_from_a_file_as_a_list_or_a_string() {
        let listed = "[amqp]\nurls = [\"amqp://r1:5672/%2f\", \"amqp://r2:5672/%2f\", \"amqp://r3:5672/%2f\"]\n";
        assert_eq!(
            urls(&load(listed, &[]).unwrap()),
            ["amqp://r1:5672/%2f", "amqp://r2:5672/%2f", "amqp://r3:5672/%2f"]
        );
        let string = "[amqp]\nurls = \"amqp://r1:5672/%2f, amqp://r2:5672/%2f\"\nquorum_initial_group_size = 3\n";
        let settings = load(string, &[]).unwrap();
        assert_eq!(urls(&settings), ["amqp://r1:5672/%2f", "amqp://r2:5672/%2f"]);
        assert_eq!(settings.amqp.quorum_initial_group_size, 3);
    }

    #[test]
    fn several_brokers_from_the_environment_with_commas_between() {
        for var in ["AMQP_URLS", "ECPAT_AMQP__URLS"] {
            let settings = load("", &[(var, " amqp://r1:5681/%2f,amqp://r2:5682/%2f,, amqp://r3:5683/%2f ")]).unwrap();
            assert_eq!(urls(&settings), ["amqp://r1:5681/%2f", "amqp://r2:5682/%2f", "amqp://r3:5683/%2f"], "{var}");
        }
        let settings = load("", &[("ECPAT_AMQP__QUORUM_INITIAL_GROUP_SIZE", "3")]).unwrap();
        assert_eq!(settings.amqp.quorum_initial_group_size, 3);
    }

    #[test]
    fn the_environment_wins_over_the_files_and_names_one_list() {
        let file = "[amqp]\nurls = [\"amqp://r1/%2f\", \"amqp://r2/%2f\"]\n";
        assert_eq!(urls(&load(file, &[("AMQP_URL", "amqp://solo/%2f")]).unwrap()), ["amqp://solo/%2f"]);
        assert_eq!(urls(&load(file, &[("AMQP_URLS", "amqp://r9/%2f")]).unwrap()), ["amqp://r9/%2f"]);
        let both = load("", &[("AMQP_URL", "amqp://a/%2f"), ("AMQP_URLS", "amqp://b/%2f")]).unwrap_err();
        assert!(both.contains("AMQP_URL and AMQP_URLS are both set"), "{both}");
    }

    #[test]
    fn the_brokers_of_a_list_share_one_user_and_virtual_host() {
        // No path and `/%2f` are both the default virtual host; no user is guest.
        assert!(load("", &[("AMQP_URLS", "amqp://r1:5672,amqp://guest@r2:5672/%2f")]).is_ok());
        let users = load("", &[("AMQP_URLS", "amqp://app:s3cret@r1/%2f,amqp://other:s3cret@r2/%2f")]).unwrap_err();
        assert!(users.contains("another user or virtual host") && !users.contains("s3cret"), "{users}");
        let vhosts = load("", &[("AMQP_URLS", "amqp://r1/%2f,amqp://r2/indicators")]).unwrap_err();
        assert!(vhosts.contains("another user or virtual host"), "{vhosts}");
        let bad = load("", &[("AMQP_URLS", "amqp://r1/%2f,http://u:s3cret@r2/")]).unwrap_err();
        assert!(bad.contains("not an amqp:// or amqps:// URL") && !bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn a_list_of_brokers_never_shows_a_password_in_debug_output() {
        let settings = load("", &[("AMQP_URLS", "amqp://app:s3cret@r1/%2f,amqp://app:s3cret@r2/%2f")]).unwrap();
        let shown = format!("{:?}", settings.amqp);
        assert!(!shown.contains("s3cret") && shown.contains("amqp://app:***@r2/%2f"), "{shown}");
    }

    #[test]
    fn the_defaults_need_no_file() {
        let settings = Settings::load(Path::new("/no/such/folder")).expect("the built-in defaults suffice");
        assert_eq!(settings.database.connect_timeout_secs, 10);
        assert_eq!(settings.amqp.connect_timeout_secs, 10);
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
        assert_eq!(redact("postgres://u:12/s@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("postgres://u:p@ss@db/x?password=a#b"), "postgres://u:***@db/x?password=***#b");
        assert_eq!(redact("amqp://u:s3cret@[::1]:5672/%2f"), "amqp://u:***@[::1]:5672/%2f");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn settings_never_show_a_password_in_debug_output() {
        let mut settings = Settings::load(Path::new("/no/such/folder")).unwrap();
        settings.database.url = "postgres://app:s3cret@db/x".into();
        settings.amqp.url = "amqp://guest:s3cret@broker/%2f".into();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db/x") && shown.contains("amqp://guest:***@broker/%2f"), "{shown}");
    }

    #[test]
    fn a_user_without_a_password_is_shown_as_given() {
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("amqp://guest@127.0.0.1:5672/%2f"), "amqp://guest@127.0.0.1:5672/%2f");
        assert_eq!(redact("postgres://app:@db/x"), "postgres://app:***@db/x");
    }
}
