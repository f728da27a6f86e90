//! Recording what is read through a root, so that `snapshot` captures
//! exactly what the analysis reads.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Entry, SystemRoot};

impl SystemRoot {
    /// Starts recording every file, link and directory read through this root.
    pub fn record(mut self) -> Self {
        self.recorder = Some(Mutex::new(BTreeMap::new()));
        self
    }

    /// What was recorded (empty unless [`record`](Self::record) was called).
    pub fn recorded(&self) -> BTreeMap<String, Entry> {
        self.recorder
            .as_ref()
            .map(|r| r.lock().map(|m| m.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// True while recording for a snapshot.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    pub(super) fn note(&self, path: &str, entry: Entry) {
        if let Some(rec) = &self.recorder
            && let Ok(mut map) = rec.lock()
        {
            map.insert(path.to_string(), entry);
        }
    }

    /// Keeps `bytes` at `path` in the snapshot being recorded (no effect
    /// otherwise): output of a read-only tool run during the scan, which
    /// no file on the machine holds. Analysing the snapshot later reads
    /// it back at the same path.
    pub fn note_generated(&self, path: &str, bytes: &[u8]) {
        self.note(path, Entry::File(bytes.to_vec()));
    }

    pub(super) fn note_placeholder(&self, path: &str) {
        if let Some(rec) = &self.recorder
            && let Ok(mut map) = rec.lock()
        {
            map.entry(path.to_string())
                .or_insert_with(|| Entry::File(Vec::new()));
        }
    }
}
