//! The binary as an operator meets it: no command hangs on a server that accepts TCP and
//! never answers, `run` stops on SIGTERM or SIGINT at every stage, errors are one line that
//! says what is wrong, and the binary runs from any folder. Every test runs the real binary
//! (its standard error is a pipe) against the real PostgreSQL and RabbitMQ, or a silent
//! listener.

mod common;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestEnv, Worker, amqp_url, database_base};
use ecpat_indicators::broker;
use futures::future::join_all;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

const BINARY: &str = env!("CARGO_BIN_EXE_ecpat-indicators");
const WAIT: Duration = Duration::from_secs(30);
/// What the documentation promises: `run` exits within 10 s of SIGTERM or SIGINT.
const STOP: Duration = Duration::from_secs(10);

/// A server that accepts TCP connections and never says a word.
struct Silent {
    port: u16,
    accepted: mpsc::UnboundedReceiver<()>,
    /// Connections the client has not closed.
    open: watch::Receiver<usize>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, accepted) = mpsc::unbounded_channel();
        let (counted, open) = watch::channel(0);
        let counted = Arc::new(counted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.send_modify(|n| *n += 1);
                let counted = counted.clone();
                // Reads what the client sends, answers nothing, until the client closes.
                tokio::spawn(async move {
                    let mut buffer = [0u8; 512];
                    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                    counted.send_modify(|n| *n -= 1);
                });
                let _ = sender.send(());
            }
        });
        Silent { port, accepted, open }
    }

    fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/ecpat", self.port)
    }

    fn amqp_url(&self) -> String {
        format!("amqp://127.0.0.1:{}/%2f", self.port)
    }

    /// Waits until the process under test has connected.
    async fn connected(&mut self) {
        timeout(WAIT, self.accepted.recv()).await.expect("the binary connects to the silent listener");
    }
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An empty folder of its own for a test.
fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ecpat-cli-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary with `args`, run from `dir` with only the variables given: nothing is
/// inherited from the shell (a `RUST_BACKTRACE` there would change what errors show).
fn binary(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in vars {
        command.env(key, value);
    }
    command
}

/// Runs a command to its end, which must come within `bound`: its status and standard error.
async fn finish(mut command: Command, bound: Duration) -> (ExitStatus, String) {
    let output = timeout(bound, command.output())
        .await
        .unwrap_or_else(|_| panic!("still running after {bound:?}: {command:?}"))
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Asserts that a command failed with exactly one line on standard error: `expected`.
fn assert_one_error_line(what: &str, status: ExitStatus, stderr: &str, expected: &str) {
    assert_eq!(status.code(), Some(1), "{what} exits with 1; stderr: {stderr}");
    assert_eq!(stderr, format!("error: {expected}\n"), "{what}");
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

/// The variables that point a worker at a test's database and broker names.
fn worker_vars(env: &TestEnv, http: &str) -> Vec<(&'static str, String)> {
    let mut vars = common::binary_env(&env.settings);
    vars.extend([("HTTP_ADDR", http.to_owned()), ("RUST_LOG", "warn".to_owned())]);
    vars
}

/// Starts `run` from `dir` with `args` before the subcommand, as a [`Worker`].
fn spawn_run(dir: &Path, args: &[&str], vars: &[(&'static str, String)], http: &str) -> Worker {
    let mut command = std::process::Command::new(BINARY);
    command.args(args).arg("run").current_dir(dir).env_clear().stdin(Stdio::null());
    for (key, value) in vars {
        command.env(key, value);
    }
    Worker { child: command.spawn().expect("the binary starts"), http: http.to_owned() }
}

#[tokio::test]
async fn every_database_command_gives_up_on_a_silent_server_with_one_clear_line() {
    let silent = Silent::start().await;
    let url = silent.database_url();
    let vars = [("DATABASE_URL", url.as_str()), ("ECPAT_DATABASE__CONNECT_TIMEOUT_SECS", "2")];
    let commands: [&[&str]; 7] = [
        &["migrate"],
        &["recompute"],
        &["rejections", "list"],
        &["rejections", "replay"],
        &["track", "list"],
        &["track", "add", "mastodon", "1", "--member", "ecpat-france", "--published-at", "2026-11-02T09:30:00+01:00"],
        &["track", "remove", "mastodon", "1"],
    ];
    let started = Instant::now();
    let outcomes =
        join_all(commands.iter().map(|args| finish(binary(&crate_dir(), args, &vars), Duration::from_secs(15)))).await;
    for (args, (status, stderr)) in commands.iter().zip(outcomes) {
        assert_one_error_line(
            &format!("{args:?}"),
            status,
            &stderr,
            &format!("PostgreSQL at {url} did not answer within 2 s"),
        );
    }
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn every_broker_command_gives_up_on_a_silent_server_with_one_clear_line() {
    let env = TestEnv::new("silent_broker").await;
    // A rejection to replay, so that `rejections replay` goes as far as the broker.
    sqlx::query(
        "insert into rejections (reason, detail, routing_key, headers, body, size, sha256, truncated)
         values ('not_json', 'test', 'org.ecpat.unknown', '{}', 'x', 1, 'test', false)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let dir = scratch("silent_broker");
    std::fs::write(dir.join("events.jsonl"), "{\"specversion\": \"1.0\"}\n").unwrap();
    let silent = Silent::start().await;
    let url = silent.amqp_url();
    let vars = [
        ("DATABASE_URL", env.settings.database.url.as_str()),
        ("AMQP_URL", url.as_str()),
        ("ECPAT_AMQP__CONNECT_TIMEOUT_SECS", "2"),
    ];
    let commands: [&[&str]; 2] = [&["publish", "events.jsonl"], &["rejections", "replay"]];
    let outcomes =
        join_all(commands.iter().map(|args| finish(binary(&dir, args, &vars), Duration::from_secs(15)))).await;
    for (args, (status, stderr)) in commands.iter().zip(outcomes) {
        assert_one_error_line(
            &format!("{args:?}"),
            status,
            &stderr,
            &format!("RabbitMQ at {url} did not answer within 2 s"),
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn run_stops_within_ten_seconds_of_sigterm_or_sigint_while_the_database_is_silent() {
    for name in ["TERM", "INT"] {
        let mut silent = Silent::start().await;
        let url = silent.database_url();
        let http = free_addr();
        // A timeout longer than the bound: the signal, not the timeout, must end the wait.
        let vars = [
            ("DATABASE_URL", url.as_str()),
            ("ECPAT_DATABASE__CONNECT_TIMEOUT_SECS", "60"),
            ("HTTP_ADDR", http.as_str()),
        ];
        let child = binary(&crate_dir(), &["run"], &vars).spawn().unwrap();
        silent.connected().await;
        signal(child.id().unwrap(), name);
        let output = timeout(STOP, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("run still waits for the database {STOP:?} after SIG{name}"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "SIG{name}: {:?}, stderr: {stderr}", output.status);
        assert!(stderr.contains("Shutdown requested"), "the info logs are there: {stderr}");
        assert!(!stderr.contains('\x1b'), "no colours in logs written to a pipe: {stderr:?}");
    }
}

#[tokio::test]
async fn run_stops_within_ten_seconds_of_sigterm_while_the_broker_is_silent() {
    let env = TestEnv::new("silent_run").await;
    let mut silent = Silent::start().await;
    let http = free_addr();
    let mut vars = worker_vars(&env, &http);
    vars.push(("AMQP_URL", silent.amqp_url()));
    vars.push(("ECPAT_AMQP__CONNECT_TIMEOUT_SECS", "60".to_owned()));
    let mut worker = spawn_run(&crate_dir(), &[], &vars, &http);
    silent.connected().await;
    assert!(worker.terminate(STOP).success(), "run exits 0 on SIGTERM while connecting to RabbitMQ");
    env.cleanup().await;
}

#[tokio::test]
async fn attempts_on_a_silent_broker_leave_no_connection_behind() {
    let env = TestEnv::new("silent_attempts").await;
    let mut silent = Silent::start().await;
    let http = free_addr();
    let mut vars = worker_vars(&env, &http);
    vars.push(("AMQP_URL", silent.amqp_url()));
    vars.push(("ECPAT_AMQP__CONNECT_TIMEOUT_SECS", "1".to_owned()));
    vars.push(("ECPAT_CONSUMER__RETRY_MAX_MS", "200".to_owned()));
    let mut worker = spawn_run(&crate_dir(), &[], &vars, &http);
    for _ in 0..4 {
        silent.connected().await;
    }
    // Each attempt that timed out closed its connection: only the one in progress is open.
    let open = timeout(WAIT, silent.open.wait_for(|open| *open <= 1)).await.map(|open| *open.unwrap());
    assert!(open.is_ok(), "{} connections left open after four attempts", *silent.open.borrow());
    assert!(worker.terminate(STOP).success());
    env.cleanup().await;
}

#[tokio::test]
async fn a_refused_rabbitmq_login_is_said_plainly_and_retried_slowly() {
    let env = TestEnv::new("login").await;
    let wrong = amqp_url().replacen("amqp://", "amqp://guest:not-the-password@", 1);
    let http = free_addr();
    let vars = [
        ("DATABASE_URL", env.settings.database.url.as_str()),
        ("AMQP_URL", wrong.as_str()),
        ("HTTP_ADDR", http.as_str()),
    ];
    let mut child = binary(&crate_dir(), &["run"], &vars).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("run keeps running");
            if line.contains("RabbitMQ") || line.contains("lapin") {
                return line;
            }
        }
    })
    .await
    .expect("the refusal is logged");
    assert!(first.contains("ERROR"), "an operator must act: {first}");
    assert!(first.contains(r#"refused the login of user \"guest\": wrong user name or password"#), "{first}");
    assert!(!first.contains("not-the-password"), "{first}");

    // Retried after consumer.retry_max_ms (10 s), not at once: nothing more for a while.
    let mut later = Vec::new();
    let _ = timeout(Duration::from_secs(4), async {
        while let Ok(Some(line)) = lines.next_line().await {
            later.push(line);
        }
    })
    .await;
    assert_eq!(later, Vec::<String>::new(), "log lines within 4 s of the first refusal");

    signal(child.id().unwrap(), "TERM");
    let status = timeout(STOP, child.wait()).await.expect("run stops on SIGTERM").unwrap();
    assert!(status.success());
    env.cleanup().await;
}

#[tokio::test]
async fn errors_say_what_is_wrong_on_one_line() {
    let mut no_role = url::Url::parse(&database_base()).unwrap();
    no_role.set_username("no_such_role").unwrap();
    no_role.set_password(None).unwrap();
    no_role.set_path("ecpat");
    let no_role = no_role.to_string();
    let cases = [
        (
            no_role.clone(),
            format!(r#"PostgreSQL at {no_role} refused the connection: role "no_such_role" does not exist"#),
        ),
        (
            "postgres://postgres@127.0.0.1:notaport/ecpat".to_owned(),
            "invalid PostgreSQL URL postgres://postgres@127.0.0.1:notaport/ecpat: invalid port number".to_owned(),
        ),
        (
            "mysql://root:s3cret@127.0.0.1:3306/ecpat".to_owned(),
            "invalid PostgreSQL URL mysql://root:***@127.0.0.1:3306/ecpat: the scheme must be postgres:// or \
             postgresql://, not mysql://"
                .to_owned(),
        ),
    ];
    for (url, expected) in cases {
        let (status, stderr) =
            finish(binary(&crate_dir(), &["migrate"], &[("DATABASE_URL", url.as_str())]), Duration::from_secs(15))
                .await;
        assert_one_error_line(&url, status, &stderr, &expected);
    }

    let wrong = amqp_url().replacen("amqp://", "amqp://guest:not-the-password@", 1);
    let (status, stderr) =
        finish(binary(&crate_dir(), &["publish", "-"], &[("AMQP_URL", wrong.as_str())]), Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(r#"refused the login of user "guest": wrong user name or password"#), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");

    let (status, stderr) =
        finish(binary(&crate_dir(), &["publish", "-"], &[("AMQP_URL", "http://127.0.0.1/")]), Duration::from_secs(15))
            .await;
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.starts_with("error: invalid RabbitMQ URL http://127.0.0.1/: ") && stderr.contains("scheme"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn causes_are_joined_once_and_details_come_only_when_asked() {
    // A port where nothing listens: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/ecpat");
    let migrate = |args: &[&str], extra: Option<(&'static str, &'static str)>| {
        let mut vars = vec![("DATABASE_URL", url.as_str())];
        vars.extend(extra);
        finish(binary(&crate_dir(), args, &vars), Duration::from_secs(15))
    };

    let (status, stderr) = migrate(&["migrate"], None).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with(&format!("error: cannot reach PostgreSQL at {url}: ")), "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "each cause once: {stderr}");

    for (args, extra) in [(&["-v", "migrate"][..], None), (&["migrate"][..], Some(("RUST_BACKTRACE", "1")))] {
        let (status, stderr) = migrate(args, extra).await;
        assert_eq!(status.code(), Some(1));
        assert!(stderr.contains("Caused by:") && stderr.contains("Stack backtrace:"), "{args:?} {extra:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_binary_migrates_and_runs_from_any_folder() {
    let env = TestEnv::new("anywhere").await;
    let elsewhere = scratch("anywhere");
    let http = free_addr();
    let vars = worker_vars(&env, &http);
    let mut migrate = binary(&elsewhere, &["migrate"], &[]);
    migrate.envs(vars.iter().map(|(k, v)| (k, v)));
    let (status, stderr) = finish(migrate, WAIT).await;
    assert!(status.success(), "migrate from another folder: {stderr}");

    let mut worker = spawn_run(&elsewhere, &[], &vars, &http);
    worker.wait_ready(WAIT).await;
    let (status, ke1) = worker.get("/api/v1/indicators/KE1").await;
    assert_eq!(status, 200);
    let built_in = std::fs::read_to_string(crate_dir().join("frameworks/ecpat-2018-2021.toml")).unwrap();
    let title = ke1["title_en"].as_str().expect("a title from the shipped framework");
    assert!(built_in.contains(&format!("en = \"{title}\"")), "{ke1}");
    assert!(worker.terminate(STOP).success());
    std::fs::remove_dir_all(elsewhere).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn the_configuration_folder_is_read_and_a_missing_one_is_one_error_line() {
    let env = TestEnv::new("config_dir").await;
    let config = scratch("config_dir");
    let elsewhere = scratch("config_dir_cwd");
    let http = free_addr();
    // The folder's own settings are read: here, JSON logs.
    std::fs::write(config.join("local.toml"), "[log]\nformat = \"json\"\n").unwrap();
    let mut recompute = binary(&elsewhere, &["--config-dir", config.to_str().unwrap(), "recompute"], &[]);
    recompute.envs(worker_vars(&env, &http).iter().map(|(k, v)| (k, v))).env("RUST_LOG", "info");
    let (status, stderr) = finish(recompute, WAIT).await;
    assert!(status.success(), "recompute with the folder's settings: {stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with('{') && l.contains("Recomputed every tally")),
        "JSON logs from the folder's local.toml: {stderr}"
    );

    let missing = elsewhere.join("missing");
    let (status, stderr) =
        finish(binary(&elsewhere, &["--config-dir", missing.to_str().unwrap(), "migrate"], &[]), WAIT).await;
    assert_one_error_line(
        "a missing folder",
        status,
        &stderr,
        &format!("the configuration folder {} does not exist", missing.display()),
    );
    std::fs::remove_dir_all(config).unwrap();
    std::fs::remove_dir_all(elsewhere).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_missing_role_is_logged_without_the_servers_source_line() {
    let mut no_role = url::Url::parse(&database_base()).unwrap();
    no_role.set_username("no_such_role").unwrap();
    no_role.set_password(None).unwrap();
    no_role.set_path("ecpat");
    let (url, http) = (no_role.to_string(), free_addr());
    let vars = [("DATABASE_URL", url.as_str()), ("HTTP_ADDR", http.as_str())];
    let mut child = binary(&crate_dir(), &["run"], &vars).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The migrations try to connect, say why not, and try again; nothing else connects first.
    let mut seen = Vec::new();
    timeout(WAIT, async {
        while seen.iter().filter(|l: &&String| l.contains("Cannot migrate yet")).count() < 2 {
            seen.push(lines.next_line().await.unwrap().expect("run keeps running"));
        }
    })
    .await
    .expect("it says why it cannot connect, and tries again");
    for line in seen.iter().filter(|l| l.contains("WARN")) {
        assert!(line.contains(r#"role \"no_such_role\" does not exist"#), "{line}");
        assert!(!line.contains(" at line "), "PostgreSQL's source line means nothing here: {line}");
    }
    signal(child.id().unwrap(), "TERM");
    assert!(timeout(STOP, child.wait()).await.expect("run stops on SIGTERM").unwrap().success());
}

#[tokio::test]
async fn a_migration_the_database_refuses_is_one_line_naming_the_refusal_once() {
    // A role that may log in but not create tables in the database's `public` schema.
    let suffix = std::process::id();
    let (role, database) =
        (format!("ecpat_no_create_{suffix}"), format!("t_{}_no_create_{suffix}", common::test_run()));
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", database_base())).await.expect("PostgreSQL");
    for statement in [
        format!("drop database if exists {database}"),
        format!("drop role if exists {role}"),
        format!("create role {role} login"),
        format!("create database {database}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&admin).await.unwrap();
    }
    let mut url = url::Url::parse(&database_base()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    url.set_path(&database);

    let (status, stderr) =
        finish(binary(&crate_dir(), &["migrate"], &[("DATABASE_URL", url.as_str())]), Duration::from_secs(15)).await;

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot apply the migrations: while executing migrations"), "{stderr}");
    assert_eq!(stderr.matches("permission denied for schema public").count(), 1, "said once: {stderr}");
    assert!(!stderr.contains(" at line "), "PostgreSQL's source line means nothing here: {stderr}");
    for statement in [format!("drop database {database} with (force)"), format!("drop role {role}")] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&admin).await.unwrap();
    }
}

/// A port of 127.0.0.1 where nothing listens: a connection there is refused.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_url_listing_several_hosts_uses_the_one_that_accepts_writes() {
    // The test server listed second, after a host that refuses connections.
    let dead = dead_port();
    let (scheme, rest) = database_base().split_once("://").map(|(s, r)| (s.to_owned(), r.to_owned())).unwrap();
    let base = match rest.rsplit_once('@') {
        Some((user, host)) => format!("{scheme}://{user}@127.0.0.1:{dead},{host}"),
        None => format!("{scheme}://127.0.0.1:{dead},{rest}"),
    };
    let mut env = TestEnv::on(&base, "hosts").await;
    let worker = env.spawn_worker();
    env.worker(worker).wait_ready(WAIT).await;
    let publications: Vec<_> = (0..20).map(|i| common::plain_publication(&format!("pub-{i}"))).collect();
    env.publish(&publications).await;
    env.wait_for_counts(20, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 20);
    let (status, _) = env.worker(worker).get("/api/v1/indicators/KE1").await;
    assert_eq!(status, 200, "the API reads through the same list");
    assert!(env.worker(worker).terminate(STOP).success());
    env.cleanup().await;
}

#[tokio::test]
async fn brokers_are_tried_in_turn_and_a_dead_one_first_in_the_list_is_passed_over() {
    let mut env = TestEnv::new("urls").await;
    let dead = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("amqp://127.0.0.1:{port}/%2f")
    };
    env.settings.amqp.urls = vec![dead(), amqp_url()];
    let (connection, node) = broker::connect_from(&env.settings.amqp, "test urls", 0).await.unwrap();
    assert_eq!(node, 1, "the second broker, the first being dead");
    connection.close(200, "ok".into()).await.unwrap();
    let (connection, node) = broker::connect_from(&env.settings.amqp, "test urls", 1).await.unwrap();
    assert_eq!(node, 1, "from the one after the last");
    connection.close(200, "ok".into()).await.unwrap();

    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let dir = scratch("urls");
    let file = dir.join("events.jsonl");
    std::fs::write(&file, format!("{}\n", common::plain_publication("urls-1"))).unwrap();
    let output = env.cli(&["publish", file.to_str().unwrap()]).await;
    assert!(output.status.success(), "publish: {}", String::from_utf8_lossy(&output.stderr));
    env.wait_for_counts(1, 0, WAIT).await;

    let mut nowhere = env.settings.amqp.clone();
    nowhere.urls = vec![dead(), dead()];
    let error = broker::connect_from(&nowhere, "test urls", 0).await.unwrap_err().to_string();
    assert!(error.starts_with("no RabbitMQ node of amqp.urls answered: cannot connect to RabbitMQ at "), "{error}");
    assert!(nowhere.urls.iter().all(|url| error.contains(url.as_str())), "each node's failure: {error}");
    std::fs::remove_dir_all(dir).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_list_of_hosts_none_of_which_accepts_writes_is_one_error_line_naming_each() {
    let (first, second) = (dead_port(), dead_port());
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{first},127.0.0.1:{second}/ecpat");
    let (status, stderr) =
        finish(binary(&crate_dir(), &["migrate"], &[("DATABASE_URL", url.as_str())]), Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let redacted = format!("postgres://postgres:***@127.0.0.1:{first},127.0.0.1:{second}/ecpat");
    assert!(stderr.starts_with(&format!("error: no host of {redacted} accepts writes: ")), "{stderr}");
    for port in [first, second] {
        assert!(
            stderr.contains(&format!("cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1:{port}/ecpat")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let url = format!("postgres://postgres@127.0.0.1:{first},127.0.0.1:{second}/ecpat?target_session_attrs=read-only");
    let (status, stderr) =
        finish(binary(&crate_dir(), &["migrate"], &[("DATABASE_URL", url.as_str())]), Duration::from_secs(15)).await;
    assert_one_error_line(
        &url,
        status,
        &stderr,
        &format!(
            "invalid PostgreSQL URL {url}: target_session_attrs=read-only: the worker writes, so it needs read-write \
             (or primary), the default with several hosts"
        ),
    );
}

#[tokio::test]
async fn queues_that_exist_with_another_group_size_are_used_as_they_are() {
    // Declared on a single node, then by processes set for a cluster, and the other way round.
    for (first, then) in [(1, 3), (3, 1)] {
        let mut env = TestEnv::new("group_size").await;
        env.settings.amqp.quorum_initial_group_size = first;
        env.declare().await;
        env.settings.amqp.quorum_initial_group_size = then;
        env.declare().await;
        let w = env.spawn_worker();
        env.worker(w).wait_ready(WAIT).await;
        env.publish(&[common::plain_publication("group-1")]).await;
        env.wait_for_counts(1, 0, WAIT).await;
        env.cleanup().await;
    }
}
