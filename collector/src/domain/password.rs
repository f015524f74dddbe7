//! People's passwords for the console: argon2id hashes, the minimum policy (messages in
//! Vietnamese), one-time passwords, and the usernames accounts may have. Pure: no I/O apart from
//! the operating system's random source.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with OWASP's parameters
//! for argon2id (19 MiB of memory, 2 passes, 1 lane), so a stolen database costs an attacker
//! tens of milliseconds and 19 MiB per guess. The parameters travel in each hash: raising them
//! later still verifies old hashes. A password is never logged nor kept in memory longer than a
//! request (it travels as a [`Secret`]).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use cntt_common::Secret;

/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 10;

/// Longest password accepted, in characters (argon2 takes any length; this bounds the work a
/// single login asks for).
pub const MAX_LENGTH: usize = 128;

/// Memory cost in KiB (OWASP: argon2id, m = 19 MiB, t = 2, p = 1).
const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
const PASSES: u32 = 2;
/// Lanes.
const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh random salt; returns the PHC string to store.
///
/// # Errors
///
/// When the hash cannot be computed (only with a password past argon2's length limit, which
/// the policy already refuses).
///
/// # Panics
///
/// When the operating system has no source of randomness.
pub fn hash_password(password: &Secret) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let salt = SaltString::encode_b64(&salt)
        .map_err(|err| anyhow::anyhow!("encoding a password salt: {err}"))?;
    let hash = hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed hash matches nothing.
pub fn verify_password(password: &Secret, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification against a hash nobody has, so a login for an unknown
/// username takes as long as one with a wrong password (no user enumeration by timing).
pub fn verify_dummy(password: &Secret) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| {
        hash_password(&Secret::new("a password no account has".to_owned()))
            .expect("hashing a fixed password works")
    });
    let _ = verify_password(password, stored);
}

/// Why a new password is refused; the message is for the person, in Vietnamese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Too short.
    #[error("Mật khẩu cần ít nhất {MIN_LENGTH} ký tự.")]
    TooShort,
    /// Too long.
    #[error("Mật khẩu dài quá {MAX_LENGTH} ký tự.")]
    TooLong,
    /// Contains the username.
    #[error("Mật khẩu không được chứa tên đăng nhập.")]
    ContainsUsername,
    /// Made of one repeated character or a run like 1234567890.
    #[error("Mật khẩu quá dễ đoán (một ký tự lặp lại hoặc một dãy liên tiếp).")]
    Trivial,
    /// One of the passwords everyone tries first.
    #[error("Mật khẩu này quá phổ biến, ai cũng có thể đoán được.")]
    Common,
    /// Has control characters (a paste gone wrong).
    #[error("Mật khẩu có ký tự điều khiển; xin gõ lại.")]
    ControlCharacters,
}

/// Passwords attackers try first (lowercased, compared after removing digits and punctuation
/// at the ends); a longer list would add little over the length rule and the lockout.
const COMMON: [&str; 14] = [
    "password",
    "matkhau",
    "matkhaumoi",
    "qwertyuiop",
    "abcdefghij",
    "admin",
    "administrator",
    "iloveyou",
    "welcome",
    "vietnam",
    "letmein",
    "changeme",
    "quantri",
    "1234567890",
];

/// Checks a new password against the minimum policy: 10 to 128 characters, no control
/// characters, not containing the username, not one repeated character or an ascending run,
/// not a common password. Length matters most (NIST SP 800-63B); no rules on character classes.
///
/// # Errors
///
/// The first rule the password breaks.
pub fn check_policy(password: &Secret, username: &str) -> Result<(), PolicyError> {
    let text = password.expose();
    let length = text.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyError::TooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(PolicyError::ControlCharacters);
    }
    let lower = text.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PolicyError::ContainsUsername);
    }
    let chars: Vec<char> = lower.chars().collect();
    let repeated = chars.iter().all(|c| *c == chars[0]);
    let ascending = chars
        .windows(2)
        .all(|pair| u32::from(pair[1]) == u32::from(pair[0]) + 1);
    let descending = chars
        .windows(2)
        .all(|pair| u32::from(pair[0]) == u32::from(pair[1]) + 1);
    if repeated || ascending || descending {
        return Err(PolicyError::Trivial);
    }
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    if COMMON.contains(&core) || COMMON.contains(&lower.as_str()) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

/// A one-time password to give a new person (or after a reset): 16 characters in four groups,
/// from an alphabet without look-alikes (no 0/O, 1/l/I), about 80 bits.
///
/// # Panics
///
/// When the operating system has no source of randomness.
pub fn one_time_password() -> Secret {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let mut text = String::with_capacity(19);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            text.push('-');
        }
        // 256 is a multiple of 32: no bias.
        text.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
    }
    Secret::new(text)
}

/// Checks and normalises a username: lowercase ASCII letters, digits, `.`, `_` and `-`, 3 to 64
/// characters, starting with a letter or digit. Returns it lowercased.
///
/// # Errors
///
/// What is wrong, in English (usernames are made on the command line).
pub fn normalise_username(text: &str) -> anyhow::Result<String> {
    let name = text.trim().to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    if !(3..=64).contains(&name.len())
        || !name.chars().all(allowed)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        anyhow::bail!(
            "username {text:?} must be 3 to 64 characters: letters a-z, digits, '.', '_' or '-', starting with a letter or digit"
        );
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::new(text.to_owned())
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password(&secret("đúng-mật-khẩu-2026")).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(&secret("đúng-mật-khẩu-2026"), &hash));
        assert!(!verify_password(&secret("sai-mật-khẩu-2026"), &hash));
        assert!(!verify_password(&secret("x"), "not a hash"));
        // Two hashes of one password differ (salt).
        assert_ne!(hash, hash_password(&secret("đúng-mật-khẩu-2026")).unwrap());
        verify_dummy(&secret("anything"));
    }

    #[test]
    fn the_policy_names_what_is_wrong_in_vietnamese() {
        let check = |text: &str| check_policy(&secret(text), "nguyenvana");
        assert_eq!(check("ngắn"), Err(PolicyError::TooShort));
        assert_eq!(check(&"a".repeat(129)), Err(PolicyError::TooLong));
        assert_eq!(
            check("x-NguyenVanA-2026"),
            Err(PolicyError::ContainsUsername)
        );
        assert_eq!(check("aaaaaaaaaaaa"), Err(PolicyError::Trivial));
        assert_eq!(check("0123456789"), Err(PolicyError::Trivial));
        assert_eq!(check("abcdefghijk"), Err(PolicyError::Trivial));
        assert_eq!(check("Matkhau2026!"), Err(PolicyError::Common));
        assert_eq!(check("1234567890"), Err(PolicyError::Common));
        assert_eq!(check("mật\tkhẩu dài"), Err(PolicyError::ControlCharacters));
        assert_eq!(check("sông Hồng chảy về xuôi"), Ok(()));
        assert!(PolicyError::TooShort
            .to_string()
            .contains("ít nhất 10 ký tự"));
    }

    #[test]
    fn one_time_passwords_are_readable_and_pass_the_policy() {
        let first = one_time_password();
        let second = one_time_password();
        assert_ne!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 19);
        assert_eq!(first.expose().matches('-').count(), 3);
        assert!(!first.expose().contains(['0', 'o', '1', 'l']));
        assert_eq!(check_policy(&first, "someone"), Ok(()));
    }

    #[test]
    fn usernames_are_plain_and_lowercase() {
        assert_eq!(normalise_username(" NguyenVanA ").unwrap(), "nguyenvana");
        assert_eq!(normalise_username("can.bo_663-1").unwrap(), "can.bo_663-1");
        assert!(normalise_username("ab").is_err());
        assert!(normalise_username("nguyễn").is_err());
        assert!(normalise_username(".hidden").is_err());
        assert!(normalise_username("a b c").is_err());
    }
}
