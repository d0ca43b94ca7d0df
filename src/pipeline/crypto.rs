//! age keys from their text form, with errors that name the offending entry.

use age::x25519::{Identity, Recipient};

/// An age key that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ageRecipients[{index}]: {reason} (expected an X25519 public key `age1...`)")]
    Recipient { index: usize, reason: String },
    #[error("age identity line {line}: {reason} (expected `AGE-SECRET-KEY-1...`)")]
    Identity { line: usize, reason: String },
    #[error("age identity: no `AGE-SECRET-KEY-1...` line found")]
    NoIdentity,
}

/// Parses `age1...` recipients.
pub fn parse_recipients(list: &[String]) -> Result<Vec<Recipient>, CryptoError> {
    list.iter()
        .enumerate()
        .map(|(index, text)| {
            text.trim()
                .parse::<Recipient>()
                .map_err(|reason| CryptoError::Recipient {
                    index,
                    reason: reason.to_string(),
                })
        })
        .collect()
}

/// Parses an identity file (one `AGE-SECRET-KEY-1...` per line, `#` comments allowed).
pub fn parse_identities(text: &str) -> Result<Vec<Identity>, CryptoError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The reason text never contains the key itself.
        let identity = line.parse::<Identity>().map_err(|reason| CryptoError::Identity {
            line: n + 1,
            reason: reason.to_string(),
        })?;
        out.push(identity);
    }
    if out.is_empty() {
        return Err(CryptoError::NoIdentity);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn generated_keys_parse_and_bad_ones_name_the_index() {
        let id = Identity::generate();
        let text = format!("# key\n{}\n", id.to_string().expose_secret());
        assert_eq!(parse_identities(&text).unwrap().len(), 1);
        let err = parse_recipients(&[id.to_public().to_string(), "nope".into()]).unwrap_err();
        assert!(err.to_string().starts_with("ageRecipients[1]"), "{err}");
    }
}
