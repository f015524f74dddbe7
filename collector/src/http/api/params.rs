//! Query parameters shared by the list endpoints: checked values with 400s that say what is
//! accepted, and the unit filter with its scope check.
//!
//! The new list endpoints read their parameters as text and check them here, so a bad value gets
//! our JSON error with the valid values, not a framework's plain-text rejection.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ApiError, AppState, Caller};
use crate::services::incidents::{unit_filter, Refusal};
use crate::store::Unit;

/// The parsed query, or a 400 naming the parameters an endpoint accepts.
pub(super) fn parsed<T>(
    query: Result<Query<T>, QueryRejection>,
    accepted: &str,
) -> Result<T, ApiError> {
    match query {
        Ok(Query(query)) => Ok(query),
        Err(rejection) => Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "{}; this endpoint accepts {accepted}",
                rejection.body_text()
            ),
        )),
    }
}

/// A value that must be one of `valid`.
pub(super) fn choice(
    name: &str,
    value: Option<&str>,
    valid: &[&str],
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(value) if valid.contains(&value) => Ok(Some(value.to_owned())),
        Some(value) => Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "{name}={value:?} is not valid; use one of {}",
                valid.join(", ")
            ),
        )),
    }
}

/// An RFC 3339 time. A `+` of the offset left unencoded arrives as a space, so spaces are read
/// as `+`.
pub(super) fn time(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    OffsetDateTime::parse(&value.replace(' ', "+"), &Rfc3339)
        .map(Some)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name}={value:?} is not an RFC 3339 time like 2026-11-23T08:00:00+07:00 or 2026-11-23T01:00:00Z"),
            )
        })
}

/// A time window; `since` must not be after `until`.
pub(super) fn window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), ApiError> {
    let since = time("since", since)?;
    let until = time("until", until)?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(ApiError::bad_request(
                "invalid_query",
                "since is after until; swap them",
            ));
        }
    }
    Ok((since, until))
}

/// A row limit from 1 to `max`, `default` when absent.
pub(super) fn limit(value: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit={value:?} is not valid; use a whole number from 1 to {max} (default {default})"),
        )),
    }
}

/// A unit by code, or a 404 pointing at the list of units.
pub(super) fn find_unit<'a>(units: &'a [Unit], code: &str) -> Result<&'a Unit, ApiError> {
    units.iter().find(|unit| unit.code == code).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no unit with code {code:?}; GET /api/v1/units lists them"
        ))
    })
}

/// The units a list may show: the unit of the `unit` filter with its descendants, else everything
/// the caller may see; `None` means every unit. A unit outside the caller's scope is a 403,
/// audited. The rule itself is `services::incidents::unit_filter`, which the console uses too.
pub(super) async fn units_in_scope(
    state: &AppState,
    caller: &Caller,
    unit: Option<&str>,
) -> Result<Option<Vec<i64>>, ApiError> {
    let units = state.store.units_all().await?;
    match unit_filter(&units, &caller.principal, unit) {
        Ok(ids) => Ok(ids),
        Err(Refusal::Forbidden(why)) => Err(caller.forbid(state, unit.unwrap_or(""), why).await),
        Err(Refusal::NotFound(message)) => Err(ApiError::NotFound(message)),
        Err(other) => Err(ApiError::Internal(anyhow::Error::new(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: ApiError) -> String {
        err.to_string()
    }

    #[test]
    fn values_are_checked_with_helpful_messages() {
        assert_eq!(
            choice("state", Some("open"), &["open", "resolved"]).unwrap(),
            Some("open".into())
        );
        assert_eq!(
            message(choice("state", Some("closed"), &["open", "resolved"]).unwrap_err()),
            "state=\"closed\" is not valid; use one of open, resolved"
        );
        assert_eq!(limit(None, 500, 5000).unwrap(), 500);
        assert_eq!(limit(Some("5000"), 500, 5000).unwrap(), 5000);
        for bad in ["0", "5001", "-1", "many"] {
            assert!(limit(Some(bad), 500, 5000).is_err(), "{bad}");
        }
        let at = time("since", Some("2026-11-23T08:00:00 07:00")).unwrap();
        assert_eq!(
            at,
            Some(time::macros::datetime!(2026-11-23 01:00 UTC)),
            "an unencoded + reads as a space"
        );
        assert!(time("since", Some("23/11/2026")).is_err());
        assert!(window(Some("2026-11-24T00:00:00Z"), Some("2026-11-23T00:00:00Z")).is_err());
    }
}
