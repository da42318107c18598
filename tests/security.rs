//! Security: SQL only with bound parameters, a read-only API, the optional API token,
//! TLS to PostgreSQL and RabbitMQ through the URLs, and passwords that never show in logs,
//! error messages or API answers. Real servers and real worker processes throughout.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestEnv, Worker, plain_publication as publication};
use ecpat_indicators::broker;
use ecpat_indicators::config::Settings;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// A password no log line or answer may ever contain.
const PASSWORD: &str = "Pw-LeakCanary-7f3a9";
const TOKEN: &str = "api-token-4b1d8c2e9f";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sql_is_written_as_checked_literals_with_bound_parameters() {
    let mut files = vec![];
    rust_files(&crate_dir().join("src"), &mut files);
    // Only sqlx's macros (`query!`, `query_as!`, `query_scalar!`): their SQL must be a
    // literal, checked against the schema at build time, and every value is a bound
    // parameter. The functions that take a runtime string are never used.
    let runtime_sql = [
        "sqlx::query(",
        "sqlx::query_as(",
        "sqlx::query_scalar(",
        "sqlx::query_with(",
        "sqlx::raw_sql(",
        "AssertSqlSafe",
        "QueryBuilder",
        ".execute(\"",
        ".fetch_one(\"",
        ".fetch_all(\"",
    ];
    let sql_words = ["select ", "insert ", "update ", "delete ", " from ", " where ", "drop ", "truncate "];
    let mut problems = vec![];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(crate_dir()).unwrap().display().to_string();
        for (number, line) in text.lines().enumerate() {
            if let Some(found) = runtime_sql.iter().find(|p| line.contains(*p)) {
                problems.push(format!("{name}:{}: {found}", number + 1));
            }
            // In the store (where all SQL lives), `format!` only builds error messages.
            let lower = line.to_lowercase();
            if name.starts_with("src/store")
                && lower.contains("format!(")
                && sql_words.iter().any(|w| lower.contains(w))
            {
                problems.push(format!("{name}:{}: SQL built with format!", number + 1));
            }
        }
    }
    assert!(problems.is_empty(), "SQL built at run time:\n{}", problems.join("\n"));
    let macros: usize = files.iter().map(|f| std::fs::read_to_string(f).unwrap().matches("sqlx::query").count()).sum();
    assert!(macros > 20, "the check must see the store's queries ({macros} found)");
}

/// Every route of the router, read from its source so that a new route is covered too.
fn routes() -> Vec<String> {
    let mut files = vec![];
    rust_files(&crate_dir().join("src/api"), &mut files);
    let mut routes = vec![];
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for piece in text.split(".route(\"").skip(1) {
            let path = piece.split('"').next().unwrap();
            routes.push(path.replace("{code}", "KE1"));
        }
    }
    routes.sort();
    assert!(routes.len() >= 14 && routes.contains(&"/api/v1/stream".to_owned()), "{routes:?}");
    routes
}

/// The write route, served only with `ECPAT_WRITE_TOKEN` set (tests/write.rs covers it).
const WRITE_ROUTE: &str = "/api/v1/events";

/// The status of a request; the body is not read (the stream never ends).
async fn status(method: reqwest::Method, url: &str, bearer: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().request(method, url).header("content-type", "application/json");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.body(r#"{"indicator": "KE1", "value": 999}"#).send().await.expect("the API answers").status().as_u16()
}

#[tokio::test]
async fn the_api_refuses_every_method_that_could_change_something() {
    let mut env = TestEnv::new("readonly").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    env.publish(&[publication("p1")]).await;
    env.publish_raw(&[("org.ecpat.x".into(), b"not json".to_vec())]).await;
    env.wait_for_counts(1, 1, WAIT).await;
    let values = env.values().await;
    let http = env.worker(w).http.clone();

    let mut paths = routes();
    paths.push("/api/v1/no-such-thing".into());
    for path in &paths {
        for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::PATCH, reqwest::Method::DELETE] {
            let code = status(method.clone(), &format!("http://{http}{path}"), None).await;
            // Without `ECPAT_WRITE_TOKEN` the write route does not exist (tests/write.rs).
            let expected = if path.contains("no-such-thing") || path == WRITE_ROUTE { 404 } else { 405 };
            assert_eq!(code, expected, "{method} {path}");
        }
    }

    assert_eq!(env.counts().await, (1, 1), "nothing stored or removed");
    assert_eq!(env.values().await, values, "no tally changed");
    env.cleanup().await;
}

#[tokio::test]
async fn with_a_token_set_every_endpoint_but_the_probes_requires_it() {
    let env = TestEnv::new("token").await;
    let worker = Worker::spawn(&env.settings, &[("ECPAT_API_TOKEN", TOKEN)]);
    worker.wait_ready(WAIT).await;
    let base = format!("http://{}", worker.http);
    let get = reqwest::Method::GET;

    for probe in ["/healthz", "/readyz"] {
        assert_eq!(status(get.clone(), &format!("{base}{probe}"), None).await, 200, "{probe} stays open");
    }
    // The page's scripts and style sheet hold no data, and the page loads them without its query string.
    let (assets, mut guarded): (Vec<String>, Vec<String>) = routes()
        .into_iter()
        .filter(|p| !p.starts_with("/healthz") && !p.starts_with("/readyz"))
        .partition(|p| p.starts_with("/assets/"));
    assert!(assets.len() >= 3 && assets.contains(&"/assets/app.js".to_owned()), "{assets:?}");
    for asset in &assets {
        assert_eq!(status(get.clone(), &format!("{base}{asset}"), None).await, 200, "{asset}");
    }
    guarded.push("/api/v1/no-such-thing".into());
    for path in &guarded {
        let url = format!("{base}{path}");
        assert_eq!(status(get.clone(), &url, None).await, 401, "{path} without a token");
        assert_eq!(status(get.clone(), &url, Some("api-token-4b1d8c2e9e")).await, 401, "{path} with a wrong token");
        assert_eq!(status(get.clone(), &url, Some("")).await, 401, "{path} with an empty token");
        let expected = if path.contains("no-such-thing") || path == WRITE_ROUTE { 404 } else { 200 };
        assert_eq!(status(get.clone(), &url, Some(TOKEN)).await, expected, "{path} with the token");
        let separator = if path.contains('?') { '&' } else { '?' };
        let with_query = format!("{url}{separator}access_token={TOKEN}");
        assert_eq!(status(get.clone(), &with_query, None).await, expected, "{path}?access_token=");
    }

    let response = reqwest::get(format!("{base}/api/v1/indicators")).await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let lower_case_scheme = reqwest::Client::new()
        .get(format!("{base}/api/v1/indicators?period=2019"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_case_scheme.status(), 200);
    let wrong_query = format!("{base}/api/v1/stream?access_token=nope");
    assert_eq!(status(get.clone(), &wrong_query, None).await, 401);
    assert!(!body.to_string().contains(TOKEN));
    drop(worker);
    env.cleanup().await;
}

#[tokio::test]
async fn postgresql_connections_use_tls_when_the_url_requires_it() {
    let env = TestEnv::new("pg_tls").await;
    let admin = &env.pool;
    let server_ssl: String = sqlx::query_scalar("show ssl").fetch_one(admin).await.unwrap();
    assert_eq!(server_ssl, "on", "the local PostgreSQL serves TLS (Debian's snakeoil certificate)");

    let mut settings = env.settings.clone();
    settings.database.url = format!("{}?sslmode=require", env.settings.database.url);
    let pool = ecpat_indicators::app::migrate(&settings).await.expect("sslmode=require connects");
    let ssl: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetch_one(&pool).await.unwrap();
    assert!(ssl, "sslmode=require gives a TLS connection");
    pool.close().await;
    let plain = ecpat_indicators::store::connect(
        &format!("{}?sslmode=disable", env.settings.database.url),
        1,
        env.settings.database.connect_timeout(),
    )
    .unwrap();
    let ssl: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetch_one(&plain).await.unwrap();
    assert!(!ssl, "the check tells the two apart");
    plain.close().await;

    // verify-full checks the certificate: the self-signed snakeoil one is refused.
    let mut strict = env.settings.clone();
    strict.database.url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{}?sslmode=verify-full", env.name);
    let error = format!(
        "{:#}",
        ecpat_indicators::app::migrate(&strict).await.expect_err("an untrusted certificate is refused")
    );
    assert!(error.to_lowercase().contains("certificate") || error.to_lowercase().contains("tls"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");

    // A worker on sslmode=require consumes, stores and counts as usual, over TLS only.
    settings.database.url = format!("{}?sslmode=require&application_name=ecpat-tls-check", env.settings.database.url);
    let worker = Worker::spawn(&settings, &[]);
    worker.wait_ready(WAIT).await;
    env.publish(&[publication("tls-1")]).await;
    env.wait_for_counts(1, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 1);
    let (tls, plain): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where s.ssl), count(*) filter (where not s.ssl)
        from pg_stat_activity a join pg_stat_ssl s using (pid) where a.application_name = 'ecpat-tls-check'",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    assert!(tls >= 1, "the worker's connections are TLS");
    assert_eq!(plain, 0, "the worker has no plain-text connection to the database");
    drop(worker);
    env.cleanup().await;
}

#[tokio::test]
async fn an_amqps_url_is_accepted_and_fails_only_at_the_tls_handshake() {
    let mut settings = Settings::load(&crate_dir().join("config")).unwrap();
    // The local broker has no TLS listener: its plain port answers the TLS handshake with
    // an AMQP header, and 5671 (the amqps port) is closed.
    for url in
        [format!("amqps://guest:{PASSWORD}@127.0.0.1:5672/%2f"), format!("amqps://guest:{PASSWORD}@127.0.0.1/%2f")]
    {
        settings.amqp.url = url.clone();
        let error = broker::connect(&settings.amqp, "tls check").await.expect_err("no TLS listener here").to_string();
        let lower = error.to_lowercase();
        assert!(!lower.contains("scheme") && !lower.contains("parse"), "amqps is a supported scheme: {error}");
        assert!(error.contains("amqps://guest:***@127.0.0.1"), "{error}");
        assert!(!error.contains(PASSWORD), "{error}");
        if url.contains(":5672") {
            assert!(lower.contains("corrupt") || lower.contains("tls") || lower.contains("handshake"), "{error}");
        } else {
            assert!(lower.contains("refused"), "{error}");
        }
    }
}

// ---- Passwords -----------------------------------------------------------------------

/// A process whose standard output and error are collected as they come.
struct Captured {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Captured {
    fn spawn(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Captured {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"));
        command
            .args(args)
            .current_dir(crate_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "trace");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
        drop(input);
        let output = Arc::new(Mutex::new(String::new()));
        let readers: [Box<dyn Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for mut reader in readers {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        Captured { child, output }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits for the exit (killing after `timeout`), then for the pipes to drain.
    fn finish(mut self, timeout: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                break self.child.wait().unwrap().code();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        (status, self.text())
    }

    async fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(start.elapsed() < timeout, "never logged {needle:?}:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn terminate(self) -> (Option<i32>, String) {
        // SAFETY: kill(2) with a valid pid and signal has no memory-safety preconditions.
        unsafe { kill(self.child.id() as i32, 15) };
        self.finish(Duration::from_secs(20))
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A PostgreSQL look-alike that asks for the password, then refuses it as the real one
/// does (SQLSTATE 28P01). Returns its port.
fn postgres_refusing_passwords() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || refuse_password(stream));
        }
    });
    port
}

fn refuse_password(mut stream: TcpStream) {
    let mut head = [0u8; 8];
    loop {
        if stream.read_exact(&mut head).is_err() {
            return;
        }
        let length = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let code = u32::from_be_bytes(head[4..].try_into().unwrap());
        if code == 80_877_103 {
            // SSLRequest: no TLS here.
            let _ = stream.write_all(b"N");
            continue;
        }
        let mut rest = vec![0u8; length.saturating_sub(8)];
        let _ = stream.read_exact(&mut rest);
        break;
    }
    // AuthenticationCleartextPassword, then read the PasswordMessage.
    let _ = stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
    let mut tag = [0u8; 5];
    if stream.read_exact(&mut tag).is_ok() {
        let mut body = vec![0u8; (u32::from_be_bytes(tag[1..].try_into().unwrap()) as usize).saturating_sub(4)];
        let _ = stream.read_exact(&mut body);
    }
    let mut fields = Vec::new();
    for (kind, text) in
        [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', "28P01"), (b'M', "password authentication failed for user \"app\"")]
    {
        fields.push(kind);
        fields.extend_from_slice(text.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    let _ = stream.write_all(&message);
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn assert_no_password(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD) && !text.contains("LeakCanary"), "{what} shows the password:\n{text}");
}

#[test]
fn one_shot_commands_never_show_a_password() {
    let refusing = postgres_refusing_passwords();
    let closed = closed_port();
    let good_amqp = common::amqp_url();
    let database_urls = [
        format!("postgres://app:{PASSWORD}@127.0.0.1:{refusing}/ecpat"),
        format!("postgres://app:{PASSWORD}@127.0.0.1:{closed}/ecpat"),
        format!("postgres://app@127.0.0.1:{refusing}/ecpat?sslmode=prefer&password={PASSWORD}"),
        format!("postgres://app:{PASSWORD}@127.0.0.1:{closed}/ecpat?sslmode=require"),
    ];
    for url in &database_urls {
        for args in [&["migrate"][..], &["recompute"], &["rejections", "list"]] {
            let run = Captured::spawn(args, &[("DATABASE_URL", url), ("AMQP_URL", &good_amqp)], b"");
            let (status, output) = run.finish(Duration::from_secs(30));
            assert_ne!(status, Some(0), "{args:?} must fail against {url}:\n{output}");
            assert!(output.contains("127.0.0.1"), "the error says where: {output}");
            assert_no_password(&format!("{args:?} with {url}"), &output);
        }
    }
    let amqp_urls = [
        format!("amqp://guest:{PASSWORD}@127.0.0.1:5672/%2f"),
        format!("amqp://guest:{PASSWORD}@127.0.0.1:{closed}/%2f"),
        format!("amqps://guest:{PASSWORD}@127.0.0.1:5672/%2f"),
        format!("amqp:guest:{PASSWORD}@127.0.0.1:5672/%2f"),
    ];
    let line = publication("x").to_string();
    for url in &amqp_urls {
        let run = Captured::spawn(&["publish", "-"], &[("AMQP_URL", url)], line.as_bytes());
        let (status, output) = run.finish(Duration::from_secs(30));
        assert_ne!(status, Some(0), "publish must fail against {url}:\n{output}");
        assert!(output.contains("RabbitMQ"), "the error says what failed: {output}");
        assert_no_password(&format!("publish with {url}"), &output);
    }
}

async fn get_text(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the API answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_worker_that_cannot_log_in_never_shows_a_password() {
    // The database refuses the password: the worker keeps retrying and is not ready.
    let refusing = postgres_refusing_passwords();
    let http = format!("127.0.0.1:{}", closed_port());
    let database_url = format!("postgres://app:{PASSWORD}@127.0.0.1:{refusing}/ecpat");
    let amqp_url = format!("amqp://guest:{PASSWORD}@127.0.0.1:5672/%2f");
    let env = [("DATABASE_URL", database_url.as_str()), ("AMQP_URL", amqp_url.as_str()), ("HTTP_ADDR", http.as_str())];
    let worker = Captured::spawn(&["run"], &env, b"");
    worker.wait_for("Cannot migrate yet", WAIT).await;
    for path in ["/readyz", "/api/v1/indicators", "/api/v1/rejections", "/api/v1/indicators/KE1/records", "/metrics"] {
        let (status, body) = get_text(&format!("http://{http}{path}")).await;
        assert!(status == 503 || (path == "/metrics" && status == 200), "{path}: {status} {body}");
        assert_no_password(path, &body);
    }
    let (status, output) = worker.terminate();
    assert_eq!(status, Some(0), "{output}");
    assert!(output.contains("password authentication failed"), "the cause is logged: {output}");
    assert_no_password("the worker's log (database refused)", &output);

    // The database is fine but the broker refuses the password.
    let test_env = TestEnv::new("password").await;
    let http = format!("127.0.0.1:{}", closed_port());
    let env = [
        ("DATABASE_URL", test_env.settings.database.url.as_str()),
        ("AMQP_URL", amqp_url.as_str()),
        ("HTTP_ADDR", http.as_str()),
        ("ECPAT_AMQP__QUEUE", test_env.settings.amqp.queue.as_str()),
        ("ECPAT_AMQP__EXCHANGE", test_env.settings.amqp.exchange.as_str()),
    ];
    let worker = Captured::spawn(&["run"], &env, b"");
    worker.wait_for("Lost the broker", WAIT).await;
    let (status, body) = get_text(&format!("http://{http}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_no_password("/readyz", &body);
    let (_, output) = worker.terminate();
    assert!(output.contains("amqp://guest:***@127.0.0.1:5672"), "the URL is logged redacted: {output}");
    assert_no_password("the worker's log (broker refused)", &output);
    test_env.cleanup().await;
}
