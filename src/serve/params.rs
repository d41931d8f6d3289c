//! A request's query string, split into named parameters and checked against the names
//! each endpoint takes.
//!
//! List filters (`source`, `host`, `field`) repeat (`?host=web-1&host=web-2`); every other
//! parameter may appear once. An unknown name is an error rather than ignored, so a typo
//! (`?sorce=nginx`) answers 400 instead of silently returning every source.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Why a request's parameters were refused: the text of the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter the endpoint does not take (a typo, most often).
    #[error("unknown parameter `{name}`; this endpoint takes: {accepted}")]
    Unknown {
        /// The name as given.
        name: String,
        /// The endpoint's parameter names, comma-separated.
        accepted: String,
    },
    /// A parameter that is not a list filter was given twice (the named one).
    #[error("parameter `{0}` may appear only once")]
    Repeated(String),
    /// A value that percent-decodes to bytes that are not UTF-8.
    #[error("parameter `{name}` is not valid UTF-8 after percent-decoding")]
    Encoding {
        /// The parameter's name.
        name: String,
    },
    /// A value the parameter cannot take (a bad time, level, number...).
    #[error("parameter `{name}`: {reason}")]
    Invalid {
        /// The parameter's name.
        name: &'static str,
        /// Why the value was refused, quoting it.
        reason: String,
    },
}

impl ParamError {
    /// An [`Invalid`](ParamError::Invalid) error for parameter `name`.
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> ParamError {
        ParamError::Invalid {
            name,
            reason: reason.into(),
        }
    }
}

/// Decoded `name=value` pairs, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Splits and decodes `raw` (the part after `?`; `+` is a space), refusing names not
    /// in `accepted`.
    pub fn parse(raw: Option<&str>, accepted: &[&'static str]) -> Result<Params, ParamError> {
        let mut pairs = Vec::new();
        for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = decode(name).ok_or_else(|| ParamError::Encoding {
                name: name.to_owned(),
            })?;
            let value = decode(value).ok_or_else(|| ParamError::Encoding { name: name.clone() })?;
            if !accepted.contains(&name.as_str()) {
                return Err(ParamError::Unknown {
                    name,
                    accepted: accepted.join(", "),
                });
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// Every value of a list parameter, empty values skipped.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The value of a single parameter; an empty value counts as absent (what an empty
    /// form field sends).
    pub fn one(&self, name: &str) -> Result<Option<&str>, ParamError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty());
        let first = values.next().map(|(_, v)| v.trim());
        if values.next().is_some() {
            return Err(ParamError::Repeated(name.to_owned()));
        }
        Ok(first)
    }

    /// A single parameter parsed with `parse`, whose error becomes the reason.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ParamError> {
        self.one(name)?
            .map(|v| parse(v).map_err(|reason| ParamError::invalid(name, reason)))
            .transpose()
    }
}

fn decode(text: &str) -> Option<String> {
    let spaced: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// `limit`: 1 to `max` events, `default` when absent.
pub fn limit(params: &Params, default: usize, max: usize) -> Result<usize, ParamError> {
    let limit = params
        .parsed("limit", |v| {
            v.parse::<usize>()
                .map_err(|_| format!("`{v}` is not a whole number"))
        })?
        .unwrap_or(default.min(max));
    if limit == 0 || limit > max {
        return Err(ParamError::invalid(
            "limit",
            format!("must be between 1 and {max}, got {limit}"),
        ));
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: &[&str] = &["source", "host", "since", "limit"];

    #[test]
    fn decodes_and_repeats_lists() {
        let p = Params::parse(
            Some("source=nginx&host=web-1&host=web%2D2&since=1h+ago&host="),
            ACCEPTED,
        )
        .unwrap();
        assert_eq!(p.all("host"), ["web-1", "web-2"]);
        assert_eq!(p.one("since").unwrap(), Some("1h ago"));
        assert_eq!(p.one("limit").unwrap(), None);
    }

    #[test]
    fn refuses_unknown_and_repeated_names() {
        let e = Params::parse(Some("sorce=nginx"), ACCEPTED).unwrap_err();
        assert!(matches!(e, ParamError::Unknown { ref name, .. } if name == "sorce"));
        let p = Params::parse(Some("since=1h&since=2h"), ACCEPTED).unwrap();
        assert_eq!(p.one("since"), Err(ParamError::Repeated("since".into())));
        let e = Params::parse(Some("since=%FF"), ACCEPTED).unwrap_err();
        assert!(matches!(e, ParamError::Encoding { .. }));
    }

    #[test]
    fn limit_is_bounded() {
        let p = |q| Params::parse(Some(q), ACCEPTED).unwrap();
        assert_eq!(limit(&p(""), 100, 1000), Ok(100));
        assert_eq!(limit(&p("limit=1000"), 100, 1000), Ok(1000));
        assert!(limit(&p("limit=1001"), 100, 1000).is_err());
        assert!(limit(&p("limit=0"), 100, 1000).is_err());
        assert!(limit(&p("limit=ten"), 100, 1000).is_err());
    }
}
