//! One scenario's own database, exchange and queue, and the worker processes it starts.

use std::process::Child;
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher};
use ecpat_indicators::config::Settings;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use sqlx::PgPool;

use crate::isolated;

/// How each scenario's database is prepared (`--frameworks`, `--worker-migrates`), set
/// once by `main`.
pub static SETUP: std::sync::OnceLock<(usize, bool)> = std::sync::OnceLock::new();

/// One scenario's database, exchange and queue.
pub struct Scenario {
    pub name: String,
    pub settings: Settings,
    pub pool: PgPool,
}

impl Scenario {
    pub async fn new(label: &str) -> Scenario {
        let name = format!("bench_{label}_{}", std::process::id());
        let settings = isolated::settings(&name);
        let &(frameworks, worker_migrates) = SETUP.get().unwrap_or(&(1, false));
        if worker_migrates {
            use sqlx::migrate::MigrateDatabase;
            sqlx::Postgres::create_database(&settings.database.url).await.expect("PostgreSQL is reachable");
            let pool = PgPool::connect(&settings.database.url).await.expect("PostgreSQL is reachable");
            return Scenario { name, settings, pool };
        }
        let pool = ecpat_indicators::app::migrate(&settings).await.expect("PostgreSQL is reachable");
        if frameworks == 2 {
            load_copy(&pool).await;
        }
        Scenario { name, settings, pool }
    }

    /// With `--worker-migrates --frameworks 2`, once the workers have made the tables and
    /// loaded the default framework: loads the copy. Its time counts in the drain, as the
    /// workers' migration does.
    pub async fn after_start(&self) {
        let &(frameworks, worker_migrates) = SETUP.get().unwrap_or(&(1, false));
        if !(worker_migrates && frameworks == 2) {
            return;
        }
        let start = Instant::now();
        while !ecpat_indicators::store::frameworks::read(&self.pool)
            .await
            .is_ok_and(|loaded| loaded.get(ecpat_indicators::framework::DEFAULT_ID).is_some())
        {
            assert!(start.elapsed() < Duration::from_secs(60), "the workers loaded no framework within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        load_copy(&self.pool).await;
    }

    pub async fn publish(&self, bodies: &[(String, Vec<u8>)]) -> Duration {
        let connection =
            broker::connect(&self.settings.amqp, "benchmark publisher").await.expect("RabbitMQ is reachable");
        broker::declare_topology(&connection, &self.settings.amqp).await.unwrap();
        let publisher = Publisher::new(&connection, &self.settings.amqp).await.unwrap();
        let start = Instant::now();
        for window in bodies.chunks(2000) {
            publisher.publish_all(window).await.unwrap();
        }
        let took = start.elapsed();
        connection.close(200, "ok".into()).await.unwrap();
        took
    }

    /// Starts a worker (see [`isolated::worker_command`]) with `extra` settings.
    pub fn spawn(&self, extra: &[(&str, &str)]) -> Child {
        let mut command = isolated::worker_command(&self.settings);
        command.envs(extra.iter().copied());
        command.spawn().expect("build the worker first: cargo build --release")
    }

    /// Events stored (0 while a worker that migrates has not created the table yet).
    pub async fn stored(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events").fetch_one(&self.pool).await.unwrap_or(0)
    }

    /// Messages ready in the queue (not yet delivered to a worker).
    pub async fn ready(&self, channel: &lapin::Channel) -> u32 {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let queue = channel.queue_declare(self.settings.amqp.queue.as_str().into(), passive, FieldTable::default());
        queue.await.expect("the queue exists").message_count()
    }

    pub async fn drop(self) {
        isolated::remove(&self.settings, &self.name, self.pool).await;
    }
}

pub fn stop(child: &mut Child) {
    // SIGTERM, then wait: the worker commits what it holds and exits.
    unsafe { kill(child.id() as i32, 15) };
    let _ = child.wait();
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A port nothing listens on now, for a worker's HTTP server.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Loads a copy of the default framework under another id: every record counts twice.
async fn load_copy(pool: &PgPool) {
    let text = ecpat_indicators::framework::DEFAULT_TEXT
        .replace(&format!("id = \"{}\"", ecpat_indicators::framework::DEFAULT_ID), "id = \"copy-2018-2021\"");
    let framework = ecpat_indicators::framework::document::parse(&text).expect("the copy reads");
    ecpat_indicators::store::recompute::load(pool, framework, &text).await.expect("the copy loads");
}
