//! Second factors below HTTP.

/// Crockford base32: no i, l, o, u, so codes read aloud unambiguously.
pub const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Lowercases, drops separators and maps look-alikes; None unless 10 valid characters.
pub fn normalize_recovery_code(raw: &str) -> Option<String> {
    let normalized: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (normalized.len() == 10 && normalized.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_normalize_forgivingly_but_strictly() {
        assert_eq!(
            normalize_recovery_code("ABCDE-FGH0J").as_deref(),
            Some("abcdefgh0j")
        );
        assert_eq!(
            normalize_recovery_code(" abcde fghoj ").as_deref(),
            Some("abcdefgh0j")
        );
        assert!(normalize_recovery_code("abcde").is_none());
        assert!(normalize_recovery_code("abcde-fghu1").is_none());
    }
}
