//! Platform tokens: read from the environment only (never from a file), never printed: each
//! is a `secrecy::SecretString`, whose `Debug` hides it and which is wiped from memory when
//! dropped.

use secrecy::{ExposeSecret, SecretString};

use super::Platform;

/// Each platform's token, if it has one.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    tokens: Vec<(Platform, SecretString)>,
}

impl Tokens {
    /// The tokens in the environment (`ECPAT_X_BEARER_TOKEN`, ...); empty ones are ignored.
    pub fn from_env() -> Tokens {
        let mut tokens = Tokens::default();
        for platform in Platform::ALL {
            // Wrapped at once, so that the variable's copy is wiped too.
            if let Ok(value) = std::env::var(platform.token_var()).map(SecretString::from)
                && !value.expose_secret().trim().is_empty()
            {
                tokens = tokens.with(platform, SecretString::from(value.expose_secret().trim()));
            }
        }
        tokens
    }

    /// These tokens, with `secret` for `platform`.
    pub fn with(mut self, platform: Platform, secret: SecretString) -> Tokens {
        self.tokens.retain(|(p, _)| *p != platform);
        self.tokens.push((platform, secret));
        self
    }

    pub fn get(&self, platform: Platform) -> Option<&SecretString> {
        self.tokens.iter().find(|(p, _)| *p == platform).map(|(_, s)| s)
    }

    /// `text` with every token replaced by `***`: for error details that quote an answer,
    /// in case a platform (or a proxy) echoes a credential back.
    pub fn redact(&self, text: &str) -> String {
        self.tokens
            .iter()
            .map(|(_, secret)| secret.expose_secret())
            .filter(|secret| !secret.is_empty())
            .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output_or_redacted_text() {
        let tokens = Tokens::default().with(Platform::X, SecretString::from("AAAA-bearer"));
        assert_eq!(format!("{tokens:?}").matches("AAAA").count(), 0);
        assert_eq!(tokens.redact("401: bad token AAAA-bearer"), "401: bad token ***");
        assert!(tokens.get(Platform::Youtube).is_none());
    }
}
