//! `cntt-collector user create|list|disable|reset-password`: people's accounts on the web
//! console, made on the collector's host by whoever runs it (audited as `cli:<user>`).
//!
//! A new account (and one whose password is reset) gets a one-time password, generated and
//! printed once, or read from standard input (`--password-stdin`; never from the command line,
//! where other users of the host could read it in the process list); the first login must set a
//! new one. Tests create accounts with [`InitialPassword::Known`], whose login needs no change.

use std::fmt::Write;

use anyhow::{bail, Context};
use cntt_common::Secret;
use time::OffsetDateTime;

use super::{audit_ok, cli_actor, local_time, unit};
use crate::domain::auth::Role;
use crate::domain::password::{check_policy, hash_password, normalise_username, one_time_password};
use crate::store::{from_millis, NewPerson, Store, StoredPerson};

/// The first password of an account.
#[derive(Debug, Clone)]
pub enum InitialPassword {
    /// Generate one and print it; it must be changed at the first login.
    Generate,
    /// This one (read from standard input); it must be changed at the first login.
    Given(Secret),
    /// This one, and no change is forced: for tests and scripted set-ups that know the password
    /// the person will keep.
    Known(Secret),
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name (normalised to lowercase).
    pub username: String,
    /// Full name, as shown.
    pub full_name: String,
    /// Role.
    pub role: Role,
    /// Scope unit code; none for the whole province.
    pub unit: Option<String>,
    /// The first password.
    pub password: InitialPassword,
}

/// The password to store and whether it must be changed, and the text to print it with.
fn first_password(
    password: InitialPassword,
    username: &str,
) -> anyhow::Result<(Secret, bool, Option<Secret>)> {
    match password {
        InitialPassword::Generate => {
            let secret = one_time_password();
            Ok((secret.clone(), true, Some(secret)))
        }
        InitialPassword::Given(secret) => {
            check_policy(&secret, username).map_err(|err| anyhow::anyhow!("{err}"))?;
            Ok((secret, true, None))
        }
        InitialPassword::Known(secret) => {
            check_policy(&secret, username).map_err(|err| anyhow::anyhow!("{err}"))?;
            Ok((secret, false, None))
        }
    }
}

/// `user create`.
///
/// # Errors
///
/// When the username is malformed or taken, the role and unit do not fit, a given password breaks
/// the policy, or the database fails.
pub async fn user_create(store: &Store, spec: UserSpec) -> anyhow::Result<String> {
    let username = normalise_username(&spec.username)?;
    let full_name = spec.full_name.trim().to_owned();
    if full_name.is_empty() {
        bail!("--name must give the person's full name, as the console shows it");
    }
    if spec.role == Role::Officer && spec.unit.is_none() {
        bail!("an officer needs --unit CODE: officers see and act on their unit and its children only");
    }
    if spec.role == Role::Admin && spec.unit.is_some() {
        bail!("an admin covers the whole province; drop --unit or choose another --role");
    }
    let unit = match &spec.unit {
        Some(code) => Some(unit(store, code).await?),
        None => None,
    };
    let (password, must_change, shown) = first_password(spec.password, &username)?;
    let password_hash = hash_password(&password)?;
    let now = OffsetDateTime::now_utc();
    let person = NewPerson {
        username: username.clone(),
        full_name: full_name.clone(),
        password_hash,
        role: spec.role.to_string(),
        unit_id: unit.as_ref().map(|unit| unit.id),
        must_change_password: must_change,
        created_by: cli_actor(),
    };
    let Some(id) = store.person_create(&person, now).await? else {
        bail!("the username {username:?} is taken; `cntt-collector user list` shows the accounts");
    };
    audit_ok(
        store,
        "user.create",
        &format!("person:{username}"),
        serde_json::json!({
            "id": id,
            "role": spec.role,
            "unit": unit.as_ref().map(|unit| &unit.code),
            "full_name": full_name,
            "must_change_password": must_change,
        }),
    )
    .await?;
    let scope = unit.as_ref().map_or_else(
        || "toàn tỉnh".to_owned(),
        |unit| format!("{} {}", unit.code, unit.name),
    );
    let mut out = format!(
        "created user {username} ({full_name}; {}, {scope})\n",
        spec.role
    );
    out.push_str(&password_lines(shown.as_ref(), must_change));
    Ok(out)
}

/// How the new password is told: the generated one once, or a reminder.
fn password_lines(shown: Option<&Secret>, must_change: bool) -> String {
    let mut out = String::new();
    if let Some(secret) = shown {
        let _ = writeln!(out, "one-time password: {}", secret.expose());
        out.push_str("It is shown only this once; give it to the person privately.\n");
    }
    if must_change {
        out.push_str("The person must set a new password at the first login.\n");
    }
    out
}

async fn person(store: &Store, username: &str) -> anyhow::Result<StoredPerson> {
    let name = normalise_username(username)?;
    match store.person_by_username(&name).await? {
        Some(person) => Ok(person),
        None => bail!("no user {name:?}; `cntt-collector user list` shows the accounts"),
    }
}

/// `user list`: username, name, role, unit, state, last login.
///
/// # Errors
///
/// When the database fails.
pub async fn users_list(store: &Store) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let people = store.people_list().await?;
    if people.is_empty() {
        return Ok(
            "no users yet; create the first with `cntt-collector user create --role admin`\n"
                .to_owned(),
        );
    }
    let mut out = format!(
        "{:<20} {:<28} {:<10} {:<12} {:<36} {}\n",
        "USERNAME", "NAME", "ROLE", "UNIT", "STATE", "LAST LOGIN (giờ VN)"
    );
    for person in people {
        let state = if let Some(at) = person.disabled_at {
            format!("disabled since {}", local_time(from_millis(at)))
        } else if person.locked_at(now) {
            let until = person.locked_until.map(from_millis).unwrap_or(now);
            format!("locked until {}", local_time(until))
        } else if person.must_change_password != 0 {
            "active (must change password)".to_owned()
        } else {
            "active".to_owned()
        };
        let last = person
            .last_login_at
            .map_or_else(|| "never".to_owned(), |at| local_time(from_millis(at)));
        let _ = writeln!(
            out,
            "{:<20} {:<28} {:<10} {:<12} {:<36} {}",
            person.username,
            person.full_name,
            person.role,
            person.unit_code.as_deref().unwrap_or("(tỉnh)"),
            state,
            last
        );
    }
    Ok(out)
}

/// `user disable USERNAME`: the account can no longer log in; its sessions end at once.
///
/// # Errors
///
/// When there is no such user or the database fails.
pub async fn user_disable(store: &Store, username: &str) -> anyhow::Result<String> {
    let person = person(store, username).await?;
    let changed = store
        .person_disable(person.id, &cli_actor(), OffsetDateTime::now_utc())
        .await?;
    if !changed {
        return Ok(format!("user {} was already disabled\n", person.username));
    }
    audit_ok(
        store,
        "user.disable",
        &format!("person:{}", person.username),
        serde_json::json!({ "id": person.id }),
    )
    .await?;
    Ok(format!(
        "disabled user {}; their sessions have ended\n",
        person.username
    ))
}

/// `user reset-password USERNAME`: a new one-time password (generated, or given), to be changed
/// at the next login; clears a lockout and ends the person's sessions.
///
/// # Errors
///
/// When there is no such user, a given password breaks the policy, or the database fails.
pub async fn user_reset_password(
    store: &Store,
    username: &str,
    password: InitialPassword,
) -> anyhow::Result<String> {
    let person = person(store, username).await?;
    let (password, must_change, shown) = first_password(password, &person.username)?;
    let hash = hash_password(&password).context("hashing the new password")?;
    store
        .person_set_password(
            person.id,
            &hash,
            must_change,
            None,
            &cli_actor(),
            OffsetDateTime::now_utc(),
        )
        .await?;
    audit_ok(
        store,
        "user.reset_password",
        &format!("person:{}", person.username),
        serde_json::json!({ "id": person.id, "must_change_password": must_change }),
    )
    .await?;
    let mut out = format!(
        "reset the password of {}; their sessions have ended{}\n",
        person.username,
        if person.disabled_at.is_some() {
            " (the account stays disabled)"
        } else {
            ""
        }
    );
    out.push_str(&password_lines(shown.as_ref(), must_change));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_password_is_printed_once_with_the_rule() {
        let secret = Secret::new("abcd-efgh-ijkm-npqr");
        let text = password_lines(Some(&secret), true);
        assert!(text.contains("one-time password: abcd-efgh-ijkm-npqr\n"));
        assert!(text.contains("must set a new password"));
        assert!(!password_lines(None, false).contains("password:"));
    }

    #[test]
    fn a_given_password_must_meet_the_policy() {
        let short = InitialPassword::Given(Secret::new("ngắn"));
        let err = first_password(short, "someone").unwrap_err().to_string();
        assert!(err.contains("ít nhất 10 ký tự"), "{err}");
        let (_, must_change, shown) = first_password(InitialPassword::Generate, "someone").unwrap();
        assert!(must_change && shown.is_some());
        let (_, must_change, _) =
            first_password(InitialPassword::Known(Secret::new("một câu dễ nhớ")), "x1y").unwrap();
        assert!(!must_change);
    }
}
