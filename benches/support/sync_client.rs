//! A raw Sync stream for the benches that stand in for many sidecars (`fan_out`, `propagation`):
//! subscribe from version 0, hand every answer to the caller, acknowledge its version. Include with
//! `#[path = ".../support/sync_client.rs"] mod sync_client;`.

use scopegate::proto::snapshot_service_client::SnapshotServiceClient;
use scopegate::proto::{Ack, Subscribe, SyncRequest, sync_request, sync_response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Follows `account` on `channel` as `node` until the stream ends; `on_update` sees each answer.
pub async fn follow(
    channel: tonic::transport::Channel,
    account: String,
    node: String,
    mut on_update: impl FnMut(&sync_response::Update),
) {
    let (requests, outbound) = mpsc::channel(4);
    let subscribe = sync_request::Kind::Subscribe(Subscribe {
        account,
        known_version: 0,
        node,
    });
    requests
        .send(SyncRequest {
            kind: Some(subscribe),
        })
        .await
        .expect("the request stream is open");
    let mut client = SnapshotServiceClient::new(channel);
    let mut answers = client
        .sync(ReceiverStream::new(outbound))
        .await
        .expect("the control plane accepts the Sync call")
        .into_inner();
    while let Ok(Some(answer)) = answers.message().await {
        let Some(update) = answer.update else {
            continue;
        };
        on_update(&update);
        let version = match &update {
            sync_response::Update::Snapshot(s) => s.version,
            sync_response::Update::Delta(d) => d.to_version,
        };
        let ack = sync_request::Kind::Ack(Ack { version });
        let _ = requests.try_send(SyncRequest { kind: Some(ack) });
    }
}
