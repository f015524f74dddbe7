//! Group commit: many agents' batches stored by one transaction, each answered after its commit.
//!
//! Design note (issue 15). A batch's transaction used to be its own: on SQLite, whose one writer
//! runs one transaction at a time, each request paid a commit and a round of small statements, and
//! the collector stored about 2 % of what its database can take. Here the ingest handler checks and
//! converts a batch, then hands it to a [`Committer`] and waits. A writer task takes the first
//! batch waiting and every other batch already queued behind it (up to [`GROUP_ROWS`] rows), writes
//! them in one transaction with multi-row statements (`Store::ingest_group`), commits, and only then
//! answers each request. Nothing waits on a timer: under light load a group is one batch and costs
//! what it did before; under heavy load the groups grow while the previous one commits, which is
//! what makes the commit cheap per row.
//!
//! The guarantees of `docs/protocol.md` hold per batch:
//! - *Exactly once by id*: rows are inserted with `ON CONFLICT (id) DO NOTHING` (and the ids that
//!   went in are known: `RETURNING id` on PostgreSQL, a count and, when short, a look on SQLite); an
//!   id that two batches of one group both carry is stored by the first and a duplicate for the
//!   second.
//! - *All or nothing*: if the group's transaction fails, nothing of it is kept and each of its
//!   batches is written again alone, so one batch the database refuses cannot sink the others.
//! - *`200` only when durable*: the reply is sent after the commit; a client that hangs up does not
//!   cancel the write, which ends cleanly either way, and a crash before the commit keeps nothing of
//!   the group (the agents send those batches again).
//!
//! Two lanes (issue 15, recovery). When a district's WAN comes back, its agents send their day of
//! records in batches of hundreds while every other agent keeps sending its minute's news. In one
//! queue, a live batch waited behind every backlog batch queued before it (seconds). So a batch of
//! at most [`LIVE_ROWS`] rows, what an agent gathers in a few minutes, goes in the live lane, and
//! anything larger in the bulk lane; a writer fills each group with live batches first, then with
//! bulk ones. A live batch waits for at most the group being written, whose size is bounded; the
//! backlogs take what the live traffic leaves, which on a province's fleet is nearly everything.
//!
//! Large bodies take turns (issue 15, recovery memory). A catching-up agent's body holds hundreds of
//! records; two hundred of them read, decoded and queued at once held about 300 MiB. So a body
//! that may decode to more than [`LARGE_BODY_BYTES`] waits for one of [`LARGE_BODIES`] places
//! before it is read ([`Committer::admit`]) and keeps it until its batch is answered: enough to
//! fill every group, and a bound on what backlogs hold in memory. Live bodies are far smaller and
//! never wait. The size is judged from the wire: a gzip body counts [`GZIP_EXPANSION`] times its
//! length (agents' records shrink about tenfold), so a backlog batch that compresses below any
//! fixed wire size still takes its turn.
//!
//! SQLite takes one writer (more would only queue on its lock); PostgreSQL takes several, whose
//! groups commit side by side: rows are inserted in id order and agents updated in id order, so two
//! groups never wait on each other's locks in opposite orders.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, OwnedSemaphorePermit, Semaphore};

use super::{Backend, IngestBatch, IngestCounts, Store};

/// A group holds at most this many rows (events and probe results) beyond its first batch.
pub const GROUP_ROWS: usize = 4096;

/// A batch of at most this many rows (events and probe results) goes in the live lane: an agent
/// with 20 targets sends 41 a minute; one catching up sends up to its `batch_max_events`, 500.
pub const LIVE_ROWS: usize = 100;

/// A body that may decode to more than this (bytes of JSON) waits for a place
/// ([`Committer::admit`]): an agent's minute of news (41 records) is about 10 KB of JSON, 1.3 KB
/// gzip-compressed; a live batch of [`LIVE_ROWS`] about 25 KB; a catching-up batch of 500
/// records about 125 KB, 12 to 15 KB compressed.
pub const LARGE_BODY_BYTES: u64 = 32 * 1024;

/// How many times its wire length a gzip body is taken to decode to, when judging its size.
pub const GZIP_EXPANSION: u64 = 8;

/// Large bodies read, decoded, queued or being written at once, at most: eight batches of 500
/// rows fill a group, so sixteen keep the writer busy.
pub const LARGE_BODIES: usize = 16;

/// Batches waiting for a writer in each lane, at most; a request beyond waits to queue
/// (back-pressure).
const QUEUE: usize = 1024;

struct Job {
    batch: IngestBatch,
    reply: oneshot::Sender<anyhow::Result<IngestCounts>>,
}

/// The queues of batches to store and their writer tasks; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    live: mpsc::Sender<Job>,
    bulk: mpsc::Sender<Job>,
    large_bodies: Arc<Semaphore>,
}

/// The receiving ends of both lanes, taken by one writer at a time while it gathers a group.
struct Lanes {
    live: mpsc::Receiver<Job>,
    bulk: mpsc::Receiver<Job>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the writer tasks: one on SQLite, `postgres_writers` on PostgreSQL. They end when
    /// every clone of the committer is dropped and the queue is empty.
    pub fn start(store: Store, postgres_writers: usize) -> Committer {
        let (live, live_receiver) = mpsc::channel(QUEUE);
        let (bulk, bulk_receiver) = mpsc::channel(QUEUE);
        let lanes = Arc::new(Mutex::new(Lanes {
            live: live_receiver,
            bulk: bulk_receiver,
        }));
        let writers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => postgres_writers.max(1),
        };
        for _ in 0..writers {
            tokio::spawn(write_groups(store.clone(), lanes.clone()));
        }
        Committer {
            live,
            bulk,
            large_bodies: Arc::new(Semaphore::new(LARGE_BODIES)),
        }
    }

    /// Waits, for a body of `wire_bytes` (unknown when the client did not say), gzip-compressed
    /// or not, until it may be read: at once when small, else for one of the [`LARGE_BODIES`]
    /// places, which the returned permit holds until dropped. Call before reading the body; drop
    /// after the batch is answered.
    pub async fn admit(&self, wire_bytes: Option<u64>, gzip: bool) -> Option<OwnedSemaphorePermit> {
        let expansion = if gzip { GZIP_EXPANSION } else { 1 };
        if wire_bytes.is_some_and(|bytes| bytes.saturating_mul(expansion) <= LARGE_BODY_BYTES) {
            return None;
        }
        // The semaphore is never closed.
        self.large_bodies.clone().acquire_owned().await.ok()
    }

    /// Stores one batch with whatever else is queued, and returns once it is committed.
    ///
    /// # Errors
    ///
    /// On a database error, in which case nothing of the batch is stored.
    pub async fn ingest(&self, batch: IngestBatch) -> anyhow::Result<IngestCounts> {
        let (reply, answer) = oneshot::channel();
        let lane = if batch.rows() <= LIVE_ROWS {
            &self.live
        } else {
            &self.bulk
        };
        lane.send(Job { batch, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the collector is shutting down; batch not stored"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the writer stopped before storing the batch"))?
    }
}

/// One writer: takes a group off the lanes, stores it, answers, again.
async fn write_groups(store: Store, lanes: Arc<Mutex<Lanes>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut lanes = lanes.lock().await;
            let lanes = &mut *lanes;
            let first = tokio::select! {
                biased;
                Some(job) = lanes.live.recv() => job,
                Some(job) = lanes.bulk.recv() => job,
                else => return,
            };
            let mut rows = first.batch.rows();
            group.push(first);
            for lane in [&mut lanes.live, &mut lanes.bulk] {
                while rows < GROUP_ROWS {
                    let Ok(next) = lane.try_recv() else {
                        break;
                    };
                    rows += next.batch.rows();
                    group.push(next);
                }
            }
        }
        let (batches, replies): (Vec<IngestBatch>, Vec<_>) =
            group.into_iter().map(|job| (job.batch, job.reply)).unzip();
        let results = store.ingest_group(&batches).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // A request that gave up no longer listens; its batch is stored all the same.
            let _ = reply.send(result);
        }
    }
}
