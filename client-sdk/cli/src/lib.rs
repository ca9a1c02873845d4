//! The `dagger` command-line tool (the binary) and what it shares with
//! `dagger-migrate` (this library): keypairs, amounts and durations read
//! the same, Solana-CLI way, and one way to report errors. Dapps depend on
//! `dagger-client` alone, which pulls in none of this.

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::{anyhow, bail, Result};
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL,
    pubkey::Pubkey,
    signature::{read_keypair_file, Keypair},
    signer::Signer,
};

/// `~` and `~/...` expand to the home directory, as in a shell.
pub fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::home_dir() {
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

pub fn read_keypair(path: &str) -> Result<Keypair> {
    let expanded = expand_tilde(path);
    read_keypair_file(&expanded).map_err(|error| {
        anyhow!(
            "cannot read keypair file {}: {error}\n\
             Create one with `solana-keygen new -o {}` or pass another with -k/--keypair",
            expanded.display(),
            expanded.display()
        )
    })
}

pub fn parse_pubkey(value: &str) -> Result<Pubkey> {
    Pubkey::from_str(value).map_err(|_| anyhow!("`{value}` is not a valid base58 public key"))
}

/// A pubkey, or a keypair file whose pubkey is meant (Solana CLI style).
pub fn pubkey_or_keypair(value: &str) -> Result<Pubkey> {
    if let Ok(pubkey) = Pubkey::from_str(value) {
        return Ok(pubkey);
    }
    if expand_tilde(value).exists() {
        return Ok(read_keypair(value)?.pubkey());
    }
    bail!("`{value}` is neither a base58 public key nor a keypair file")
}

/// SOL as a decimal string ("1.5") to lamports, exactly (no floats).
pub fn parse_sol(value: &str) -> Result<u64> {
    let invalid = || anyhow!("`{value}` is not an amount of SOL (e.g. 10 or 0.5)");
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if (whole.is_empty() && fraction.is_empty())
        || fraction.len() > 9
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| invalid())?
    };
    whole
        .checked_mul(LAMPORTS_PER_SOL)
        .and_then(|lamports| lamports.checked_add(fraction))
        .ok_or_else(|| anyhow!("`{value}` SOL is more than a u64 of lamports"))
}

/// Lamports as SOL for display: no trailing zeros, no floats.
pub fn sol(lamports: u64) -> String {
    let whole = lamports / LAMPORTS_PER_SOL;
    let fraction = lamports % LAMPORTS_PER_SOL;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:09}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// Seconds, or a number with one unit: s, m, h, d.
pub fn parse_duration(value: &str) -> Result<Duration> {
    let invalid = || anyhow!("`{value}` is not a duration (e.g. 3600, 90s, 30m, 2h, 1d)");
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

/// Clap value parsers: bad values are usage errors (exit 2) that name the
/// flag, before anything connects.
pub fn sol_arg(value: &str) -> Result<u64, String> {
    parse_sol(value).map_err(|e| e.to_string())
}

pub fn duration_arg(value: &str) -> Result<Duration, String> {
    parse_duration(value).map_err(|e| e.to_string())
}

pub fn pubkey_arg(value: &str) -> Result<Pubkey, String> {
    parse_pubkey(value).map_err(|e| e.to_string())
}

/// 32 bytes as exactly 64 hex characters.
pub fn hash_arg(value: &str) -> Result<[u8; 32], String> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(value, &mut hash)
        .map_err(|_| format!("`{value}` is not 64 hex characters (a 32-byte hash)"))?;
    Ok(hash)
}

/// `--image`: an image id (64 hex characters) or a name to resolve (up to
/// 64 letters, digits, `.`, `_` and `-`).
pub fn image_arg(value: &str) -> Result<String, String> {
    let hex_id = value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit());
    let name = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if hex_id || name {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is neither an image id (64 hex characters) nor an image name (letters, \
             digits, `.`, `_`, `-`)"
        ))
    }
}

/// How every DAGGER binary reports a failure: with `json`, one object on
/// stdout, `{"error": {"message", "program_error": {"code", "name",
/// "message"} | null, "signature", "logs"}}`; otherwise `Error: ...` and
/// the program's logs on stderr.
pub fn report_error(json: bool, error: &anyhow::Error) {
    use dagger_client::ClientError;
    let client_error = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ClientError>());
    let logs = client_error.map(ClientError::logs).unwrap_or_default();
    if json {
        let program_error = client_error
            .and_then(ClientError::program_failure)
            .map(|failure| {
                serde_json::json!({
                    "code": failure.code(),
                    "name": failure_name(failure),
                    "message": failure.to_string(),
                })
            });
        let report = serde_json::json!({
            "error": {
                "message": format!("{error:#}"),
                "program_error": program_error,
                "signature": client_error.and_then(ClientError::signature),
                "logs": logs,
            }
        });
        println!("{report}");
    } else {
        eprintln!("Error: {error:#}");
        if !logs.is_empty() {
            eprintln!("Program logs:");
            for line in logs {
                eprintln!("  {line}");
            }
        }
    }
}

fn failure_name(failure: &dagger_client::ProgramFailure) -> Option<String> {
    use dagger_client::ProgramFailure::*;
    match failure {
        Dagger(error) => Some(error.name()),
        Anchor(error) => Some(error.name()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_exactly_64_hex_characters() {
        let hash = super::hash_arg(&"ab".repeat(32)).unwrap();
        assert_eq!(hash, [0xab; 32]);
        assert!(super::hash_arg(&"ab".repeat(31)).is_err());
        assert!(super::hash_arg(&"zz".repeat(32)).is_err());
        assert!(super::hash_arg(&"é".repeat(32)).is_err());
        // A sign is not a digit (`from_str_radix` alone would take it).
        assert!(super::hash_arg(&"+a".repeat(32)).is_err());
    }

    use super::*;

    #[test]
    fn sol_amounts_parse_exactly() {
        assert_eq!(parse_sol("1").unwrap(), LAMPORTS_PER_SOL);
        assert_eq!(parse_sol("0.5").unwrap(), LAMPORTS_PER_SOL / 2);
        assert_eq!(parse_sol(".000000001").unwrap(), 1);
        assert_eq!(parse_sol("10.25").unwrap(), 10_250_000_000);
        for bad in ["", ".", "1.0000000001", "-1", "1e9", "abc", "1.2.3"] {
            assert!(parse_sol(bad).is_err(), "{bad}");
        }
        assert!(parse_sol("18446744074").is_err(), "overflows u64 lamports");
        assert_eq!(sol(1_500_000_000), "1.5");
        assert_eq!(sol(1), "0.000000001");
        assert_eq!(sol(7 * LAMPORTS_PER_SOL), "7");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("3600").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert_eq!(parse_duration("1d").unwrap().as_secs(), 86_400);
        for bad in ["", "h", "1w", "1.5h", "-1", "1 h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tilde_expands_to_home() {
        let home = std::env::home_dir().expect("a home directory");
        assert_eq!(expand_tilde("~/.config/x"), home.join(".config/x"));
        assert_eq!(expand_tilde("~"), home);
        assert_eq!(expand_tilde("~other/x"), PathBuf::from("~other/x"));
        assert_eq!(expand_tilde("/abs"), PathBuf::from("/abs"));
    }
}
