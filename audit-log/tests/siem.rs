//! Syslog records checked against RFC 5424's grammar (section 6, its ABNF), CEF records against
//! the CEF header rules and escaping (ArcSight CEF, revision 25), each parsed back by an
//! independent reader here and compared with the entry's fields.

use audit_log::testkit::{TestLog, sample_draft};
use audit_log::{
    Actor, AuditSigner, Chain, Entry, EntryDraft, Operation, Outcome, Role, SiemFormat,
    convert_export, to_cef, to_syslog,
};

const HSM: &str = "hsm-0123456789abcdef";

/// Entries with every awkward character the formats escape, and the extremes.
fn entries() -> Vec<Entry> {
    let mut chain = Chain::for_log("bank-1");
    let mut drafts: Vec<EntryDraft> = (1..=22)
        .map(|i| sample_draft(i, 1_732_377_600_000 + i, i % 7 == 0))
        .collect();
    drafts.push(
        EntryDraft::new(
            u64::MAX,
            Actor::new(
                Role::DeviceSo,
                ["Ann \"]\" Lee", "Bo|b = \\ x", "tab\there"],
            ),
            Operation::new("so.login").unwrap(),
            Outcome::failed("line one\r\nline two \u{2028} [x] |y| a=b \\"),
        )
        .with_object("key/\u{1}\u{7f}\"]")
        .with_detail("k", "v=w; \"q\" ]"),
    );
    drafts.push(EntryDraft::new(
        0,
        Actor::new(Role::Unauthenticated, Vec::<String>::new()),
        Operation::new(format!("a{}", "b".repeat(40))).unwrap(),
        Outcome::refused("x"),
    ));
    drafts
        .into_iter()
        .map(|d| chain.append(d).unwrap())
        .collect()
}

/// Control characters as the formats show them (U+FFFD), except those CEF escapes.
fn visible(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .map(|c| {
            let control = c < ' ' || c == '\u{7f}';
            if control && !(keep_newlines && (c == '\n' || c == '\r')) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

// ---- RFC 5424 -------------------------------------------------------------------------------

#[derive(Debug)]
struct Syslog {
    pri: u32,
    version: u32,
    timestamp: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    elements: Vec<(String, Vec<(String, String)>)>,
    msg: Option<String>,
}

fn printusascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// Reads a record by RFC 5424's ABNF, or says where it breaks it.
fn parse_syslog(line: &str) -> Result<Syslog, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let expect = |i: &mut usize, c: u8| -> Result<(), String> {
        if b.get(*i) == Some(&c) {
            *i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, *i))
        }
    };
    let digits = |i: &mut usize, min: usize, max: usize| -> Result<u32, String> {
        let n = b[*i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n < min || n > max {
            return Err(format!("{min} to {max} digits at {}", *i));
        }
        let v = line[*i..*i + n].parse().unwrap();
        *i += n;
        Ok(v)
    };
    let token = |i: &mut usize, max: usize| -> Result<String, String> {
        let n = b[*i..].iter().take_while(|c| printusascii(**c)).count();
        if n == 0 || n > max {
            return Err(format!(
                "a field of 1 to {max} printable characters at {}",
                *i
            ));
        }
        let t = line[*i..*i + n].to_owned();
        *i += n;
        Ok(t)
    };
    expect(&mut i, b'<')?;
    let pri = digits(&mut i, 1, 3)?;
    if pri > 191 {
        return Err("PRIVAL above 191".into());
    }
    expect(&mut i, b'>')?;
    if b.get(i) == Some(&b'0') {
        return Err("VERSION starts with 0".into());
    }
    let version = digits(&mut i, 1, 3)?;
    expect(&mut i, b' ')?;
    let timestamp = token(&mut i, 64)?;
    if timestamp != "-" {
        check_timestamp(&timestamp)?;
    }
    expect(&mut i, b' ')?;
    let hostname = token(&mut i, 255)?;
    expect(&mut i, b' ')?;
    let app = token(&mut i, 48)?;
    expect(&mut i, b' ')?;
    let procid = token(&mut i, 128)?;
    expect(&mut i, b' ')?;
    let msgid = token(&mut i, 32)?;
    expect(&mut i, b' ')?;
    let mut elements = Vec::new();
    if b.get(i) == Some(&b'-') {
        i += 1;
    } else {
        while b.get(i) == Some(&b'[') {
            i += 1;
            let id = sd_name(line, &mut i)?;
            let mut params = Vec::new();
            while b.get(i) == Some(&b' ') {
                i += 1;
                let name = sd_name(line, &mut i)?;
                expect(&mut i, b'=')?;
                expect(&mut i, b'"')?;
                let mut value = String::new();
                loop {
                    let c = line[i..].chars().next().ok_or("unterminated PARAM-VALUE")?;
                    match c {
                        '"' => break,
                        ']' => return Err(format!("unescaped ] at {i}")),
                        '\\' => {
                            let next = line[i + 1..].chars().next().ok_or("dangling \\")?;
                            if matches!(next, '"' | '\\' | ']') {
                                value.push(next);
                                i += 2;
                            } else {
                                // RFC 5424: any other backslash is kept as it is.
                                value.push('\\');
                                i += 1;
                            }
                        }
                        c => {
                            value.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                i += 1;
                params.push((name, value));
            }
            expect(&mut i, b']')?;
            elements.push((id, params));
        }
        if elements.is_empty() {
            return Err("STRUCTURED-DATA is neither - nor an element".into());
        }
    }
    let msg = if i == b.len() {
        None
    } else {
        expect(&mut i, b' ')?;
        Some(line[i..].to_owned())
    };
    Ok(Syslog {
        pri,
        version,
        timestamp,
        hostname,
        app,
        procid,
        msgid,
        elements,
        msg,
    })
}

/// SD-NAME: 1 to 32 printable US-ASCII characters other than `=`, space, `]` and `"`.
fn sd_name(line: &str, i: &mut usize) -> Result<String, String> {
    let b = line.as_bytes();
    let n = b[*i..]
        .iter()
        .take_while(|c| printusascii(**c) && !matches!(c, b'=' | b']' | b'"'))
        .count();
    if n == 0 || n > 32 {
        return Err(format!("SD-NAME of {n} characters at {i}"));
    }
    let name = line[*i..*i + n].to_owned();
    *i += n;
    Ok(name)
}

/// FULL-DATE "T" FULL-TIME, with the ranges RFC 5424 (and RFC 3339) give.
fn check_timestamp(t: &str) -> Result<(), String> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let s = t.get(r.clone()).ok_or("short timestamp")?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("digits expected in {t:?}"));
        }
        Ok(s.parse().unwrap())
    };
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    num(0..4)?;
    let ok = b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    let rest = &t[19..];
    let rest = match rest.strip_prefix('.') {
        Some(frac) => {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=6).contains(&n) {
                return Err("TIME-SECFRAC of 1 to 6 digits".into());
            }
            &frac[n..]
        }
        None => rest,
    };
    if ok && rest == "Z" {
        Ok(())
    } else {
        Err(format!("not an RFC 5424 TIMESTAMP: {t:?}"))
    }
}

#[test]
fn syslog_records_follow_rfc_5424_and_carry_every_field() {
    for entry in entries() {
        let line = to_syslog(&entry, HSM, "bank-1");
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let r = parse_syslog(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let severity = match entry.outcome() {
            Outcome::Ok => 5,
            Outcome::Refused { .. } => 4,
            Outcome::Failed { .. } => 3,
        };
        assert_eq!((r.pri / 8, r.pri % 8, r.version), (13, severity, 1));
        assert_eq!(
            (r.hostname.as_str(), r.app.as_str(), r.procid.as_str()),
            (HSM, "tessera", "-")
        );
        let op = entry.operation().as_str();
        assert_eq!(r.msgid, if op.len() <= 32 { op } else { "-" });
        if entry.time_unix_ms() == u64::MAX {
            assert_eq!(r.timestamp, "-");
        } else {
            assert!(r.timestamp.ends_with('Z'));
        }
        let (id, params) = &r.elements[0];
        assert!(id.contains('@'), "a private SD-ID is name@number");
        assert_eq!(id, "tessera@32473");
        let get = |name: &str| -> Vec<&str> {
            params
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("seq"), [entry.seq().to_string().as_str()]);
        assert_eq!(get("partition"), ["bank-1"]);
        assert_eq!(get("role"), [entry.role().as_str()]);
        let holders: Vec<String> = entry
            .actor()
            .holders
            .iter()
            .map(|h| visible(h, false))
            .collect();
        assert_eq!(get("holder"), holders);
        assert_eq!(get("op"), [op]);
        let object = entry.object().map(|o| visible(o, false));
        assert_eq!(get("object").first().copied(), object.as_deref());
        assert_eq!(get("outcome"), [entry.outcome().result_name()]);
        let reason = entry.outcome().reason().map(|o| visible(o, false));
        assert_eq!(get("reason").first().copied(), reason.as_deref());
        assert_eq!(get("hash"), [entry.hash().to_string().as_str()]);
        if entry.details().is_empty() {
            assert_eq!(r.elements.len(), 1);
        } else {
            let (id, details) = &r.elements[1];
            assert_eq!(id, "details@32473");
            let expected: Vec<(String, String)> = entry
                .details()
                .iter()
                .map(|(k, v)| (k.clone(), visible(v, false)))
                .collect();
            assert_eq!(details, &expected);
        }
        let msg = r.msg.expect("a MSG");
        assert!(msg.starts_with('\u{feff}'), "MSG-UTF8 opens with a BOM");
        assert!(msg.contains(op));
    }
}

// ---- CEF ------------------------------------------------------------------------------------

/// Reads a CEF record: seven header fields split at unescaped `|` (only `\\` and `\|` escapes
/// allowed there), then `key=value` pairs (only `\\`, `\=`, `\n`, `\r` escapes in values, no
/// unescaped `=`).
/// The seven header fields and the extension's pairs, unescaped.
type Cef = (Vec<String>, Vec<(String, String)>);

fn parse_cef(line: &str) -> Result<Cef, String> {
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => field.push(e),
                other => return Err(format!("bad header escape {other:?}")),
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext = &rest[ext_start.ok_or("fewer than 7 header fields")?..];
    let severity: u8 = header[6].parse().map_err(|_| "severity is not a number")?;
    if severity > 10 {
        return Err("severity above 10".into());
    }
    // Extension: keys are [A-Za-z0-9_]+, values run to the next ` key=` (unescaped `=`).
    let b = ext.as_bytes();
    let is_key = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let k = b[i..].iter().take_while(|c| is_key(**c)).count();
        if k == 0 || b.get(i + k) != Some(&b'=') {
            return Err(format!("expected key= at {i} in {ext:?}"));
        }
        let key = ext[i..i + k].to_owned();
        i += k + 1;
        let mut value = String::new();
        while let Some(c) = ext[i..].chars().next() {
            match c {
                '\\' => {
                    match b.get(i + 1) {
                        Some(b'\\') => value.push('\\'),
                        Some(b'=') => value.push('='),
                        Some(b'n') => value.push('\n'),
                        Some(b'r') => value.push('\r'),
                        other => return Err(format!("bad value escape {other:?}")),
                    }
                    i += 2;
                }
                '=' => return Err(format!("unescaped = in the value of {key}")),
                ' ' => {
                    let k = b[i + 1..].iter().take_while(|c| is_key(**c)).count();
                    if k > 0 && b.get(i + 1 + k) == Some(&b'=') {
                        i += 1;
                        break;
                    }
                    value.push(' ');
                    i += 1;
                }
                '\n' | '\r' => return Err("raw line break".into()),
                c => {
                    value.push(c);
                    i += c.len_utf8();
                }
            }
        }
        pairs.push((key, value));
    }
    Ok((header, pairs))
}

#[test]
fn cef_records_follow_the_header_rules_and_escaping() {
    for entry in entries() {
        let line = to_cef(&entry, HSM, "bank-1");
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let (header, ext) = parse_cef(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let op = entry.operation().as_str();
        let result = entry.outcome().result_name();
        assert_eq!(header[0], "0");
        assert_eq!(&header[1..3], ["Tessera", "Tessera HSM partition"]);
        assert_eq!(header[4], op);
        assert_eq!(header[5], format!("{op} {result}"));
        let get = |key: &str| ext.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("rt"), Some(entry.time_unix_ms().to_string().as_str()));
        assert_eq!(get("deviceExternalId"), Some(HSM));
        assert_eq!(get("externalId"), Some(entry.seq().to_string().as_str()));
        assert_eq!(
            (get("cs1Label"), get("cs1")),
            (Some("partition"), Some("bank-1"))
        );
        assert_eq!(get("spriv"), Some(entry.role().as_str()));
        let holders = visible(&entry.actor().holders.join(", "), true);
        assert_eq!(
            get("suser"),
            (!holders.is_empty()).then_some(holders.as_str())
        );
        assert_eq!((get("act"), get("outcome")), (Some(op), Some(result)));
        let reason = entry.outcome().reason().map(|r| visible(r, true));
        assert_eq!(get("reason"), reason.as_deref());
        let object = entry.object().map(|o| visible(o, true));
        assert_eq!(get("cs2"), object.as_deref());
        if !entry.details().is_empty() {
            let d: Vec<String> = entry
                .details()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            assert_eq!(get("cs3"), Some(visible(&d.join("; "), true).as_str()));
        }
        assert_eq!(get("cs4"), Some(entry.hash().to_string().as_str()));
    }
    // A pipe in a header field is escaped (the checker splits only at unescaped ones).
    assert!(parse_cef(r"CEF:0|a\|b|p|1|c|n|3|k=v").unwrap().0[1] == "a|b");
    assert!(parse_cef(r"CEF:0|a|p|1|c|n|3|k=v=w").is_err());
}

#[test]
fn an_export_converts_to_one_record_per_entry() {
    let mut log = TestLog::new(AuditSigner::from_secret_bytes(&[0x42; 32]), HSM, "bank-1");
    log.append(40);
    let bytes = log.export(1, 40, 1);
    for format in [SiemFormat::Syslog, SiemFormat::Cef] {
        let mut out = Vec::new();
        let n = convert_export(&bytes[..], format, &mut out).unwrap();
        assert_eq!(n, 40);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 40);
        for line in text.lines() {
            match format {
                SiemFormat::Syslog => assert!(parse_syslog(line).is_ok(), "{line}"),
                SiemFormat::Cef => assert!(parse_cef(line).is_ok(), "{line}"),
            }
        }
    }
    assert_eq!(SiemFormat::from_name("cef"), Some(SiemFormat::Cef));
    assert_eq!(SiemFormat::from_name("json"), None);
    // An edited entry is refused (its own hash), named by line.
    let text = String::from_utf8(bytes)
        .unwrap()
        .replacen("key/", "kex/", 1);
    let e = convert_export(text.as_bytes(), SiemFormat::Cef, Vec::new()).unwrap_err();
    assert_eq!(e.line(), Some(2));
}
