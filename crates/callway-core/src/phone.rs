//! `PhoneE164`: a phone number a visitor gave us, parsed, validated against our calling policy,
//! and kept beside the raw input. Its `Debug`/`Display` are masked so it cannot leak into logs.

use phonenumber::{country, Mode, PhoneNumber, Type};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Longer input is refused before it reaches the parser (which has panicked on odd input in the past).
pub const MAX_RAW_LEN: usize = 64;

/// What we accept to call.
#[derive(Debug, Clone)]
pub struct PhonePolicy {
    pub default_region: country::Id,
    pub allowed_countries: Vec<country::Id>,
}

impl Default for PhonePolicy {
    fn default() -> Self {
        Self {
            default_region: country::Id::FR,
            allowed_countries: vec![country::Id::FR],
        }
    }
}

impl PhonePolicy {
    /// Builds a policy from ISO 3166 codes, e.g. `"FR"` and `"FR,BE,CH"`.
    pub fn from_codes(default_region: &str, allowed: &str) -> Result<Self, String> {
        let parse = |code: &str| {
            country::Id::from_str(code.trim().to_ascii_uppercase().as_str())
                .map_err(|_| format!("unknown country code {code:?}"))
        };
        let allowed_countries = allowed
            .split(',')
            .filter(|c| !c.trim().is_empty())
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        if allowed_countries.is_empty() {
            return Err("the country allow-list is empty".into());
        }
        Ok(Self {
            default_region: parse(default_region)?,
            allowed_countries,
        })
    }
}

/// Why a number was refused. Each reason has a stable code and a French sentence for the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty phone number")]
    Empty,
    #[error("phone input longer than {MAX_RAW_LEN} characters")]
    TooLong,
    #[error("phone number could not be parsed")]
    Unparseable,
    #[error("phone number is not a valid number")]
    Invalid,
    #[error("short or special number")]
    ShortCode,
    #[error("phone number type {0} is not allowed")]
    TypeNotAllowed(&'static str),
    #[error("country {0} is not allowed")]
    CountryNotAllowed(String),
}

impl PhoneError {
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Empty => "phone_missing",
            PhoneError::TooLong => "phone_too_long",
            PhoneError::Unparseable => "phone_unparseable",
            PhoneError::Invalid => "phone_invalid",
            PhoneError::ShortCode => "phone_short_code",
            PhoneError::TypeNotAllowed(_) => "phone_type_not_allowed",
            PhoneError::CountryNotAllowed(_) => "phone_country_not_allowed",
        }
    }

    pub fn message_fr(&self) -> &'static str {
        match self {
            PhoneError::Empty => "Il me manque votre numéro de téléphone.",
            PhoneError::TooLong => "Ce numéro est trop long pour être un numéro de téléphone.",
            PhoneError::Unparseable => {
                "Je n'ai pas compris ce numéro. Pouvez-vous me le redonner chiffre par chiffre ?"
            }
            PhoneError::Invalid => {
                "Ce numéro ne semble pas valide. Pouvez-vous me le redonner chiffre par chiffre ?"
            }
            PhoneError::ShortCode => {
                "Ce numéro est un numéro court ou spécial : il me faut un numéro de mobile ou de fixe."
            }
            PhoneError::TypeNotAllowed(_) => {
                "Je ne peux pas appeler ce type de numéro (surtaxé, partagé ou virtuel) : il me faut un mobile ou un fixe."
            }
            PhoneError::CountryNotAllowed(_) => {
                "Pour l'instant, je ne peux rappeler que des numéros français."
            }
        }
    }
}

/// A callable number in E.164 form, with the raw input it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneE164 {
    e164: String,
    raw: String,
    country: country::Id,
}

impl PhoneE164 {
    /// Parses what a visitor said or typed, then applies the calling policy.
    pub fn parse(raw: &str, policy: &PhonePolicy) -> Result<Self, PhoneError> {
        if raw.chars().count() > MAX_RAW_LEN {
            return Err(PhoneError::TooLong);
        }
        let cleaned = normalise(raw)?;
        let digits = cleaned.chars().filter(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(PhoneError::Empty);
        }
        let number = parse_number(&cleaned, policy.default_region, digits)?;
        if !phonenumber::is_valid(&number) {
            return Err(if digits <= 6 {
                PhoneError::ShortCode
            } else {
                PhoneError::Invalid
            });
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            // VoIP stays allowed: French `09` numbers are ordinary home lines behind ISP boxes.
            Type::FixedLine | Type::Mobile | Type::FixedLineOrMobile | Type::Voip => {}
            other => return Err(PhoneError::TypeNotAllowed(type_name(other))),
        }
        let country = number.country().id().ok_or(PhoneError::Invalid)?;
        if !policy.allowed_countries.contains(&country) {
            return Err(PhoneError::CountryNotAllowed(country.as_ref().to_owned()));
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        // The metadata accepts some numbers longer than E.164's 15 digits (found by the
        // property test: `+4920100000000000`); the database CHECK and Telnyx would refuse them.
        if !is_e164_shape(&e164) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self {
            e164,
            raw: raw.trim().to_owned(),
            country,
        })
    }

    /// Rebuilds a number we stored ourselves (already validated when it was saved).
    pub fn from_stored(e164: &str, raw: &str) -> Result<Self, PhoneError> {
        if !is_e164_shape(e164) {
            return Err(PhoneError::Invalid);
        }
        let number = phonenumber::parse(None, e164).map_err(|_| PhoneError::Invalid)?;
        Ok(Self {
            e164: e164.to_owned(),
            raw: raw.to_owned(),
            country: number.country().id().ok_or(PhoneError::Invalid)?,
        })
    }

    /// The E.164 form. Every call site that sends it somewhere is explicit.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// What the visitor said or typed, trimmed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn country(&self) -> country::Id {
        self.country
    }

    /// A form safe for logs, traces and the page: `+33 6•• •• •• 78`.
    pub fn masked(&self) -> String {
        mask_e164(&self.e164)
    }
}

impl fmt::Debug for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneE164({})", self.masked())
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for PhoneE164 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.e164)
    }
}

/// `^\+[1-9]\d{1,14}$`, the same rule as the database CHECK.
pub fn is_e164_shape(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&rest.len())
        && rest.chars().all(|c| c.is_ascii_digit())
        && !rest.starts_with('0')
}

/// Masks an E.164 number: country code and first national digit, then bullets, then the last two digits.
/// French numbers get the familiar grouping (`+33 6•• •• •• 78`).
pub fn mask_e164(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "+•••".to_owned();
    }
    if e164.starts_with("+33") && digits.len() == 11 {
        let d = &digits;
        return format!("+33 {}•• •• •• {}{}", d[2], d[9], d[10]);
    }
    let head: String = digits[..3].iter().collect();
    let tail: String = digits[digits.len() - 2..].iter().collect();
    format!("+{head}{}{tail}", "•".repeat(digits.len() - 5))
}

fn parse_number(
    cleaned: &str,
    region: country::Id,
    digits: usize,
) -> Result<PhoneNumber, PhoneError> {
    // The parser has panicked on malformed input in past releases; a panic here must not take a
    // worker down with it.
    let input = cleaned.to_owned();
    let parsed = std::panic::catch_unwind(move || {
        if input.starts_with('+') {
            phonenumber::parse(None, &input)
        } else {
            phonenumber::parse(Some(region), &input)
        }
    });
    match parsed {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(_)) if digits <= 6 => Err(PhoneError::ShortCode),
        Ok(Err(_)) | Err(_) => Err(PhoneError::Unparseable),
    }
}

/// Keeps digits (any script's decimal digits, mapped to ASCII), a leading `+`, and usual separators.
/// Anything else (letters, words) makes the input unparseable: we never guess digits from letters.
fn normalise(raw: &str) -> Result<String, PhoneError> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        if let Some(d) = decimal_digit(c) {
            out.push(char::from(b'0' + d));
        } else if c == '+' {
            if out.chars().any(|c| c.is_ascii_digit() || c == '+') {
                return Err(PhoneError::Unparseable);
            }
            out.push('+');
        } else if c.is_whitespace()
            || matches!(c, '.' | '-' | '(' | ')' | '/' | '\u{2011}' | '\u{2013}')
        {
            out.push(' ');
        } else {
            return Err(PhoneError::Unparseable);
        }
    }
    Ok(out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Decimal value of a digit in the scripts visitors plausibly type or dictate into (Unicode `Nd`
/// blocks that start at a zero code point).
fn decimal_digit(c: char) -> Option<u8> {
    const ZEROS: [u32; 8] = [
        0x30,    // ASCII
        0x660,   // Arabic-Indic
        0x6F0,   // Extended Arabic-Indic
        0x966,   // Devanagari
        0x9E6,   // Bengali
        0xE50,   // Thai
        0xFF10,  // Fullwidth
        0x1D7CE, // Mathematical bold
    ];
    let cp = c as u32;
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&cp))
        .map(|&zero| (cp - zero) as u8)
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::TollFree => "toll_free",
        Type::PremiumRate => "premium_rate",
        Type::SharedCost => "shared_cost",
        Type::PersonalNumber => "personal_number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short_code",
        Type::StandardRate => "standard_rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "no_international",
        _ => "unknown",
    }
}

#[cfg(test)]
#[path = "phone_tests.rs"]
mod tests;
