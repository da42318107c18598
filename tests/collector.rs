//! The social-metrics collector against fake platforms (a local HTTP server answering in
//! each platform's documented shapes), the real RabbitMQ and PostgreSQL, and real worker
//! processes. The collector's clock is a parameter of `poll_once`, so no test waits for a
//! poll slot to pass.

mod common;
#[path = "collector/fake.rs"]
mod fake;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestEnv, event};
use ecpat_indicators::collector::http::{Call, Gate, Http};
use ecpat_indicators::collector::{Collector, Observation, Platform, Tokens};
use ecpat_indicators::config::Settings;
use ecpat_indicators::records::Metric;
use ecpat_indicators::store::tracking::{self, NewPost};
use fake::{Counts, FACEBOOK_TOKEN, Fake, X_TOKEN, YOUTUBE_KEY};
use reqwest::Url;
use secrecy::SecretString;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const PUBLISHED: &str = "2026-11-02T09:00:00Z";
const T0: &str = "2026-11-02T10:00:00Z";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn tokens() -> Tokens {
    Tokens::default()
        .with(Platform::X, SecretString::from(X_TOKEN))
        .with(Platform::Youtube, SecretString::from(YOUTUBE_KEY))
        .with(Platform::Facebook, SecretString::from(FACEBOOK_TOKEN))
}

/// A test's database, broker names and fake platforms, and collector settings using them.
struct Rig {
    env: TestEnv,
    fake: Fake,
    settings: Settings,
}

impl Rig {
    async fn new(label: &str) -> Rig {
        let env = TestEnv::new(label).await;
        let fake = Fake::start().await;
        let mut settings = env.settings.clone();
        let c = &mut settings.collector;
        c.mastodon_url = fake.url("mastodon");
        c.youtube_url = fake.url("youtube");
        c.x_url = fake.url("x");
        c.facebook_url = fake.url("facebook");
        c.retries = 2;
        c.retry_initial_ms = 5;
        c.retry_max_ms = 20;
        c.request_timeout_secs = 5;
        Rig { env, fake, settings }
    }

    fn collector(&self) -> Collector {
        Collector::new(&self.settings, self.env.pool.clone(), tokens()).unwrap()
    }

    /// Tracks a post published at [`PUBLISHED`], as `track add` would at `now`.
    async fn track(&self, platform: Platform, post_id: &str, member: &str, publication_id: Option<&str>, now: &str) {
        let post = NewPost {
            platform: platform.name().into(),
            post_id: post_id.into(),
            member: member.into(),
            published_at: at(PUBLISHED),
            publication_id: publication_id.map(Into::into),
            url: None,
        };
        tracking::add(&self.env.pool, &post, at(now)).await.unwrap();
    }

    async fn status(&self, platform: &str, post_id: &str) -> (String, Option<String>) {
        sqlx::query_as("select status, last_error from tracked_posts where platform = $1 and post_id = $2")
            .bind(platform)
            .bind(post_id)
            .fetch_one(&self.env.pool)
            .await
            .unwrap()
    }
}

/// Calls one adapter directly, as the collector would.
async fn fetch(fake: &Fake, platform: Platform, ids: &[&str]) -> Vec<(String, Observation)> {
    let settings = Settings::load(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap();
    let http = Http::new(&settings.collector).unwrap();
    let gate = Gate::default();
    let base = Url::parse(&fake.url(platform.name())).unwrap();
    let tokens = tokens();
    let call = Call { http: &http, gate: &gate, base: &base, token: tokens.get(platform), now: at(T0) };
    let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    platform.fetch(&call, &ids).await.expect("the fake platform answers")
}

fn found(pairs: &[(Metric, i64)]) -> Observation {
    Observation::Metrics(pairs.iter().copied().collect())
}

#[tokio::test]
async fn mastodon_statuses_map_onto_likes_shares_and_comments_and_a_404_is_gone() {
    let fake = Fake::start().await;
    fake.set("mastodon", "1101", Counts { likes: 11, shares: 5, comments: 2, ..Counts::default() });

    let observations = fetch(&fake, Platform::Mastodon, &["1101", "1102"]).await;

    let expected = found(&[(Metric::Likes, 11), (Metric::Shares, 5), (Metric::Comments, 2)]);
    assert_eq!(observations, [("1101".into(), expected), ("1102".into(), Observation::Gone)]);
}

#[tokio::test]
async fn youtube_statistics_map_onto_views_likes_and_comments_and_a_missing_video_is_gone() {
    let fake = Fake::start().await;
    fake.set("youtube", "dQw4w9WgXcQ", Counts { views: 1200, likes: 45, comments: 7, ..Counts::default() });

    let observations = fetch(&fake, Platform::Youtube, &["dQw4w9WgXcQ", "deletedVid1"]).await;

    let expected = found(&[(Metric::Views, 1200), (Metric::Likes, 45), (Metric::Comments, 7)]);
    assert_eq!(observations, [("dQw4w9WgXcQ".into(), expected), ("deletedVid1".into(), Observation::Gone)]);
    assert_eq!(fake.requests("youtube"), 1, "both videos in one call");
}

#[tokio::test]
async fn x_public_metrics_map_onto_likes_shares_comments_impressions_and_a_missing_post_is_gone() {
    let fake = Fake::start().await;
    let counts = Counts { likes: 30, shares: 4, quotes: 1, comments: 2, impressions: 900, ..Counts::default() };
    fake.set("x", "1850000000000000001", counts);

    let observations = fetch(&fake, Platform::X, &["1850000000000000001", "1850000000000000002", "not-a-number"]).await;

    let expected =
        found(&[(Metric::Likes, 30), (Metric::Shares, 5), (Metric::Comments, 2), (Metric::Impressions, 900)]);
    assert_eq!(observations[0], ("not-a-number".into(), Observation::Failed("not an X post id".into())));
    assert_eq!(observations[1], ("1850000000000000001".into(), expected));
    assert_eq!(observations[2], ("1850000000000000002".into(), Observation::Gone));
    assert_eq!(fake.requests("x"), 1);
}

#[tokio::test]
async fn facebook_summaries_map_onto_shares_likes_and_comments() {
    let fake = Fake::start().await;
    fake.set("facebook", "111_222", Counts { shares: 12, likes: 50, comments: 7, ..Counts::default() });
    fake.set("facebook", "111_333", Counts { likes: 3, ..Counts::default() });

    let observations = fetch(&fake, Platform::Facebook, &["111_222", "111_333", "111_444"]).await;

    assert_eq!(observations[0].1, found(&[(Metric::Shares, 12), (Metric::Likes, 50), (Metric::Comments, 7)]));
    assert_eq!(observations[1].1, found(&[(Metric::Shares, 0), (Metric::Likes, 3), (Metric::Comments, 0)]));
    assert_eq!(observations[2].1, Observation::Gone);
}

#[tokio::test]
async fn youtube_is_asked_for_fifty_videos_per_call() {
    let rig = Rig::new("c_batch").await;
    for n in 0..51 {
        let id = format!("video{n:06}");
        rig.fake.set("youtube", &id, Counts { views: n, ..Counts::default() });
        rig.track(Platform::Youtube, &id, "ecpat-france", None, T0).await;
    }

    let report = rig.collector().poll_once(at(T0)).await;

    assert_eq!(report.platform(Platform::Youtube).published, 51);
    assert_eq!(rig.fake.requests("youtube"), 2);
    rig.env.cleanup().await;
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_that_platform_alone_until_it_says() {
    let rig = Rig::new("c_429").await;
    rig.fake.set("x", "1001", Counts { likes: 1, ..Counts::default() });
    rig.fake.set("mastodon", "2001", Counts { likes: 1, ..Counts::default() });
    rig.track(Platform::X, "1001", "ecpat-france", None, T0).await;
    rig.track(Platform::Mastodon, "2001", "ecpat-france", None, T0).await;
    rig.fake.script("x", 429, &[("retry-after", "120")], json!({"title": "Too Many Requests"}));
    let collector = rig.collector();

    let first = collector.poll_once(at(T0)).await;
    let during = collector.poll_once(at(T0) + TimeDelta::seconds(60)).await;
    let after = collector.poll_once(at(T0) + TimeDelta::seconds(121)).await;

    let x = first.platform(Platform::X);
    assert_eq!((x.published, x.deferred), (0, 1));
    assert_eq!(x.paused_until, Some(at(T0) + TimeDelta::seconds(120)));
    assert_eq!(first.platform(Platform::Mastodon).published, 1, "the other platforms go on");
    assert_eq!(during.platform(Platform::X).deferred, 1);
    assert_eq!(after.platform(Platform::X).published, 1);
    assert_eq!(rig.fake.requests("x"), 2, "no request while paused");
    rig.env.cleanup().await;
}

#[tokio::test]
async fn server_errors_are_retried_and_an_outage_pauses_only_that_platform() {
    let rig = Rig::new("c_5xx").await;
    rig.fake.set("youtube", "vid1", Counts { views: 10, ..Counts::default() });
    rig.fake.set("facebook", "1_2", Counts { likes: 4, ..Counts::default() });
    rig.fake.set("mastodon", "3001", Counts { likes: 2, ..Counts::default() });
    rig.track(Platform::Youtube, "vid1", "ecpat-france", None, T0).await;
    rig.track(Platform::Facebook, "1_2", "ecpat-france", None, T0).await;
    rig.track(Platform::Mastodon, "3001", "ecpat-france", None, T0).await;
    rig.fake.script("youtube", 503, &[], json!({}));
    rig.fake.script("youtube", 502, &[], json!({}));
    rig.fake.set_down("facebook", true);
    let collector = rig.collector();

    let first = collector.poll_once(at(T0)).await;
    let later = collector.poll_once(at(T0) + TimeDelta::seconds(5)).await;

    assert_eq!(first.platform(Platform::Youtube).published, 1, "two 5xx, then an answer");
    assert_eq!(rig.fake.requests("youtube"), 3);
    let facebook = first.platform(Platform::Facebook);
    assert_eq!((facebook.published, facebook.deferred), (0, 1));
    assert!(facebook.error.as_deref().unwrap().contains("unavailable after 3 attempt(s)"), "{facebook:?}");
    assert!(facebook.paused_until.is_some());
    assert_eq!(first.platform(Platform::Mastodon).published, 1);
    assert_eq!(later.platform(Platform::Facebook).deferred, 1);
    assert_eq!(rig.fake.requests("facebook"), 3, "no request during the outage pause");
    assert_eq!(rig.status("facebook", "1_2").await.0, "active");
    rig.env.cleanup().await;
}

#[tokio::test]
async fn a_gone_post_is_no_longer_polled_and_its_last_values_stay_counted() {
    let mut rig = Rig::new("c_gone").await;
    let w = rig.env.spawn_worker();
    rig.env.worker(w).wait_ready(WAIT).await;
    rig.fake.set("mastodon", "4001", Counts { likes: 10, shares: 3, comments: 1, ..Counts::default() });
    rig.track(Platform::Mastodon, "4001", "ecpat-france", Some("pub-1"), T0).await;
    let collector = rig.collector();
    collector.poll_once(at(T0)).await;
    rig.env.wait_for_counts(1, 0, WAIT).await;

    rig.fake.delete("mastodon", "4001");
    let gone = collector.poll_once(at(T0) + minutes(15)).await;
    let after = collector.poll_once(at(T0) + minutes(30)).await;

    assert_eq!(gone.platform(Platform::Mastodon).gone, 1);
    assert_eq!(gone.platform(Platform::Mastodon).published, 0, "no zeros");
    assert_eq!(after.platform(Platform::Mastodon).due, 0);
    assert_eq!(rig.fake.requests("mastodon"), 2);
    assert_eq!(rig.status("mastodon", "4001").await.0, "gone");
    rig.env.wait_for_counts(1, 0, WAIT).await;
    assert_eq!(rig.env.value("KE3", "all", "", "").await, 13);
    assert_eq!(rig.env.value("AP3", "2026", "platform", "mastodon").await, 1);
    rig.env.cleanup().await;
}

#[tokio::test]
async fn collected_snapshots_are_counted_and_a_later_poll_replaces_them() {
    let mut rig = Rig::new("c_e2e").await;
    let w = rig.env.spawn_worker();
    rig.env.worker(w).wait_ready(WAIT).await;
    // A post first seen in someone else's snapshot: the collector finds it in the records.
    let manual = event(
        "urn:ecpat:fr:social-team",
        "manual-1",
        "2026-11-02T09:30:00Z",
        "org.ecpat.social.metrics.snapshot",
        json!({"platform": "x", "post_id": "1002", "member": "ecpat-lux", "published_at": PUBLISHED,
            "publication_id": "pub-3", "metrics": {"likes": 1}}),
    );
    rig.env.publish(&[manual]).await;
    rig.env.wait_for_counts(1, 0, WAIT).await;
    let mastodon = Counts { likes: 10, shares: 3, comments: 2, ..Counts::default() };
    let youtube = Counts { views: 1000, likes: 40, comments: 5, ..Counts::default() };
    let x1 = Counts { likes: 7, shares: 2, quotes: 1, comments: 4, impressions: 500, ..Counts::default() };
    let x2 = Counts { likes: 5, ..Counts::default() };
    let facebook = Counts { shares: 6, likes: 20, comments: 1, ..Counts::default() };
    rig.fake.set("mastodon", "5001", mastodon);
    rig.fake.set("youtube", "vidE2E", youtube);
    rig.fake.set("x", "1001", x1);
    rig.fake.set("x", "1002", x2);
    rig.fake.set("facebook", "111_222", facebook);
    rig.track(Platform::Mastodon, "5001", "ecpat-france", Some("pub-1"), T0).await;
    rig.track(Platform::Youtube, "vidE2E", "ecpat-france", Some("pub-1"), T0).await;
    rig.track(Platform::X, "1001", "ecpat-belgium", Some("pub-2"), T0).await;
    rig.track(Platform::Facebook, "111_222", "ecpat-uk", None, T0).await;
    let collector = rig.collector();

    let first = collector.poll_once(at(T0)).await;
    rig.env.wait_for_counts(1 + 5, 0, WAIT).await;

    assert_eq!(first.published(), 5);
    // KE3: likes + shares of the posts that disseminate a publication (Facebook's does not).
    let (likes, shares) = (10 + 40 + 7 + 5, 3 + (2 + 1));
    assert_eq!(rig.env.value("KE3", "all", "", "").await, likes + shares);
    assert_eq!(rig.env.value("KE3", "2026", "", "").await, likes + shares);
    assert_eq!(rig.env.value("KE3", "all", "metric", "likes").await, likes);
    assert_eq!(rig.env.value("KE3", "all", "metric", "shares").await, shares);
    assert_eq!(rig.env.value("KE3", "all", "platform", "x").await, 7 + 3 + 5);
    assert_eq!(rig.env.value("AP3", "all", "", "").await, 4);
    assert_eq!(rig.env.value("AP3", "all", "platform", "x").await, 2);
    assert_eq!(rig.env.value("AP3", "all", "platform", "facebook").await, 1);

    rig.fake.set("mastodon", "5001", Counts { likes: 25, shares: 4, ..mastodon });
    rig.fake.set("x", "1002", Counts { likes: 9, ..x2 });
    let second = collector.poll_once(at(T0) + minutes(15)).await;
    rig.env.wait_for_counts(1 + 5 + 5, 0, WAIT).await;

    assert_eq!(second.published(), 5);
    let (likes, shares) = (25 + 40 + 7 + 9, 4 + (2 + 1));
    assert_eq!(rig.env.value("KE3", "all", "", "").await, likes + shares, "replaced, never added");
    assert_eq!(rig.env.value("KE3", "all", "metric", "likes").await, likes);
    assert_eq!(rig.env.value("AP3", "all", "", "").await, 4);
    rig.env.cleanup().await;
}

#[tokio::test]
async fn a_restarted_collector_publishes_no_duplicate_counts() {
    let mut rig = Rig::new("c_restart").await;
    let w = rig.env.spawn_worker();
    rig.env.worker(w).wait_ready(WAIT).await;
    rig.fake.set("mastodon", "6001", Counts { likes: 10, shares: 3, ..Counts::default() });
    rig.track(Platform::Mastodon, "6001", "ecpat-france", Some("pub-1"), T0).await;
    rig.collector().poll_once(at(T0)).await;
    rig.env.wait_for_counts(1, 0, WAIT).await;

    // The first collector published, then died before recording its poll; the numbers
    // moved on meanwhile. A new post is tracked too, so that something new is published.
    sqlx::query("update tracked_posts set next_poll_at = $1, last_polled_at = null")
        .bind(at(T0))
        .execute(&rig.env.pool)
        .await
        .unwrap();
    rig.fake.set("mastodon", "6001", Counts { likes: 99, shares: 99, ..Counts::default() });
    rig.fake.set("mastodon", "6002", Counts { likes: 1, ..Counts::default() });
    rig.track(Platform::Mastodon, "6002", "ecpat-france", Some("pub-1"), T0).await;
    let restarted = rig.collector().poll_once(at(T0) + minutes(5)).await;
    rig.env.wait_for_counts(2, 0, WAIT).await;
    wait_for_duplicates(&mut rig.env, w, 1).await;

    assert_eq!(restarted.platform(Platform::Mastodon).published, 2, "both published, one a duplicate");
    assert_eq!(rig.env.value("KE3", "all", "", "").await, 13 + 1, "the same slot's snapshot counts once");
    rig.env.cleanup().await;
}

#[tokio::test]
async fn a_post_withdrawn_after_it_was_tracked_is_no_longer_polled() {
    let mut rig = Rig::new("c_withdrawn").await;
    let w = rig.env.spawn_worker();
    rig.env.worker(w).wait_ready(WAIT).await;
    rig.fake.set("mastodon", "7001", Counts { likes: 10, shares: 3, ..Counts::default() });
    rig.track(Platform::Mastodon, "7001", "ecpat-france", Some("pub-1"), T0).await;
    let collector = rig.collector();
    collector.poll_once(at(T0)).await;
    let withdrawal = event(
        "urn:ecpat:fr:social-team",
        "withdraw-7001",
        "2026-11-02T10:05:00Z",
        "org.ecpat.record.withdrawn",
        json!({"record_type": "social_post", "key": {"platform": "mastodon", "post_id": "7001"}}),
    );
    rig.env.wait_for_counts(1, 0, WAIT).await;
    rig.env.publish(&[withdrawal]).await;
    rig.env.wait_for_counts(2, 0, WAIT).await;

    let report = collector.poll_once(at(T0) + minutes(15)).await;

    assert_eq!(report.platform(Platform::Mastodon).due, 0);
    assert_eq!(rig.status("mastodon", "7001").await.0, "withdrawn");
    assert_eq!(rig.fake.requests("mastodon"), 1);
    assert_eq!(rig.env.value("KE3", "all", "", "").await, 0);
    rig.env.cleanup().await;
}

/// The duplicates a worker has acknowledged, from its Prometheus metrics.
async fn duplicates(env: &mut TestEnv, worker: usize) -> i64 {
    let url = format!("http://{}/metrics", env.worker(worker).http);
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("ecpat_events_duplicate_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn wait_for_duplicates(env: &mut TestEnv, worker: usize, expected: i64) {
    let start = Instant::now();
    while duplicates(env, worker).await < expected {
        assert!(start.elapsed() < WAIT, "the worker saw no duplicate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every log line of this test binary from the moment it is first called.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || Capture(sink.clone()))
            .init();
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_appear_in_logs_reports_or_stored_errors() {
    let logs = captured_logs();
    let rig = Rig::new("c_tokens").await;
    for (platform, id) in [(Platform::X, "1001"), (Platform::Youtube, "vid1"), (Platform::Facebook, "1_2")] {
        rig.track(platform, id, "ecpat-france", None, T0).await;
    }
    // Answers that echo the credentials back, as a careless proxy might.
    rig.fake.script("x", 401, &[], json!({"title": "Unauthorized", "detail": format!("Bearer {X_TOKEN} is revoked")}));
    let youtube = json!({"error": {"code": 400, "message": format!("key {YOUTUBE_KEY} bad"),
        "errors": [{"reason": "badRequest"}]}});
    rig.fake.script("youtube", 400, &[], youtube);
    let facebook = json!({"error": {"message": format!("Invalid OAuth access token {FACEBOOK_TOKEN}"),
        "type": "OAuthException", "code": 190}});
    rig.fake.script("facebook", 400, &[], facebook);

    let report = rig.collector().poll_once(at(T0)).await;

    let x = report.platform(Platform::X);
    assert!(x.error.as_deref().unwrap().starts_with("refused (HTTP 401)"), "{x:?}");
    assert!(report.platform(Platform::Facebook).error.as_deref().unwrap().contains("refused"));
    assert_eq!(report.platform(Platform::Youtube).failed, 1);
    let stored: Vec<(Option<String>,)> =
        sqlx::query_as("select last_error from tracked_posts").fetch_all(&rig.env.pool).await.unwrap();
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("The platform refuses the token."), "logs were captured");
    let everything = format!("{report:?}\n{stored:?}\n{logs}\n{:?}", tokens());
    for token in [X_TOKEN, YOUTUBE_KEY, FACEBOOK_TOKEN] {
        assert!(!everything.contains(token), "a token leaked: {token}");
    }
    rig.env.cleanup().await;
}

/// Runs the binary with the test's database, broker and fake platforms.
fn binary(rig: &Rig, args: &[&str]) -> std::process::Command {
    let s = &rig.settings;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ecpat-indicators"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", &s.database.url)
        .env("AMQP_URL", &s.amqp.url)
        .env("ECPAT_AMQP__EXCHANGE", &s.amqp.exchange)
        .env("ECPAT_AMQP__QUEUE", &s.amqp.queue)
        .env("ECPAT_AMQP__DEAD_LETTER_EXCHANGE", &s.amqp.dead_letter_exchange)
        .env("ECPAT_AMQP__DEAD_LETTER_QUEUE", &s.amqp.dead_letter_queue)
        .env("ECPAT_AMQP__UNROUTED_EXCHANGE", &s.amqp.unrouted_exchange)
        .env("ECPAT_COLLECTOR__MASTODON_URL", &s.collector.mastodon_url)
        .env("ECPAT_COLLECTOR__YOUTUBE_URL", &s.collector.youtube_url)
        .env("ECPAT_COLLECTOR__X_URL", &s.collector.x_url)
        .env("ECPAT_COLLECTOR__FACEBOOK_URL", &s.collector.facebook_url)
        .env("ECPAT_COLLECTOR__TICK_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    for platform in Platform::ALL {
        command.env_remove(platform.token_var());
    }
    command
}

#[tokio::test]
async fn track_commands_add_list_and_remove_posts() {
    let rig = Rig::new("c_track").await;
    let add = |member: &str| {
        binary(&rig, &["track", "add", "mastodon", "8001", "--member", member, "--published-at", PUBLISHED])
            .output()
            .unwrap()
    };

    let refused = add("ECPAT France");
    let added = add("ecpat-france");
    let listed = binary(&rig, &["track", "list", "--status", "active"]).output().unwrap();
    let removed = binary(&rig, &["track", "remove", "mastodon", "8001"]).output().unwrap();

    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("member"), "the error names the field");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let line: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        (&line["platform"], &line["post_id"], &line["status"]),
        (&json!("mastodon"), &json!("8001"), &json!("active"))
    );
    assert!(removed.status.success());
    assert_eq!(rig.status("mastodon", "8001").await.0, "removed");
    rig.env.cleanup().await;
}

#[tokio::test]
async fn the_collect_command_publishes_and_a_restart_counts_nothing_twice() {
    let mut rig = Rig::new("c_command").await;
    let w = rig.env.spawn_worker();
    rig.env.worker(w).wait_ready(WAIT).await;
    let published_at = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    rig.fake.set("mastodon", "9001", Counts { likes: 10, shares: 3, ..Counts::default() });
    let add = ["track", "add", "mastodon", "9001", "--member", "ecpat-france", "--publication-id", "pub-1"];
    let added = binary(&rig, &add).args(["--published-at", &published_at]).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    for run in 0..2_i64 {
        // Due again at once, as after a crash between publishing and recording the poll.
        sqlx::query("update tracked_posts set next_poll_at = now(), last_polled_at = null")
            .execute(&rig.env.pool)
            .await
            .unwrap();
        let mut collector = binary(&rig, &["collect"]).spawn().unwrap();
        let start = Instant::now();
        loop {
            let polled: Option<DateTime<Utc>> =
                sqlx::query_scalar("select last_polled_at from tracked_posts").fetch_one(&rig.env.pool).await.unwrap();
            if polled.is_some() {
                break;
            }
            assert!(start.elapsed() < WAIT, "run {run}: the collector did not poll");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::process::Command::new("kill").args(["-TERM", &collector.id().to_string()]).status().unwrap();
        assert!(collector.wait().unwrap().success(), "run {run}: SIGTERM stops the collector cleanly");
        // Within one poll slot the restarted collector republishes the same id (a
        // duplicate); across a slot boundary, a newer snapshot of the same values. Either
        // way the post counts once.
        let start = Instant::now();
        while rig.env.counts().await.0 + duplicates(&mut rig.env, w).await < run + 1 {
            assert!(start.elapsed() < WAIT, "run {run}: nothing counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rig.env.value("KE3", "all", "", "").await, 13);
        assert_eq!(rig.env.value("AP3", "all", "", "").await, 1);
    }
    rig.env.cleanup().await;
}
