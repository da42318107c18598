//! RabbitMQ: connecting, declaring the topology of docs/events.md, and publishing with
//! publisher confirms.

mod lazy;
mod socket;

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use serde_json::{Map, Value};
use tracing::warn;

use crate::config::{Amqp, redact};
use crate::telemetry::one_line;
pub use lazy::LazyPublisher;

/// A broker failure, with the URL's password removed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid RabbitMQ URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("RabbitMQ at {url} did not answer within {} s", .timeout.as_secs_f32())]
    TimedOut { url: String, timeout: Duration },
    #[error("RabbitMQ at {url} refused the login of user {user:?}: wrong user name or password ({reason})")]
    LoginRefused { url: String, user: String, reason: String },
    /// The broker answered and said no for another reason, such as an unknown virtual host.
    #[error("RabbitMQ at {url} refused the connection: {reason}")]
    Refused { url: String, reason: String },
    #[error("cannot connect to RabbitMQ at {url}: {source}")]
    Connect { url: String, source: lapin::Error },
    #[error("RabbitMQ error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer (queue deleted or connection closed)")]
    ConsumerEnded,
    #[error("RabbitMQ did not confirm {0} published message(s)")]
    NotConfirmed(usize),
    /// No broker of `amqp.urls` let this client in: what each one did, and whether every
    /// one refused it.
    #[error("no RabbitMQ node of amqp.urls answered: {0}")]
    NoNode(String, bool),
}

impl BrokerError {
    /// Whether the broker refused this client (credentials, virtual host): retrying soon
    /// will not help, someone must change the settings or the broker.
    pub fn is_refused(&self) -> bool {
        matches!(self, BrokerError::LoginRefused { .. } | BrokerError::Refused { .. } | BrokerError::NoNode(_, true))
    }

    /// Whether the URL itself is wrong: no node and no retry can help.
    pub fn is_invalid(&self) -> bool {
        matches!(self, BrokerError::InvalidUrl { .. })
    }
}

/// Opens a connection named after this process, so operators can find it, to the first
/// broker of `amqp.urls` that answers; connecting to each takes at most
/// `amqp.connect_timeout_secs`.
pub async fn connect(settings: &Amqp, name: &str) -> Result<Connection, BrokerError> {
    connect_from(settings, name, 0).await.map(|(connection, _)| connection)
}

/// Connects to the first broker of [`Amqp::urls`] that answers, trying them in order from
/// the one at `first` (and round to the start); returns the connection and the index of its
/// URL. A caller that lost a node passes the index after it, so that a dead node is tried
/// last, not first every time. When none answers, the error says what each one did.
pub async fn connect_from(settings: &Amqp, name: &str, first: usize) -> Result<(Connection, usize), BrokerError> {
    let urls = settings.urls();
    let mut failures = Vec::new();
    for index in (first..first + urls.len()).map(|i| i % urls.len()) {
        match connect_to(&urls[index], settings, name).await {
            Ok(connection) => return Ok((connection, index)),
            Err(e) if e.is_invalid() => return Err(e),
            Err(e) => {
                if urls.len() > 1 {
                    warn!(node = %redact(&urls[index]), error = one_line(&e), "A RabbitMQ node did not let us in; trying the next.");
                }
                failures.push(e);
            }
        }
    }
    match failures.len() {
        1 => Err(failures.remove(0)),
        _ => Err(BrokerError::NoNode(
            failures.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
            failures.iter().all(BrokerError::is_refused),
        )),
    }
}

/// Opens a connection to the broker at `url`.
async fn connect_to(raw: &str, settings: &Amqp, name: &str) -> Result<Connection, BrokerError> {
    let url = redact(raw);
    // Parsed here because lapin's parse errors can quote the whole URL, password included.
    let uri: AMQPUri = raw
        .parse()
        .map_err(|reason: String| BrokerError::InvalidUrl { reason: reason.replace(raw, &url), url: url.clone() })?;
    let user = uri.authority.userinfo.username.clone();
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let timeout = settings.connect_timeout();
    let closer = socket::Closer::default();
    match tokio::time::timeout(timeout, socket::open(uri, properties, closer.clone())).await {
        Err(_) => {
            closer.close();
            Err(BrokerError::TimedOut { url, timeout })
        }
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(source)) => Err(match source.kind() {
            ErrorKind::ProtocolError(e) if e.get_id() == ACCESS_REFUSED => {
                BrokerError::LoginRefused { url, user, reason: e.get_message().to_string() }
            }
            ErrorKind::ProtocolError(e) => BrokerError::Refused { url, reason: e.to_string() },
            _ => BrokerError::Connect { url, source },
        }),
    }
}

/// The reply code of a refused login.
const ACCESS_REFUSED: u16 = 403;

/// The AMQP header a replayed rejection is published with: the id of the rejection it
/// replays, so that a replay that is rejected again points to where it came from.
pub const REPLAY_OF_HEADER: &str = "x-ecpat-replay-of";

/// Declares, idempotently, the exchanges and queues the service uses (docs/events.md), on
/// channels of its own: a refused declaration closes its channel.
///
/// The events exchange is declared with its alternate exchange, so that a message whose
/// routing key matches no binding still reaches the queue. An exchange declared earlier
/// without that argument cannot take it any more (RabbitMQ refuses a declaration with
/// other arguments): it is then used as it is, and a warning tells the operator to give it
/// the alternate exchange by policy (docs/operations.md).
pub async fn declare_topology(connection: &Connection, settings: &Amqp) -> Result<(), BrokerError> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            settings.unrouted_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut alternate = FieldTable::default();
    alternate.insert("alternate-exchange".into(), AMQPValue::LongString(settings.unrouted_exchange.as_str().into()));
    let declared =
        channel.exchange_declare(settings.exchange.as_str().into(), ExchangeKind::Topic, durable, alternate).await;
    let channel = match declared {
        Ok(()) => channel,
        Err(e) if precondition_failed(&e) => {
            warn!(
                exchange = %settings.exchange,
                alternate_exchange = %settings.unrouted_exchange,
                policy = %unrouted_policy(settings),
                "The exchange has no alternate-exchange argument (it was declared before, with other arguments): \
                 unless a policy gives it one, RabbitMQ drops messages whose routing key matches no binding. Set \
                 the policy (docs/operations.md)."
            );
            let channel = connection.create_channel().await?;
            let passive = ExchangeDeclareOptions { passive: true, ..durable };
            channel
                .exchange_declare(
                    settings.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    passive,
                    FieldTable::default(),
                )
                .await?;
            channel
        }
        Err(e) => return Err(e.into()),
    };
    channel
        .exchange_declare(
            settings.dead_letter_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(QUEUE_TYPE.into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(settings.delivery_limit));
    arguments
        .insert("x-dead-letter-exchange".into(), AMQPValue::LongString(settings.dead_letter_exchange.as_str().into()));
    let channel = declare_queue(connection, channel, settings, &settings.queue, arguments, &[GROUP_SIZE]).await?;
    for (exchange, key) in [(&settings.exchange, settings.binding_key.as_str()), (&settings.unrouted_exchange, "")] {
        channel
            .queue_bind(
                settings.queue.as_str().into(),
                exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    // A classic queue on a single node, as it always was; on a cluster, a quorum queue too, or
    // the workers could not declare it while its one node is down.
    let channel = declare_queue(
        connection,
        channel,
        settings,
        &settings.dead_letter_queue,
        FieldTable::default(),
        &[GROUP_SIZE, QUEUE_TYPE],
    )
    .await?;
    channel
        .queue_bind(
            settings.dead_letter_queue.as_str().into(),
            settings.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.close(200, "declared".into()).await?;
    Ok(())
}

/// Declares the queue `name` with `arguments` on `channel` (or on a new one when the first
/// is closed by a refusal); returns the channel that is open.
///
/// With `amqp.quorum_initial_group_size` above 1 (a cluster) the queue is a quorum queue
/// with that many members (`x-quorum-initial-group-size`); at 1 nothing is added, so that a
/// queue declared by earlier versions on a single node is declared again unchanged. Those
/// arguments count only when a queue is created: when the queue exists with others, and
/// RabbitMQ's refusal names one of `tolerated`, the queue is used as it is, with a warning.
async fn declare_queue(
    connection: &Connection,
    channel: Channel,
    settings: &Amqp,
    name: &str,
    mut arguments: FieldTable,
    tolerated: &[&str],
) -> Result<Channel, BrokerError> {
    if settings.quorum_initial_group_size > 1 {
        arguments.insert(QUEUE_TYPE.into(), AMQPValue::LongString("quorum".into()));
        arguments.insert(GROUP_SIZE.into(), AMQPValue::LongLongInt(settings.quorum_initial_group_size.into()));
    }
    let durable_queue = QueueDeclareOptions { durable: true, ..Default::default() };
    match channel.queue_declare(name.into(), durable_queue, arguments).await {
        Ok(_) => Ok(channel),
        Err(e) if precondition_failed(&e) && tolerated.iter().any(|arg| refusal_text(&e).contains(arg)) => {
            warn!(
                queue = name,
                quorum_initial_group_size = settings.quorum_initial_group_size,
                refusal = refusal_text(&e),
                "The queue exists with other arguments, which count only when a queue is created: it is used as it \
                 is. On a cluster, give it members with rabbitmq-queues grow (docs/operations.md)."
            );
            let channel = connection.create_channel().await?;
            let passive = QueueDeclareOptions { passive: true, ..durable_queue };
            channel.queue_declare(name.into(), passive, FieldTable::default()).await?;
            Ok(channel)
        }
        Err(e) => Err(e.into()),
    }
}

/// The queue argument that makes a quorum queue.
const QUEUE_TYPE: &str = "x-queue-type";

/// The queue argument that sets a new quorum queue's members.
const GROUP_SIZE: &str = "x-quorum-initial-group-size";

/// The command that gives an existing events exchange its alternate exchange by policy.
pub fn unrouted_policy(settings: &Amqp) -> String {
    let vhost = settings.urls()[0].parse::<AMQPUri>().map(|uri| uri.vhost).unwrap_or_else(|_| "/".into());
    let vhost = if vhost == "/" { String::new() } else { format!("-p '{vhost}' ") };
    format!(
        r#"rabbitmqctl set_policy {vhost}{} '^{}$' '{{"alternate-exchange":"{}"}}' --apply-to exchanges"#,
        settings.unrouted_exchange,
        regex_escaped(&settings.exchange),
        settings.unrouted_exchange
    )
}

/// `name` with the characters that mean something in a regular expression escaped.
fn regex_escaped(name: &str) -> String {
    name.chars().fold(String::new(), |mut escaped, c| {
        if r"\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
        escaped
    })
}

/// Whether the broker refused a declaration because the object exists with other settings.
fn precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// What the broker said when it refused something (empty for other errors).
fn refusal_text(error: &lapin::Error) -> String {
    match error.kind() {
        ErrorKind::ProtocolError(e) => e.get_message().to_string(),
        _ => String::new(),
    }
}

/// The routing key for a body: its event `type` when that is under `org.ecpat.`, so
/// that the queue's binding routes it; `org.ecpat.batch` for a batch; else
/// `org.ecpat.unknown` (the worker then rejects and keeps it).
pub fn routing_key_for(body: &str) -> String {
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') {
        return "org.ecpat.batch".into();
    }
    routing_key_of(&serde_json::from_str::<Value>(trimmed).unwrap_or(Value::Null))
}

/// The routing key for a parsed body, as [`routing_key_for`].
pub fn routing_key_of(body: &Value) -> String {
    match body {
        Value::Array(_) => "org.ecpat.batch".into(),
        _ => match body.get("type").and_then(Value::as_str) {
            Some(t) if t.starts_with("org.ecpat.") && t.len() <= 255 => t.to_owned(),
            _ => "org.ecpat.unknown".into(),
        },
    }
}

/// The rejection a message replays, from its [`REPLAY_OF_HEADER`] (as JSON, see
/// [`headers_json`]): a positive integer, or a string of one.
pub fn replay_of(headers: &Value) -> Option<i64> {
    let value = headers.get(REPLAY_OF_HEADER)?;
    value.as_i64().or_else(|| value.as_str()?.parse().ok()).filter(|id| *id > 0)
}

/// Publishes bodies with publisher confirms, waiting for every confirm.
pub struct Publisher {
    channel: Channel,
    exchange: String,
    /// The `user_id` property of every message: the connection's user, which RabbitMQ
    /// checks, and which the worker's producer rules judge.
    user_id: String,
}

/// The RabbitMQ user an AMQP URL logs in as: its user name, or `guest` without one.
pub fn amqp_user(url: &str) -> String {
    let name = url::Url::parse(url).map(|url| url.username().to_owned()).unwrap_or_default();
    let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy().into_owned();
    if name.is_empty() { "guest".to_owned() } else { name }
}

impl Publisher {
    /// A channel in confirm mode on `connection`, made with `settings`: it publishes to
    /// their exchange as the user of their URL.
    pub async fn new(connection: &Connection, settings: &Amqp) -> Result<Self, BrokerError> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Publisher { channel, exchange: settings.exchange.clone(), user_id: amqp_user(&settings.urls()[0]) })
    }

    /// Whether its channel is still open (a channel error or a lost connection closes it).
    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }

    /// Publishes persistent messages and waits until the broker has confirmed them all.
    pub async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), BrokerError> {
        self.publish_each(messages.iter().map(|(key, body)| (key.as_str(), body.as_slice(), None))).await
    }

    /// Publishes stored rejections (id, routing key, body) again, each with its id in
    /// [`REPLAY_OF_HEADER`], and waits until the broker has confirmed them all.
    pub async fn publish_replays(&self, replays: &[(i64, String, Vec<u8>)]) -> Result<(), BrokerError> {
        self.publish_each(replays.iter().map(|(id, key, body)| {
            let mut headers = FieldTable::default();
            headers.insert(REPLAY_OF_HEADER.into(), AMQPValue::LongLongInt(*id));
            (key.as_str(), body.as_slice(), Some(headers))
        }))
        .await
    }

    async fn publish_each(
        &self,
        messages: impl Iterator<Item = (&str, &[u8], Option<FieldTable>)>,
    ) -> Result<(), BrokerError> {
        let mut confirms = Vec::with_capacity(messages.size_hint().0);
        for (routing_key, body, headers) in messages {
            let content_type = if body.trim_ascii_start().starts_with(b"[") {
                "application/cloudevents-batch+json"
            } else {
                "application/cloudevents+json"
            };
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(content_type.into())
                .with_user_id(self.user_id.as_str().into());
            if let Some(headers) = headers {
                properties = properties.with_headers(headers);
            }
            let options = BasicPublishOptions { mandatory: true, ..Default::default() };
            confirms.push(
                self.channel
                    .basic_publish(self.exchange.as_str().into(), routing_key.into(), options, body, properties)
                    .await?,
            );
        }
        let mut failed = 0;
        for confirm in confirms {
            let confirmation = confirm.await?;
            if !confirmation.is_ack() || confirmation.take_message().is_some() {
                failed += 1;
            }
        }
        if failed > 0 { Err(BrokerError::NotConfirmed(failed)) } else { Ok(()) }
    }
}

/// AMQP headers as readable JSON (strings decoded lossily, bytes as arrays).
pub fn headers_json(headers: Option<&FieldTable>) -> Value {
    let mut map = Map::new();
    for (key, value) in headers.map(|h| h.inner().iter()).into_iter().flatten() {
        map.insert(key.as_str().to_owned(), amqp_value_json(value));
    }
    Value::Object(map)
}

fn amqp_value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::from(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Float(n) => Value::from(*n),
        AMQPValue::Double(n) => Value::from(*n),
        AMQPValue::DecimalValue(d) => Value::from(format!("{d:?}")),
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::FieldArray(items) => Value::Array(items.as_slice().iter().map(amqp_value_json).collect()),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::FieldTable(table) => headers_json(Some(table)),
        AMQPValue::ByteArray(bytes) => Value::from(bytes.as_slice().to_vec()),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    #[test]
    fn the_replay_header_names_a_positive_id_or_nothing() {
        let header = |value: Value| json!({ REPLAY_OF_HEADER: value });

        assert_eq!(replay_of(&header(json!(42))), Some(42));
        assert_eq!(replay_of(&header(json!("42"))), Some(42));
        for value in [json!(0), json!(-3), json!("forty-two"), json!("99999999999999999999"), json!([42]), json!(null)]
        {
            assert_eq!(replay_of(&header(value.clone())), None, "{value}");
        }
        assert_eq!(replay_of(&json!({})), None);
    }

    #[test]
    fn the_policy_command_matches_only_the_events_exchange_and_names_the_vhost_when_not_the_default() {
        let settings = crate::config::Settings::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config")))
            .expect("the defaults load");
        let mut amqp = settings.amqp;
        amqp.url = "amqp://127.0.0.1:5672/%2f".into();
        assert_eq!(
            unrouted_policy(&amqp),
            r#"rabbitmqctl set_policy ecpat.events.unrouted '^ecpat\.events$' '{"alternate-exchange":"ecpat.events.unrouted"}' --apply-to exchanges"#
        );
        amqp.url = "amqp://127.0.0.1:5672/indicators".into();
        assert!(unrouted_policy(&amqp).starts_with("rabbitmqctl set_policy -p 'indicators' ecpat.events.unrouted "));
        amqp.exchange = "events+(v2)".into();
        assert!(unrouted_policy(&amqp).contains(r"'^events\+\(v2\)$'"), "{}", unrouted_policy(&amqp));
    }
}
