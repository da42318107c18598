//! Fault injection: workers killed with SIGKILL, the broker connection closed, the database
//! cut off, a poison message, three workers under a duplicate storm, SIGTERM under a heavy
//! backlog. Every scenario ends on the same exact check, with the workers stopped: the
//! tallies are the brute-force model's and recompute's, to the unit; exactly as many
//! events and rejections are stored as were published; the queue is empty.

mod common;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/proxy.rs"]
mod proxy;
#[path = "faults/rabbit.rs"]
mod rabbit;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::generate::{Rng, events};
use common::{TestEnv, Worker, as_model, database_base, model};
use ecpat_indicators::store::recompute::recompute;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use load::{Load, storm};
use proxy::Proxy;
use serde_json::json;
use sqlx::PgConnection;

const WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(20);

/// Waits until at least `n` events are stored.
async fn wait_until_stored(env: &TestEnv, n: i64) {
    let start = Instant::now();
    while env.counts().await.0 < n {
        assert!(start.elapsed() < WAIT, "fewer than {n} events stored after {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until everything published is applied and acknowledged: the expected events and
/// rejections are stored, nothing is ready in the queue and the workers `pids` hold
/// nothing unacknowledged. Fails at once if more is stored than was published.
async fn drain(env: &TestEnv, load: &Load, pids: &[u32]) {
    let expected = load.expected();
    let start = Instant::now();
    loop {
        let counts = env.counts().await;
        if counts.0 > expected.0 || counts.1 > expected.1 {
            panic!(
                "more stored than published: (events, rejections) {counts:?}, expected {expected:?}; \
                {} rejections repeat one already stored",
                repeated_rejections(env).await
            );
        }
        if counts == expected && env.queue_depth().await.0 == 0 && rabbit::unacknowledged(pids).await == 0 {
            return;
        }
        assert!(start.elapsed() < WAIT, "not drained after {WAIT:?}: stored {counts:?}, expected {expected:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Stops a worker with SIGTERM: it must exit 0 within 10 seconds.
fn stop(worker: &mut Worker) {
    let status = worker.terminate(Duration::from_secs(10));
    assert!(status.success(), "the worker exited with {status:?} after SIGTERM");
}

/// The end state, once every worker has stopped: the queue is empty, exactly the
/// published events and rejections are stored, the tallies are the model's and
/// recompute's, and `dead_letters` messages were dead-lettered.
async fn assert_exact(env: &TestEnv, load: &Load, dead_letters: u32) {
    assert_eq!(env.queue_depth().await, (0, 0), "(messages, consumers) left in the queue once the workers stopped");
    assert_eq!(env.counts().await, load.expected(), "(events, rejections) stored");
    assert_eq!(rejections_by_reason(env).await, load.rejections(), "rejections by reason");
    let values = env.values().await;
    assert_eq!(as_model(&values), model::values(&load.events), "the tallies differ from the model");
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, values, "recompute differs from the incremental tallies");
    assert_eq!(dead_lettered(env).await, dead_letters, "messages in the dead-letter queue");
}

/// Rejections that repeat one already stored: every invalid body published is distinct,
/// so each is a redelivered message rejected again.
async fn repeated_rejections(env: &TestEnv) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(n - 1), 0)::int8 from (select count(*) as n from rejections group by sha256, batch_index) as r",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

async fn rejections_by_reason(env: &TestEnv) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select reason, count(*) from rejections group by reason").fetch_all(&env.pool).await.unwrap();
    rows.into_iter().collect()
}

async fn dead_lettered(env: &TestEnv) -> u32 {
    let connection = ecpat_indicators::broker::connect(&env.settings.amqp, "test dead letters").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let queue = channel
        .queue_declare(env.settings.amqp.dead_letter_queue.as_str().into(), passive, FieldTable::default())
        .await
        .unwrap();
    connection.close(200, "ok".into()).await.unwrap();
    queue.message_count()
}

/// GETs a path of a worker's API; the readiness ping may wait for the pool's acquire timeout.
async fn get(worker: &Worker, path: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    client.get(format!("http://{}{path}", worker.http)).send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn readiness(worker: &Worker) -> u16 {
    get(worker, "/readyz").await.status().as_u16()
}

/// One sample of a worker's `/metrics` (0 when the series is absent).
async fn metric(worker: &Worker, name: &str) -> f64 {
    let text = get(worker, "/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().expect("a metric value"))
}

#[tokio::test]
async fn workers_killed_mid_backlog_lose_nothing_and_count_nothing_twice() {
    let load = Load::new(events(4101, 6000));
    let mut env = TestEnv::new("faults_kill").await;
    env.publish_raw(&load.messages).await;
    // Random kill points; FAULTS_SEED replays a run.
    let seed = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill points drawn with FAULTS_SEED={seed}");
    let mut rng = Rng::new(seed);
    let unique = load.expected().0;
    let mut points: Vec<i64> = (0..3).map(|_| unique * (10 + rng.below(60) as i64) / 100).collect();
    points.sort();

    for point in points {
        let w = env.spawn_worker();
        env.worker(w).wait_ready(WAIT).await;
        wait_until_stored(&env, point).await;
        env.worker(w).kill(); // SIGKILL, as `kill -9`
        let (stored, _) = env.counts().await;
        assert!(stored < unique, "the kill at {point} came after the backlog was done ({stored} stored)");
    }
    let w = env.spawn_worker();
    let pid = env.worker(w).child.id();
    drain(&env, &load, &[pid]).await;
    stop(env.worker(w));

    assert_exact(&env, &load, 0).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_worker_whose_broker_connection_is_closed_reconnects_and_finishes() {
    let load = Load::new(events(4102, 6000));
    let mut env = TestEnv::new("faults_broker").await;
    env.publish_raw(&load.messages).await;
    let w = env.spawn_worker();
    let pid = env.worker(w).child.id();
    env.worker(w).wait_ready(WAIT).await;
    wait_until_stored(&env, load.expected().0 / 5).await;

    // Twice, the worker's connection is closed from the broker's side while a batch is in
    // its hands: the test holds the lock batches take (as a long recompute would), so the
    // close lands between the batch's start and its acknowledgement.
    let mut lock = env.pool.acquire().await.unwrap();
    hold_apply_lock(&mut lock).await;
    let mut connection = only(rabbit::worker_connections(&[pid]).await);
    for round in 0..2 {
        wait_until_a_batch_waits(&env).await;
        let (stored, _) = env.counts().await;
        assert!(stored < load.expected().0, "the connection was closed after the backlog was done");
        rabbit::close_connection(&connection).await;
        release_apply_lock(&mut lock).await;
        if round == 0 {
            // Paused again at its next batch, the worker is seen back on a new connection.
            hold_apply_lock(&mut lock).await;
            assert!(env.counts().await.0 > stored, "the batch in hand was committed");
        }
        let start = Instant::now();
        connection = loop {
            let connections = rabbit::worker_connections(&[pid]).await;
            if connections.len() == 1 && connections[0] != connection {
                break only(connections);
            }
            assert!(start.elapsed() < WAIT, "the worker did not reconnect within {WAIT:?}");
            tokio::time::sleep(POLL).await;
        };
    }
    drop(lock);
    drain(&env, &load, &[pid]).await;
    stop(env.worker(w));

    assert_exact(&env, &load, 0).await;
    env.cleanup().await;
}

fn only(connections: Vec<String>) -> String {
    assert_eq!(connections.len(), 1, "the worker has exactly one connection: {connections:?}");
    connections.into_iter().next().unwrap()
}

/// The advisory lock every batch and every recompute takes (`APPLY_LOCK`, src/store/mod.rs).
const APPLY_LOCK: i64 = 0x4543_5041_5431;

/// Takes the apply lock on `connection`, waiting for the batch that holds it to commit.
async fn hold_apply_lock(connection: &mut PgConnection) {
    let lock = sqlx::query("select pg_advisory_lock($1)").bind(APPLY_LOCK).execute(connection);
    tokio::time::timeout(WAIT, lock).await.expect("the batch holding the apply lock ends").unwrap();
}

async fn release_apply_lock(connection: &mut PgConnection) {
    let released: bool =
        sqlx::query_scalar("select pg_advisory_unlock($1)").bind(APPLY_LOCK).fetch_one(connection).await.unwrap();
    assert!(released, "the test held the apply lock");
}

/// Waits until a worker's batch waits for the apply lock the test holds.
async fn wait_until_a_batch_waits(env: &TestEnv) {
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_locks
            where locktype = 'advisory' and not granted
              and database = (select oid from pg_database where datname = current_database())",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(start.elapsed() < WAIT, "no batch waited for the apply lock within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unreachable_nothing_is_committed_or_acknowledged() {
    const OUTAGE: Duration = Duration::from_secs(10);
    let load = Load::new(events(4103, 8000));
    let env = TestEnv::new("faults_database").await;
    env.publish_raw(&load.messages).await;
    let proxy = Proxy::start(proxy::host_port(&database_base())).await;
    let mut settings = env.settings.clone();
    settings.database.url = proxy::url_through(&database_base(), proxy.addr, &env.name);
    // A short backoff ceiling, so that the worker retries soon after the database is back.
    let mut worker = Worker::spawn(&settings, &[("ECPAT_CONSUMER__RETRY_MAX_MS", "1000")]);
    let pid = worker.child.id();
    worker.wait_ready(WAIT).await;
    wait_until_stored(&env, load.expected().0 / 5).await;

    proxy.cut();
    let cut_at = Instant::now();
    while readiness(&worker).await != 503 {
        assert!(cut_at.elapsed() < WAIT, "/readyz still answers 200 with the database unreachable");
        tokio::time::sleep(POLL).await;
    }
    let stored = env.counts().await;
    let ready = env.queue_depth().await.0;
    let held = rabbit::unacknowledged(&[pid]).await;
    assert!(stored.0 < load.expected().0, "the database was cut after the backlog was done");
    assert!(ready > 0 && held > 0, "the worker must hold messages and more must wait ({held} held, {ready} ready)");
    while cut_at.elapsed() < OUTAGE {
        assert_eq!(env.counts().await, stored, "(events, rejections) committed while the database was unreachable");
        assert_eq!(env.queue_depth().await.0, ready, "messages acknowledged while the database was unreachable");
        assert_eq!(readiness(&worker).await, 503, "/readyz while the database is unreachable");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(rabbit::unacknowledged(&[pid]).await, held, "messages acknowledged while the database was unreachable");
    assert_eq!(metric(&worker, "ecpat_database_up").await, 0.0);
    assert!(metric(&worker, "ecpat_batch_retries_total").await > 0.0);

    proxy.restore();
    worker.wait_ready(WAIT).await;
    drain(&env, &load, &[pid]).await;
    stop(&mut worker);

    assert_exact(&env, &load, 0).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_holds_nothing_up() {
    // Refused while its event is stored, before the apply lock.
    poison_is_dead_lettered("faults_poison", "events", "new.id = 'poison'").await;
}

#[tokio::test]
async fn a_message_refused_while_its_batch_is_applied_is_dead_lettered_and_holds_nothing_up() {
    // Refused under the lock, while the next batch's events may already be stored on
    // another connection: that batch goes on, and is acknowledged after this one settles.
    poison_is_dead_lettered("faults_poison_apply", "records", r#"new.record_key = '["pub-poison"]'"#).await;
}

/// A fault no retry can cure that is not the message's fault: the database refuses one
/// event (a trigger on `table` raises when `condition`). That message alone is dead-lettered.
async fn poison_is_dead_lettered(name: &str, table: &str, condition: &str) {
    let poison = common::event(
        "urn:ecpat:fr:faults",
        "poison",
        "2022-01-02T00:00:00Z",
        "org.ecpat.research.publication.recorded",
        json!({
            "publication_id": "pub-poison", "title": "Study", "scope": "global", "contributed": true,
            "published_on": "2019-05-01",
        }),
    );
    let load = Load::new(events(4104, 4000)).with_poison(&poison);
    let mut env = TestEnv::new(name).await;
    let trigger = format!(
        "create function poison() returns trigger language plpgsql as $$
        begin
            if {condition} then raise exception 'poison event'; end if;
            return new;
        end $$;
        create trigger poison before insert or update on {table} for each row execute function poison();"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(trigger)).execute(&env.pool).await.unwrap();
    let w = env.spawn_worker();
    let pid = env.worker(w).child.id();
    env.worker(w).wait_ready(WAIT).await;
    env.publish_raw(&load.messages).await;

    drain(&env, &load, &[pid]).await;
    let start = Instant::now();
    while dead_lettered(&env).await == 0 {
        assert!(start.elapsed() < WAIT, "the poison message was not dead-lettered within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
    assert!(metric(env.worker(w), "ecpat_messages_returned_total").await > 0.0);
    stop(env.worker(w));

    assert_exact(&env, &load, 1).await;
    let connection = ecpat_indicators::broker::connect(&env.settings.amqp, "test dead letters").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let message = channel
        .basic_get(env.settings.amqp.dead_letter_queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the dead-lettered message");
    assert_eq!(message.delivery.data, poison.to_string().into_bytes(), "the dead-lettered message is the poison");
    assert_eq!(death_reason(message.delivery.properties.headers().as_ref()).as_deref(), Some("delivery_limit"));
    connection.close(200, "ok".into()).await.unwrap();
    env.cleanup().await;
}

/// A stored record that no longer reads (edited by hand, say) is a fault no retry can
/// cure: the batches that name it are not retried forever but applied message by message,
/// the one message naming it is dead-lettered, every other event is counted, and the
/// worker never reports the database unreachable.
#[tokio::test]
async fn a_stored_record_that_does_not_read_is_not_retried_but_dead_lettered() {
    let mut env = TestEnv::new("faults_corrupt").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    env.publish(&[common::publication("p1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30")]).await;
    wait_until_stored(&env, 1).await;
    let broken = sqlx::query(r#"update records set record = '{"not": "a record"}' where record_key = '["pub-1"]'"#)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(broken.rows_affected(), 1);

    let correction = common::publication("p1-fix", "2019-06-01T10:00:00Z", "pub-1", "thematic", "2019-04-30");
    let mut later: Vec<_> = (0..10)
        .map(|i| {
            common::publication(
                &format!("p{i}-other"),
                "2019-05-01T10:00:00Z",
                &format!("pub-o{i}"),
                "global",
                "2019-04-30",
            )
        })
        .collect();
    later.insert(5, correction.clone());
    env.publish(&later).await;
    let start = Instant::now();
    while dead_lettered(&env).await == 0 {
        assert!(start.elapsed() < WAIT, "the message naming the unreadable record was not dead-lettered");
        assert_eq!(readiness(env.worker(w)).await, 200, "the worker reports a refused batch as not ready");
        tokio::time::sleep(POLL).await;
    }
    wait_until_stored(&env, 11).await;
    assert_eq!(env.counts().await, (11, 0), "(events, rejections): every other event is stored");
    assert_eq!(metric(env.worker(w), "ecpat_batch_retries_total").await, 0.0, "a permanent fault is not retried");
    assert!(metric(env.worker(w), "ecpat_messages_returned_total").await >= 1.0);
    assert_eq!(env.value("KE1", "2019", "", "").await, 11, "the ten others and the record as it was");
    stop(env.worker(w));
    assert_eq!(env.queue_depth().await, (0, 0));
    env.cleanup().await;
}

/// The `reason` of the first `x-death` entry RabbitMQ adds when it dead-letters.
fn death_reason(headers: Option<&FieldTable>) -> Option<String> {
    let Some(AMQPValue::FieldArray(deaths)) = headers?.inner().get("x-death") else { return None };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else { return None };
    match death.inner().get("reason") {
        Some(AMQPValue::LongString(reason)) => Some(String::from_utf8_lossy(reason.as_bytes()).into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn three_workers_under_a_duplicate_storm_count_each_event_once() {
    let original = events(4105, 3000);
    let load = Load::new(storm(&original, 4105));
    assert_eq!(model::values(&load.events), model::values(&original), "a storm changes nothing in the model");
    let mut env = TestEnv::new("faults_storm").await;
    let mut pids = vec![];
    for _ in 0..3 {
        let w = env.spawn_worker();
        env.worker(w).wait_ready(WAIT).await;
        pids.push(env.worker(w).child.id());
    }
    assert_eq!(env.queue_depth().await.1, 3, "three workers consume the queue");
    env.publish_raw(&load.messages).await;

    drain(&env, &load, &pids).await;
    // Nothing was redelivered: every event was seen exactly once, as new or as a duplicate.
    let mut duplicates = 0.0;
    for w in 0..3 {
        duplicates += metric(env.worker(w), "ecpat_events_duplicate_total").await;
    }
    assert_eq!(duplicates as i64, load.events.len() as i64 - load.expected().0, "duplicates counted by the workers");
    for w in 0..3 {
        stop(env.worker(w));
    }

    assert_exact(&env, &load, 0).await;
    env.cleanup().await;
}

#[tokio::test]
async fn sigterm_under_a_heavy_backlog_exits_promptly_and_loses_nothing() {
    let load = Load::new(events(4106, 20000));
    let mut env = TestEnv::new("faults_sigterm").await;
    env.publish_raw(&load.messages).await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    wait_until_stored(&env, 2000).await;

    stop(env.worker(w));
    // It committed and acknowledged the batch in hand and returned the rest: with one
    // consumer the queue is FIFO, so the acknowledged messages are exactly the first ones.
    let (ready, consumers) = env.queue_depth().await;
    assert_eq!(consumers, 0);
    let acknowledged = load.messages.len() - ready as usize;
    assert!(acknowledged < load.messages.len(), "the worker was stopped after the backlog was done");
    assert_eq!(
        env.counts().await,
        load.after(acknowledged),
        "(events, rejections) stored for the acknowledged messages"
    );

    let w = env.spawn_worker();
    let pid = env.worker(w).child.id();
    drain(&env, &load, &[pid]).await;
    stop(env.worker(w));

    assert_exact(&env, &load, 0).await;
    env.cleanup().await;
}
