//! [`Encoded`]: a protobuf message encoded once and sent as it is. The control plane's server
//! answers Watch, Get and Sync with it (see `build.rs`), so a version is encoded once however many
//! streams carry it: each stream copies the bytes into its frame instead of cloning and encoding the
//! snapshot. A snapshot answer is the same bytes for all three methods: each puts the snapshot in
//! field 1.

use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};

use crate::rbac::model::AccountSnapshot;

/// The field number of the snapshot in WatchResponse, GetResponse and SyncResponse.
const SNAPSHOT_FIELD: u32 = 1;

/// The encoded body of a message (without a length prefix). Decoding into it skips every field:
/// it is made by [`Encoded::of`], never read off the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded(pub Bytes);

impl Encoded {
    /// `message`, encoded.
    pub fn of(message: &impl Message) -> Self {
        Self(Bytes::from(message.encode_to_vec()))
    }

    /// A Watch, Get or Sync answer carrying `snapshot`.
    pub fn snapshot(snapshot: &AccountSnapshot) -> Self {
        // field 1, length-delimited: what encoding the answer would write, without copying the
        // snapshot into one first
        let mut buf = Vec::with_capacity(snapshot.encoded_len() + 11);
        prost::encoding::message::encode(SNAPSHOT_FIELD, snapshot, &mut buf);
        Self(Bytes::from(buf))
    }

    /// How many bytes the message takes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the message is empty (every field at its default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::proto::{GetResponse, SyncResponse, WatchResponse, sync_response};

    #[test]
    fn one_encoding_reads_as_every_snapshot_answer() {
        let snapshot = AccountSnapshot {
            account: "acme".to_owned(),
            version: 7,
            ..AccountSnapshot::default()
        };
        let encoded = Encoded::snapshot(&snapshot);
        let framed = encoded.encode_to_vec();
        assert_eq!(framed, encoded.0.to_vec());
        let watch = WatchResponse::decode(framed.as_slice()).unwrap();
        assert_eq!(watch.snapshot.as_ref(), Some(&snapshot));
        let get = GetResponse::decode(framed.as_slice()).unwrap();
        assert_eq!(get.snapshot.as_ref(), Some(&snapshot));
        let sync = SyncResponse::decode(framed.as_slice()).unwrap();
        assert_eq!(sync.update, Some(sync_response::Update::Snapshot(snapshot)));
        assert_eq!(Encoded::decode(framed.as_slice()).unwrap(), Encoded::default());
    }
}
