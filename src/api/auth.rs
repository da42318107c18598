//! The optional API token: when `ECPAT_API_TOKEN` is set, every request but the probes
//! (`/healthz`, `/readyz`) and the dashboard's static assets must carry it, as
//! `Authorization: Bearer <token>` or as an `access_token` query parameter (for the
//! dashboard's links and its EventSource, which cannot send headers).
//!
//! The token is for exposing the API beyond loopback, always behind TLS (a reverse proxy):
//! it travels in clear otherwise. It is read from the environment only, never from the
//! configuration files, and never logged.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable that holds the token.
pub const TOKEN_VAR: &str = "ECPAT_API_TOKEN";

/// Paths served without the token besides the dashboard's assets: the probes
/// (orchestrators call them bare).
const PROBES: &[&str] = &["/healthz", "/readyz"];

/// The expected token, kept as its SHA-256 (so that comparing takes the same time whatever
/// the length of what is offered) in a `secrecy` box: never printed, wiped when dropped.
#[derive(Clone, Debug)]
pub struct Token(Arc<SecretBox<[u8; 32]>>);

impl Token {
    /// The token from the environment variable `var` ([`TOKEN_VAR`] for reading); `None`
    /// when it is unset or empty.
    pub fn from_env(var: &str) -> Option<Token> {
        // Wrapped at once, so that the variable's copy is wiped too.
        let token = std::env::var(var).map(SecretString::from).ok()?;
        Some(token).filter(|t| !t.expose_secret().is_empty()).map(|t| Token::new(t.expose_secret()))
    }

    pub fn new(token: &str) -> Token {
        Token(Arc::new(SecretBox::new(Box::new(Sha256::digest(token.as_bytes()).into()))))
    }

    /// Whether `offered` is the token, in constant time.
    pub fn matches(&self, offered: &str) -> bool {
        let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        self.0.expose_secret().ct_eq(&offered).into()
    }
}

/// Wraps every route of `router` with the token check, when there is a token.
pub fn protect(router: Router, token: Option<Token>) -> Router {
    match token {
        Some(token) => {
            tracing::info!("The HTTP API requires a bearer token ({TOKEN_VAR}).");
            router.layer(axum::middleware::from_fn_with_state(token, require))
        }
        None => router,
    }
}

#[derive(Deserialize)]
struct AccessToken {
    access_token: Option<String>,
}

/// The credentials of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim().to_owned())
}

/// The token offered by a request: the bearer credentials, else the query parameter.
fn offered(request: &Request) -> Option<String> {
    bearer(request.headers())
        .or_else(|| Query::<AccessToken>::try_from_uri(request.uri()).ok().and_then(|q| q.0.access_token))
}

async fn require(State(token): State<Token>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if PROBES.contains(&path) || super::dashboard::ASSETS.contains(&path) {
        return next.run(request).await;
    }
    match offered(&request) {
        Some(offered) if token.matches(&offered) => next.run(request).await,
        Some(_) => unauthorized("the API token is wrong"),
        None => unauthorized("this API requires a token: Authorization: Bearer <token>"),
    }
}

/// A 401 answer, `{"error": message}`, that asks for a bearer token.
pub fn unauthorized(message: &str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn the_token_matches_only_itself_and_never_shows() {
        let token = Token::new("s3cret-token");
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-token "));
        assert!(!token.matches(""));
        let shown = format!("{token:?}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
