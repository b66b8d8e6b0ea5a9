//! One Sync stream on the control plane (`scopegate.v1.SnapshotService/Sync`): the first request
//! subscribes to an account at the version the sidecar holds; the stream then sends what the
//! sidecar misses, as the encoded deltas of [`Store::deltas`] when they are kept (and weigh less
//! than the snapshot), else the version's encoded snapshot, and again at every version published.
//! The sidecar's Ack and Nack update its entry in the store's
//! [`Sidecars`](crate::control_plane::sidecars::Sidecars). A Nack is answered with the whole
//! snapshot of the version served, once: a snapshot that is itself rejected is not sent again
//! until a newer version is published, so a sidecar that cannot apply it is not flooded.
//!
//! Nothing is encoded per stream: every answer is an [`Encoded`] made when its version was
//! published, shared by every stream.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::control_plane::sidecars::Registration;
use crate::control_plane::store::Served;
use crate::control_plane::{Store, not_found};
use crate::proto::encoded::Encoded;
use crate::proto::{Subscribe, SyncRequest, sync_request};

/// The answers of one Sync stream.
pub type SyncAnswers = ReceiverStream<Result<Encoded, Status>>;

/// How many answers wait for a slow reader before the stream stops reading new versions (they
/// coalesce meanwhile: the next answer starts from the last version sent).
const QUEUED_ANSWERS: usize = 16;

/// Opens a Sync stream from `peer`: reads the subscription, then serves it on a task of its own.
pub async fn open(
    store: Arc<Store>,
    peer: String,
    mut requests: Streaming<SyncRequest>,
) -> Result<SyncAnswers, Status> {
    let first = requests.message().await?;
    let Some(SyncRequest {
        kind: Some(sync_request::Kind::Subscribe(subscribe)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first Sync request must subscribe to an account",
        ));
    };
    let Subscribe {
        account,
        known_version,
        node,
    } = subscribe;
    let versions = store.subscribe(&account).ok_or_else(|| not_found(&account))?;
    let registration = store.sidecars().register(&node, peer, &account, known_version);
    let (answers, answered) = mpsc::channel(QUEUED_ANSWERS);
    let stream = Stream {
        store,
        account,
        registration,
        answers,
        sent: known_version,
        sent_snapshot: false,
        resend_snapshot: false,
    };
    tokio::spawn(stream.run(versions, requests));
    Ok(ReceiverStream::new(answered))
}

/// The state of one stream.
struct Stream {
    store: Arc<Store>,
    account: String,
    registration: Registration,
    answers: mpsc::Sender<Result<Encoded, Status>>,
    /// The last version sent (at first, the one the sidecar holds).
    sent: u64,
    /// Whether `sent` went out as a whole snapshot.
    sent_snapshot: bool,
    /// A rejection asked for the whole snapshot.
    resend_snapshot: bool,
}

impl Stream {
    async fn run(mut self, mut versions: watch::Receiver<Arc<Served>>, mut requests: Streaming<SyncRequest>) {
        // the version served now is considered at once
        versions.mark_changed();
        loop {
            tokio::select! {
                changed = versions.changed() => {
                    if changed.is_err() {
                        return; // the store closed: shutdown
                    }
                    let served = Arc::clone(&versions.borrow_and_update());
                    if !self.send(&served).await {
                        return;
                    }
                }
                request = requests.message() => match request {
                    Ok(Some(SyncRequest { kind: Some(sync_request::Kind::Ack(ack)) })) => {
                        self.registration.acked(ack.version);
                    }
                    Ok(Some(SyncRequest { kind: Some(sync_request::Kind::Nack(nack)) })) => {
                        let held = self.registration.rejected(nack.version, &nack.error);
                        tracing::warn!(
                            account = self.account, version = nack.version, error = %nack.error.chars().take(512).collect::<String>(),
                            "a sidecar rejected a version; sending it the whole snapshot"
                        );
                        let snapshot_rejected = self.sent_snapshot && nack.version == self.sent;
                        self.sent = held;
                        self.resend_snapshot = true;
                        if !snapshot_rejected {
                            // at once; a rejected snapshot waits for a newer version
                            versions.mark_changed();
                        }
                    }
                    Ok(Some(_)) => {
                        let _ = self.answers.send(Err(Status::invalid_argument(
                            "a Sync stream subscribes once, then only acknowledges or rejects",
                        ))).await;
                        return;
                    }
                    Ok(None) | Err(_) => return, // the sidecar went away
                },
                () = self.answers.closed() => return,
            }
        }
    }

    /// Sends what takes the sidecar from `sent` to `served`; returns false once the sidecar is gone.
    async fn send(&mut self, served: &Served) -> bool {
        let version = served.version();
        if version <= self.sent && !self.resend_snapshot {
            return true;
        }
        let deltas = match (self.resend_snapshot, self.sent) {
            (false, held) if held > 0 => {
                self.store
                    .deltas(&self.account, held, version, served.encoded.len())
            }
            _ => None,
        };
        let (answers, count) = match deltas {
            Some(deltas) => {
                let count = deltas.len();
                (deltas, count)
            }
            None => (vec![served.encoded.clone()], 0),
        };
        for answer in answers {
            if self.answers.send(Ok(answer)).await.is_err() {
                return false;
            }
        }
        self.sent = version;
        self.sent_snapshot = count == 0;
        self.resend_snapshot = false;
        self.registration.sent(version, count);
        true
    }
}
