//! RabbitMQ as an operator sees it, through `rabbitmqctl`: which connection is a worker's,
//! what a worker holds unacknowledged, closing a connection.
//!
//! `list_queues` counts lag by seconds for quorum queues; a channel answers for itself, so
//! unacknowledged messages are asked of the workers' channels.

use std::time::Duration;

use tokio::process::Command;

/// Runs `rabbitmqctl` and returns its standard output; fails the test if it fails.
async fn rabbitmqctl(args: &[&str]) -> String {
    let output = tokio::time::timeout(Duration::from_secs(60), Command::new("rabbitmqctl").args(args).output())
        .await
        .unwrap_or_else(|_| panic!("rabbitmqctl {args:?} did not answer within 60 s"))
        .expect("rabbitmqctl runs (the tests need it on the PATH, with access to the broker)");
    assert!(output.status.success(), "rabbitmqctl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The broker's connection pids of the worker processes `pids` (connections are named
/// `ecpat-indicators worker pid <pid>`).
pub async fn worker_connections(pids: &[u32]) -> Vec<String> {
    let listing = rabbitmqctl(&["list_connections", "-s", "pid", "client_properties"]).await;
    let names: Vec<String> = pids.iter().map(|pid| format!("\"ecpat-indicators worker pid {pid}\"")).collect();
    listing
        .lines()
        .filter(|line| names.iter().any(|name| line.contains(name.as_str())))
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect()
}

/// Messages the worker processes `pids` hold unacknowledged.
pub async fn unacknowledged(pids: &[u32]) -> u64 {
    let connections = worker_connections(pids).await;
    let listing = rabbitmqctl(&["list_channels", "-s", "connection", "messages_unacknowledged"]).await;
    listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(connection, _)| connections.iter().any(|c| c == connection))
        .map(|(_, count)| count.trim().parse::<u64>().expect("a count"))
        .sum()
}

/// Closes a connection from the broker's side, as an operator (or a broker restart) would.
pub async fn close_connection(connection: &str) {
    rabbitmqctl(&["close_connection", connection, "fault injection test"]).await;
}
