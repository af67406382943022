//! Bounded deserialisers: each length is checked against its limit before allocation.

use super::*;

pub(super) fn de_signatures<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<CardSignature>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

pub(super) fn de_cards<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CardDescription>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

pub(super) fn de_serials<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CardSerial>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

pub(super) fn de_holders<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HolderName>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

pub(super) fn de_terminals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TerminalInfo>, D::Error> {
    deserialize_vec(d, MAX_TERMINALS_LISTED)
}

pub(super) fn de_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyObjectSummary>, D::Error> {
    deserialize_vec(d, MAX_KEYS_PER_PAGE)
}

#[derive(Deserialize)]
struct LogLine(#[serde(deserialize_with = "de_log_line")] String);

pub(super) fn de_log_line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let line = deserialize_string(d, MAX_LOG_LINE)?;
    // Canonical log lines escape every control character: a raw one is not a log line.
    if line.chars().any(char::is_control) {
        return Err(serde::de::Error::custom("control character in a log line"));
    }
    Ok(line)
}

pub(super) fn de_log_lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let lines: Vec<LogLine> = deserialize_vec(d, MAX_LOG_LINES_PER_PAGE)?;
    Ok(lines.into_iter().map(|l| l.0).collect())
}

pub(super) fn de_filter_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Text(#[serde(deserialize_with = "de_text")] String);
    fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let text = deserialize_string(d, MAX_FILTER_TEXT)?;
        if !is_printable(&text) {
            return Err(serde::de::Error::custom("unprintable filter text"));
        }
        Ok(text)
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

pub(super) fn de_password<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = deserialize_string(d, 128)?;
    if !text.chars().all(|c| c.is_ascii_graphic() || c == '-') {
        return Err(serde::de::Error::custom(
            "setup password outside printable ASCII",
        ));
    }
    Ok(text)
}

pub(super) fn de_backup_header<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_BACKUP_HEADER, "backup header too long")
}

pub(super) fn de_backup_trailer<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_BACKUP_TRAILER, "backup trailer too long")
}

pub(super) fn de_restore_chunk<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_RESTORE_CHUNK, "restore chunk too long")
}

pub(super) fn de_bytes<'de, D: Deserializer<'de>>(
    d: D,
    max: usize,
    message: &'static str,
) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > max {
        return Err(serde::de::Error::custom(message));
    }
    Ok(bytes.into_vec())
}

pub(super) fn de_diff_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DiffKey>, D::Error> {
    deserialize_vec(d, MAX_DIFF_KEYS)
}

pub(super) fn de_changes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::domain::ParameterChange>, D::Error> {
    deserialize_vec(d, crate::domain::Parameter::ALL.len())
}

pub(super) fn de_recovery_key<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > MAX_RECOVERY_PUBLIC_KEY {
        return Err(serde::de::Error::custom("recovery public key too long"));
    }
    Ok(bytes.into_vec())
}

pub(super) fn de_commitments<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > MAX_COMMITMENTS {
        return Err(serde::de::Error::custom("commitments too long"));
    }
    Ok(bytes.into_vec())
}
