//! Platform tokens: read from the environment only (never from a file), never printed.

use std::fmt;

use super::Platform;

/// A credential. It has no `Display`, its `Debug` hides it, and it leaves this module only
/// to be put in a request header.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for a request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Each platform's token, if it has one.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    tokens: Vec<(Platform, Secret)>,
}

impl Tokens {
    /// The tokens in the environment (`ECPAT_X_BEARER_TOKEN`, ...); empty ones are ignored.
    pub fn from_env() -> Tokens {
        let mut tokens = Tokens::default();
        for platform in Platform::ALL {
            if let Ok(value) = std::env::var(platform.token_var())
                && !value.trim().is_empty()
            {
                tokens = tokens.with(platform, Secret::new(value.trim()));
            }
        }
        tokens
    }

    /// These tokens, with `secret` for `platform`.
    pub fn with(mut self, platform: Platform, secret: Secret) -> Tokens {
        self.tokens.retain(|(p, _)| *p != platform);
        self.tokens.push((platform, secret));
        self
    }

    pub fn get(&self, platform: Platform) -> Option<&Secret> {
        self.tokens.iter().find(|(p, _)| *p == platform).map(|(_, s)| s)
    }

    /// `text` with every token replaced by `***`: for error details that quote an answer,
    /// in case a platform (or a proxy) echoes a credential back.
    pub fn redact(&self, text: &str) -> String {
        self.tokens
            .iter()
            .filter(|(_, secret)| !secret.0.is_empty())
            .fold(text.to_owned(), |text, (_, secret)| text.replace(secret.expose(), "***"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output_or_redacted_text() {
        let tokens = Tokens::default().with(Platform::X, Secret::new("AAAA-bearer"));
        assert_eq!(format!("{tokens:?}").matches("AAAA").count(), 0);
        assert_eq!(tokens.redact("401: bad token AAAA-bearer"), "401: bad token ***");
        assert!(tokens.get(Platform::Youtube).is_none());
    }
}
