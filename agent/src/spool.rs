//! The spool: how an officer's report reaches the outbox of a running agent.
//!
//! `cntt-agent incident report` runs beside the daemon, which holds the outbox. It writes the event
//! as one file into `spool/new/` (written to `spool/tmp/`, synced, then renamed, so a file in
//! `new/` is always whole), and the daemon moves spooled events into its outbox, oldest first,
//! deleting each file only after the append is durable. A crash between the two re-appends the
//! same event, whose id makes the collector store it once. A file that cannot be read is moved to
//! `spool/bad/`, never lost.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cntt_common::wire::Event;

use crate::outbox::{Class, Outbox};

fn dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("spool").join(name)
}

/// Writes an event into the spool. Its `seq` is ignored: the outbox assigns one.
///
/// # Errors
///
/// When the spool folder cannot be written.
pub fn submit(state_dir: &Path, event: &Event) -> anyhow::Result<PathBuf> {
    let (tmp_dir, new_dir) = (dir(state_dir, "tmp"), dir(state_dir, "new"));
    for folder in [&tmp_dir, &new_dir] {
        fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    // The time prefix keeps spooled events in the order they were filed.
    let name = format!("{:020}-{}.json", event.at.unix_timestamp_nanos(), event.id);
    let tmp = tmp_dir.join(&name);
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec(event).context("encoding event")?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    let target = new_dir.join(&name);
    fs::rename(&tmp, &target)
        .with_context(|| format!("moving {} into the spool", tmp.display()))?;
    fs::File::open(&new_dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", new_dir.display()))?;
    Ok(target)
}

/// Moves every spooled event into the outbox as a critical record; returns how many.
///
/// # Errors
///
/// When the spool cannot be listed or the outbox refuses a record; events not moved stay spooled.
pub fn drain(state_dir: &Path, outbox: &mut Outbox) -> anyhow::Result<usize> {
    let new_dir = dir(state_dir, "new");
    let mut names: Vec<PathBuf> = match fs::read_dir(&new_dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err).with_context(|| format!("listing {}", new_dir.display())),
    };
    names.sort();
    let mut moved = 0;
    for path in names {
        let event = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Event>(&bytes).ok());
        let Some(event) = event else {
            let bad = dir(state_dir, "bad");
            fs::create_dir_all(&bad).with_context(|| format!("creating {}", bad.display()))?;
            let target = bad.join(path.file_name().unwrap_or_default());
            fs::rename(&path, &target)
                .with_context(|| format!("setting aside {}", path.display()))?;
            tracing::error!(path = %target.display(), "set aside an unreadable spooled event");
            continue;
        };
        outbox
            .append(Class::Critical, |seq| {
                serde_json::to_vec(&Event {
                    seq,
                    ..event.clone()
                })
                .expect("wire events always serialize")
            })
            .with_context(|| format!("recording spooled event {}", event.id))?;
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        moved += 1;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use cntt_common::wire::{Heartbeat, HostSnapshot, Payload};

    use super::*;
    use crate::outbox::OutboxConfig;

    fn event(n: i64) -> Event {
        let host = HostSnapshot {
            hostname: format!("h{n}"),
            os_name: String::new(),
            os_version: String::new(),
            kernel_version: String::new(),
            arch: String::new(),
            uptime_seconds: 0,
            cpu_count: 1,
            cpu_usage_percent: 0.0,
            load_average: None,
            memory_total_bytes: 0,
            memory_used_bytes: 0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            disks: vec![],
            interfaces: vec![],
        };
        let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(n);
        Event::new(
            0,
            at,
            &Payload::Heartbeat(Heartbeat {
                interval_seconds: 1,
                host,
                outbox: None,
            }),
        )
    }

    #[test]
    fn spooled_events_reach_the_outbox_in_order_and_bad_files_are_kept_aside() {
        let state = tempfile::tempdir().unwrap();
        let (first, second) = (event(2), event(1));
        submit(state.path(), &first).unwrap();
        submit(state.path(), &second).unwrap();
        fs::write(
            dir(state.path(), "new").join("00-garbage.json"),
            b"{not json",
        )
        .unwrap();
        let (mut outbox, _) =
            Outbox::open(&state.path().join("outbox"), OutboxConfig::default()).unwrap();
        assert_eq!(drain(state.path(), &mut outbox).unwrap(), 2);
        let records = outbox.peek(10, 1 << 20).unwrap();
        let ids: Vec<uuid::Uuid> = records
            .iter()
            .map(|record| serde_json::from_slice::<Event>(&record.payload).unwrap().id)
            .collect();
        assert_eq!(ids, [second.id, first.id], "filed order, by event time");
        assert!(records.iter().all(|record| record.class == Class::Critical));
        assert_eq!(fs::read_dir(dir(state.path(), "new")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir(state.path(), "bad")).unwrap().count(), 1);
        assert_eq!(
            drain(state.path(), &mut outbox).unwrap(),
            0,
            "nothing twice"
        );
    }
}
